"""Exactly-once execution: key derivation and the runner (Ledger.run) on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from service import privacy
from service.actions.idempotency import ActionCall, ActionResult, Answer, body_hash, derive_key
from service.actions.ledger import Ledger, utcnow
from service.actions.problems import ActionError
from service.providers import errors as perr
from service.providers.base import ContactRef
from tests.databases import TEST_HASH_KEY

WAIT = 30  # upper bound of every wait below (a bug makes the test fail after it, never hang)
OP = "StartAutomation"
API_KEY_ID = privacy.api_key_id("test-api-key")


def make_call(key: str | None, body: bytes = b'{"contact": {"email": "ann@example.com"}}', *,
              explicit: bool = True, request_id: str = "req-1", op: str = OP) -> ActionCall:
    headers = {"Idempotency-Key": key} if key is not None and explicit else {}
    return ActionCall(
        operation=op, provider="spotler", api_key_id=API_KEY_ID, request_id=request_id,
        contact=ContactRef(email="ann@example.com"), inputs={"contact": {"email": "ann@example.com"}},
        idempotency_key=derive_key(op, headers, body, API_KEY_ID), body_hash=body_hash(body))


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0

    def bump(self) -> int:
        with self.lock:
            self.n += 1
            return self.n


def ok_work(counter: Counter, *, ids=("ac-1",)):
    def work(ctx):
        n = counter.bump()
        return ActionResult(body={"jobId": ctx.job_id, "resultCode": "OK", "run": n},
                            upstream_ids={"automationContactIds": list(ids)})
    return work


def job_count(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM job_ledger")).scalar_one()


# ---------------------------------------------------------------------------------------------------------
# derive_key / body_hash
# ---------------------------------------------------------------------------------------------------------


def test_explicit_key_is_scoped_by_api_key_and_operation_and_ignores_header_case():
    k = derive_key(OP, {"Idempotency-Key": "abc"}, b"{}", "key-a")
    assert k is not None and k.startswith("k1:") and "abc" not in k
    assert derive_key(OP, {"idempotency-key": "abc"}, b'{"x": 1}', "key-a") == k
    assert derive_key(OP, {"Idempotency-Key": "abc"}, b"{}", "key-b") != k
    assert derive_key("AddTag", {"Idempotency-Key": "abc"}, b"{}", "key-a") != k
    assert derive_key(OP, {"Idempotency-Key": "abd"}, b"{}", "key-a") != k


@pytest.mark.parametrize("bad", ["x" * 256, "a\nb", "a\x00b"])
def test_invalid_explicit_key_is_a_400(bad):
    with pytest.raises(ActionError) as ei:
        derive_key(OP, {"Idempotency-Key": bad}, b"{}", "k")
    assert ei.value.problem.status == 400
    assert ei.value.problem.code == "INVALID_IDEMPOTENCY_KEY"


RUN = {"x-ms-workflow-run-id": "08585-run-1", "x-ms-workflow-operation-name": "Start_automation",
       "x-ms-workflow-id": "wf-1"}


def test_run_headers_give_the_same_key_on_retries_and_differ_per_action_body_and_repetition():
    body = b'{"contact": {"email": "a@example.com"}}'
    k = derive_key(OP, RUN, body, "k")
    assert k is not None and k.startswith("r1:")
    # a retry: same headers, same body (key order and blanks do not matter)
    assert derive_key(OP, {k.upper(): v for k, v in RUN.items()}, b'{"contact":{"email":"a@example.com"}}', "k") == k
    assert derive_key(OP, {**RUN, "x-ms-workflow-run-id": "08585-run-2"}, body, "k") != k
    assert derive_key(OP, {**RUN, "x-ms-workflow-operation-name": "Start_automation_2"}, body, "k") != k
    assert derive_key(OP, RUN, b'{"contact": {"email": "b@example.com"}}', "k") != k
    assert derive_key(OP, RUN, body, "k", scope={"automationId": "7"}) != derive_key(
        OP, RUN, body, "k", scope={"automationId": "8"})
    it0 = derive_key(OP, {**RUN, "x-ms-workflow-repeatitem-index": "0"}, body, "k")
    it1 = derive_key(OP, {**RUN, "x-ms-workflow-repeatitem-index": "1"}, body, "k")
    assert it0 != it1 and k not in (it0, it1)


def test_run_headers_fallbacks_and_absence():
    body = b"{}"
    run_only = {"x-ms-workflow-run-id": "r"}
    assert derive_key(OP, run_only, body, "k") is None
    by_tracking = derive_key(OP, {**run_only, "x-ms-action-tracking-id": "t1"}, body, "k")
    by_client = derive_key(OP, {**run_only, "x-ms-client-tracking-id": "c1"}, body, "k")
    assert by_tracking and by_client and by_tracking != by_client
    assert derive_key(OP, {"x-ms-workflow-operation-name": "A"}, body, "k") is None
    assert derive_key(OP, {}, body, "k") is None
    # an explicit key wins over run headers
    assert derive_key(OP, {**RUN, "Idempotency-Key": "z"}, body, "k") == derive_key(
        OP, {"Idempotency-Key": "z"}, b"other", "k")


def test_body_hash_is_canonical_and_scope_sensitive():
    assert body_hash(b'{"a": 1, "b": [1, 2]}') == body_hash(b'{"b":[1,2],"a":1}')
    assert body_hash(b'{"a": 1}') != body_hash(b'{"a": 2}')
    assert body_hash(b"not json") != body_hash(b"not json!")
    assert body_hash(b"") == body_hash(None)
    assert body_hash(b"{}", {"automationId": "1"}) != body_hash(b"{}", {"automationId": "2"})


# ---------------------------------------------------------------------------------------------------------
# The runner, on both backends
# ---------------------------------------------------------------------------------------------------------


def test_twenty_concurrent_identical_calls_run_the_work_once(ledger):
    n = 20
    executions: list[str] = []
    cond = threading.Condition()
    answered = [0]

    def work(ctx):
        executions.append(ctx.job_id)
        with cond:  # hold the first call open until every other call has been answered
            cond.wait_for(lambda: answered[0] >= n - 1, timeout=WAIT)
        return ActionResult(body={"jobId": ctx.job_id, "resultCode": "OK"},
                            upstream_ids={"automationContactIds": ["ac-1"]})

    barrier = threading.Barrier(n, timeout=WAIT)

    def one(i: int):
        barrier.wait()
        try:
            return ledger.run(make_call("same-key", request_id=f"req-{i}"), work)
        except ActionError as exc:
            return exc
        finally:
            with cond:
                answered[0] += 1
                cond.notify_all()

    with ThreadPoolExecutor(n) as pool:
        outcomes = list(pool.map(one, range(n)))

    assert len(executions) == 1
    answers = [o for o in outcomes if isinstance(o, Answer)]
    errors = [o for o in outcomes if isinstance(o, ActionError)]
    assert len(answers) == 1 and len(errors) == n - 1
    first = answers[0]
    assert first.status == 200 and not first.replayed and first.body["jobId"] == executions[0]
    for err in errors:
        assert err.problem.status == 409 and err.problem.code == "REQUEST_IN_PROGRESS"
        assert int(err.problem.headers["Retry-After"]) >= 1
        assert err.problem.ext["jobId"] == executions[0]
    assert job_count(ledger) == 1
    rec = ledger.get(executions[0])
    assert rec.status == "Completed" and rec.attempts == 1
    assert rec.upstream_ids == {"automationContactIds": ["ac-1"]}
    # a late retry now gets the stored answer
    again = ledger.run(make_call("same-key"), work)
    assert again.replayed and (again.status, again.body) == (first.status, first.body)


def test_twenty_sequential_replays_return_the_same_answer(ledger):
    counter = Counter()
    first = ledger.run(make_call("k-seq"), ok_work(counter))
    assert not first.replayed and first.status == 200
    for _ in range(20):
        again = ledger.run(make_call("k-seq"), ok_work(counter))
        assert again.replayed
        assert (again.status, again.body, again.headers) == (first.status, first.body, first.headers)
    assert counter.n == 1
    assert job_count(ledger) == 1


def test_same_key_with_a_different_body_is_422(ledger):
    counter = Counter()
    first = ledger.run(make_call("k-body"), ok_work(counter))
    with pytest.raises(ActionError) as ei:
        ledger.run(make_call("k-body", b'{"contact": {"email": "bob@example.com"}}'), ok_work(counter))
    assert ei.value.problem.status == 422
    assert ei.value.problem.code == "IDEMPOTENCY_KEY_REUSED"
    assert ei.value.problem.ext["jobId"] == first.job_id
    assert counter.n == 1 and job_count(ledger) == 1


def test_calls_without_a_key_are_recorded_every_time(ledger):
    counter = Counter()
    a = ledger.run(make_call(None), ok_work(counter))
    b = ledger.run(make_call(None), ok_work(counter))
    assert counter.n == 2 and a.job_id != b.job_id and not (a.replayed or b.replayed)
    assert {ledger.get(a.job_id).status, ledger.get(b.job_id).status} == {"Completed"}


def test_run_headers_dedupe_a_power_automate_retry(ledger):
    counter = Counter()
    body = b'{"contact": {"email": "ann@example.com"}}'

    def call():
        return ActionCall(operation=OP, provider="spotler", api_key_id=API_KEY_ID,
                          idempotency_key=derive_key(OP, RUN, body, API_KEY_ID), body_hash=body_hash(body))

    a = ledger.run(call(), ok_work(counter))
    b = ledger.run(call(), ok_work(counter))
    assert counter.n == 1 and b.replayed and b.body == a.body


def test_non_transient_problem_is_recorded_and_replayed(ledger):
    runs = Counter()

    def work(ctx):
        runs.bump()
        raise perr.NotFound("No automation with id 42.", code="AUTOMATION_NOT_FOUND")

    first = ledger.run(make_call("k-404", request_id="req-a"), work)
    assert first.status == 404 and not first.replayed
    assert first.headers["Content-Type"] == "application/problem+json"
    assert first.body["code"] == "AUTOMATION_NOT_FOUND" and first.body["jobId"] == first.job_id
    assert first.body["requestId"] == "req-a"
    rec = ledger.get(first.job_id)
    assert (rec.status, rec.http_status, rec.result_code, rec.retryable) == ("Failed", 404, "AUTOMATION_NOT_FOUND",
                                                                            False)
    assert rec.message == "No automation with id 42." and rec.finished_at is not None
    again = ledger.run(make_call("k-404", request_id="req-b"), work)
    assert again.replayed and (again.status, again.body, again.headers) == (first.status, first.body, first.headers)
    assert runs.n == 1


def test_action_error_501_is_not_transient(ledger):
    runs = Counter()

    def work(ctx):
        runs.bump()
        raise perr.NotSupported("Piggy has no automations.", code="NOT_SUPPORTED_BY_PLATFORM")

    first = ledger.run(make_call("k-501"), work)
    assert first.status == 501
    assert ledger.run(make_call("k-501"), work).replayed and runs.n == 1
    assert ledger.get(first.job_id).status == "Failed"


def test_transient_failure_then_retry_gives_one_record_with_two_attempts(ledger):
    runs = Counter()

    def work(ctx):
        if runs.bump() == 1:
            raise perr.Unavailable("Spotler is unavailable.", code="UPSTREAM_UNAVAILABLE")
        return ActionResult(body={"jobId": ctx.job_id, "attempt": ctx.attempt},
                            upstream_ids={"automationContactIds": ["ac-9"]})

    first = ledger.run(make_call("k-503"), work)
    assert first.status == 503 and int(first.headers["Retry-After"]) >= 1 and not first.replayed
    assert first.body["jobId"] == first.job_id
    rec = ledger.get(first.job_id)
    assert (rec.status, rec.http_status, rec.result_code, rec.retryable) == ("Failed", 503, "UPSTREAM_UNAVAILABLE",
                                                                            True)
    second = ledger.run(make_call("k-503", request_id="req-2"), work)
    assert second.status == 200 and not second.replayed and second.job_id == first.job_id
    assert second.body == {"jobId": first.job_id, "attempt": 2}
    assert job_count(ledger) == 1
    rec = ledger.get(first.job_id)
    assert (rec.status, rec.attempts, rec.http_status, rec.request_id) == ("Completed", 2, 200, "req-2")
    assert rec.upstream_ids == {"automationContactIds": ["ac-9"]}
    third = ledger.run(make_call("k-503"), work)
    assert third.replayed and third.body == second.body and runs.n == 2


def test_unexpected_exception_is_recorded_reraised_and_releases_the_key(ledger):
    runs = Counter()

    def work(ctx):
        if runs.bump() == 1:
            raise KeyError("bug")
        return ActionResult(body={"jobId": ctx.job_id})

    with pytest.raises(KeyError):
        ledger.run(make_call("k-bug"), work)
    (rec,), _ = ledger.list()
    assert (rec.status, rec.http_status, rec.result_code, rec.retryable) == ("Failed", 500, "INTERNAL_ERROR", True)
    assert "KeyError" in rec.message
    answer = ledger.run(make_call("k-bug"), work)
    assert answer.status == 200 and answer.job_id == rec.job_id
    assert ledger.get(rec.job_id).attempts == 2 and job_count(ledger) == 1


def test_work_result_of_the_wrong_type_is_an_internal_error(ledger):
    with pytest.raises(TypeError):
        ledger.run(make_call("k-type"), lambda ctx: {"not": "an ActionResult"})
    (rec,), _ = ledger.list()
    assert rec.result_code == "INTERNAL_ERROR"


def test_upstream_ids_recorded_progressively_are_visible_while_in_progress(ledger):
    seen = {}

    def work(ctx):
        ctx.add_upstream_ids("automationContactIds", ["ac-1", "ac-2"])
        ctx.add_upstream_ids("automationContactIds", "ac-2")
        rec = ledger.get(ctx.job_id)
        seen["status"], seen["ids"] = rec.status, rec.upstream_ids
        return ActionResult(body={}, upstream_ids={"automationContactIds": ["ac-3"]})

    answer = ledger.run(make_call("k-prog"), work)
    assert seen == {"status": "InProgress", "ids": {"automationContactIds": ["ac-1", "ac-2"]}}
    assert ledger.get(answer.job_id).upstream_ids == {"automationContactIds": ["ac-1", "ac-2", "ac-3"]}


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now


def test_expired_lease_becomes_outcome_unknown_for_the_retry_and_never_reruns(db_url):
    clock = Clock()
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, lease_seconds=150, clock=clock)
    try:
        started = threading.Event()
        release = threading.Event()
        runs = Counter()

        def slow(ctx):
            runs.bump()
            started.set()
            release.wait(WAIT)
            return ActionResult(body={"jobId": ctx.job_id, "late": True})

        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(led.run, make_call("k-lease"), slow)
            assert started.wait(WAIT)
            with pytest.raises(ActionError) as ei:  # still within the lease
                led.run(make_call("k-lease"), ok_work(runs))
            assert ei.value.problem.code == "REQUEST_IN_PROGRESS"
            assert 1 <= int(ei.value.problem.headers["Retry-After"]) <= 5
            clock.now += timedelta(seconds=151)
            unknown = led.run(make_call("k-lease"), ok_work(runs))
            assert unknown.replayed and unknown.status == 409
            assert unknown.body["code"] == "OUTCOME_UNKNOWN" and unknown.body["jobId"] == fut_job_id(led)
            assert "Check in the marketing platform" in unknown.body["detail"]
            rec = led.get(unknown.job_id)
            assert (rec.status, rec.result_code, rec.http_status) == ("Failed", "OUTCOME_UNKNOWN", 409)
            release.set()
            late = fut.result(WAIT)
        # the real outcome arrived after all: it replaces the unknown one
        assert late.status == 200 and runs.n == 1
        assert led.get(unknown.job_id).status == "Completed"
        assert led.run(make_call("k-lease"), ok_work(runs)).body == late.body and runs.n == 1
    finally:
        led.close()


def fut_job_id(led: Ledger) -> str:
    (rec,), _ = led.list()
    return rec.job_id


def test_recover_stale_and_maybe_recover(db_url):
    clock = Clock()
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, lease_seconds=150, recover_interval=3600,
                          clock=clock)
    try:
        job_id = led._insert(make_call("k-stale"), clock.now)  # what a crashed worker leaves behind
        assert led.recover_stale() == 0 and led.get(job_id).status == "InProgress"
        assert led.maybe_recover() == 0
        clock.now += timedelta(seconds=200)
        assert led.maybe_recover() is None  # the interval has not passed: skipped, cheaply
        assert led.recover_stale() == 1
        assert led.recover_stale() == 0
        rec = led.get(job_id)
        assert (rec.status, rec.result_code, rec.http_status, rec.retryable) == ("Failed", "OUTCOME_UNKNOWN", 409,
                                                                                False)
        assert rec.finished_at == clock.now
    finally:
        led.close()


# ---------------------------------------------------------------------------------------------------------
# Several processes
# ---------------------------------------------------------------------------------------------------------


def _mp_call(db_url: str, key: str, marker_dir: str, results, go, hold) -> None:
    """Child process: one call with ``key``; the work leaves a marker file and waits for ``hold``."""
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY)

    def work(ctx):
        with open(os.path.join(marker_dir, f"{os.getpid()}.ran"), "w") as fh:
            fh.write(ctx.job_id)
        hold.wait(WAIT)
        return ActionResult(body={"jobId": ctx.job_id, "pid": os.getpid()})

    go.wait(WAIT)
    try:
        answer = led.run(make_call(key), work)
        results.put(("answer", answer.status, answer.body, answer.replayed))
    except ActionError as exc:
        results.put(("error", exc.problem.status, exc.problem.code, exc.problem.headers.get("Retry-After")))
    finally:
        led.close()


def test_several_processes_with_one_key_run_the_work_once(sqlite_ledger, sqlite_url, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    n = 3
    results, go, hold = ctx.Queue(), ctx.Event(), ctx.Event()
    procs = [ctx.Process(target=_mp_call, args=(sqlite_url, "k-mp", str(tmp_path), results, go, hold))
             for _ in range(n)]
    for p in procs:
        p.start()
    try:
        go.set()
        outcomes = [results.get(timeout=60) for _ in range(n - 1)]  # the others answer while one works
        hold.set()
        outcomes.append(results.get(timeout=60))
    finally:
        hold.set()
        for p in procs:
            p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(list(tmp_path.glob("*.ran"))) == 1
    answers = [o for o in outcomes if o[0] == "answer"]
    errors = [o for o in outcomes if o[0] == "error"]
    assert len(answers) == 1 and answers[0][1] == 200 and not answers[0][3]
    assert [e[1:3] for e in errors] == [(409, "REQUEST_IN_PROGRESS")] * (n - 1)
    assert all(int(e[3]) >= 1 for e in errors)
    again = sqlite_ledger.run(make_call("k-mp"), ok_work(Counter()))
    assert again.replayed and again.body == answers[0][2]
    assert job_count(sqlite_ledger) == 1


def _crash(db_url: str, key: str) -> None:
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY)

    def work(ctx):
        os._exit(3)  # the worker dies in the middle of the upstream call

    led.run(make_call(key), work)


def test_a_crashed_worker_leaves_a_record_that_recovery_marks_outcome_unknown(db_url):
    proc = multiprocessing.get_context("spawn").Process(target=_crash, args=(db_url, "k-crash"))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 3
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY)
    try:
        (rec,), _ = led.list()
        assert rec.status == "InProgress" and rec.lease_expires_at > utcnow()
        runs = Counter()
        with pytest.raises(ActionError) as ei:
            led.run(make_call("k-crash"), ok_work(runs))
        assert ei.value.problem.status == 409 and ei.value.problem.code == "REQUEST_IN_PROGRESS"
        assert led.recover_stale(now=rec.lease_expires_at + timedelta(seconds=1)) == 1
        rec = led.get(rec.job_id)
        assert (rec.status, rec.result_code, rec.http_status) == ("Failed", "OUTCOME_UNKNOWN", 409)
        answer = led.run(make_call("k-crash"), ok_work(runs))
        assert answer.replayed and answer.status == 409 and answer.body["code"] == "OUTCOME_UNKNOWN"
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert runs.n == 0 and job_count(led) == 1
    finally:
        led.close()
