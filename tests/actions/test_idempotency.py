"""Exactly-once execution: key derivation and the job runner (service.actions.runner) on SQLite and PostgreSQL:
one execution per key, bounded waits for repeats (503 + Retry-After, never 409), the 202 of long work, leases
renewed while a call runs, and a dead worker's job resumed or settled, never lost and never doubled."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from service import privacy
from service.actions.idempotency import ActionCall, ActionResult, body_hash, derive_key
from service.actions.ledger import Ledger, utcnow
from service.actions.runner import JobRunner, RunnerConfig
from service.actions.problems import ActionError
from service.providers import errors as perr
from service.providers.base import ContactRef
from tests.databases import TEST_HASH_KEY

WAIT = 30  # upper bound of every wait below (a bug makes the test fail after it, never hang)
OP = "StartAutomation"
CALLER = "key:" + privacy.api_key_id("test-api-key")


def make_call(key: str | None, body: bytes = b'{"contact": {"email": "ann@example.com"}}', *,
              explicit: bool = True, request_id: str = "req-1", op: str = OP) -> ActionCall:
    headers = {"Idempotency-Key": key} if key is not None and explicit else {}
    return ActionCall(
        operation=op, provider="spotler", caller=CALLER, request_id=request_id,
        contact=ContactRef(email="ann@example.com"), inputs={"contact": {"email": "ann@example.com"}},
        idempotency_key=derive_key(op, headers, body, CALLER), body_hash=body_hash(body), params={},
        body={"contact": {"email": "ann@example.com"}})


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


@pytest.mark.parametrize("bad", ["x" * 201, "a\nb", "a\x00b"])
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


def test_idempotency_key_limit_is_200_and_one_code():
    assert derive_key(OP, {"Idempotency-Key": "x" * 200}, b"{}", "k")  # the limit the spec states
    with pytest.raises(ActionError) as ei:
        derive_key(OP, {"Idempotency-Key": "x" * 201}, b"{}", "k")
    assert ei.value.problem.code == "INVALID_IDEMPOTENCY_KEY"


# ---------------------------------------------------------------------------------------------------------
# The runner, on both backends
# ---------------------------------------------------------------------------------------------------------


class StubOperations:
    """The runner's view of the actions, for resumed jobs: one work, one read-back verdict."""

    def __init__(self, work=None, verdict=("unknown", None)):
        self._work = work
        self.verdict = verdict
        self.settled = 0

    def work(self, call):
        return self._work

    def settle(self, call, unsafe_call, job_id):
        self.settled += 1
        return self.verdict

    def check_hint(self, call):
        return "Check the platform."


@pytest.fixture
def make_runner():
    made = []

    def make(ledger, operations=None, **config):
        config.setdefault("wait_seconds", 0.3)
        config.setdefault("sync_budget", WAIT)
        runner = JobRunner(ledger, operations, RunnerConfig(**config))
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.stop()


@pytest.fixture
def runner(ledger, make_runner):
    return make_runner(ledger)


def spy_in_progress(ledger: Ledger) -> threading.Event:
    """An event set once a repeat has seen the key's record InProgress (so it is waiting for it)."""
    seen = threading.Event()
    original = ledger.key_state

    def key_state(key):
        state = original(key)
        if state is not None and state.status == "InProgress":
            seen.set()
        return state

    ledger.key_state = key_state
    return seen


def test_twenty_concurrent_identical_calls_run_the_work_once_and_get_its_answer(ledger, make_runner):
    """Finding: a repeat while the first attempt ran got 409 (Power Automate does not retry it). Now it waits for
    the first attempt (bounded) and replays its answer."""
    runner = make_runner(ledger, wait_seconds=WAIT)
    n = 20
    executions: list[str] = []
    waiting = spy_in_progress(ledger)

    def work(ctx):
        executions.append(ctx.job_id)
        waiting.wait(WAIT)  # hold the first call until a repeat is waiting for it
        return ActionResult(body={"jobId": ctx.job_id, "resultCode": "OK"},
                            upstream_ids={"automationContactIds": ["ac-1"]})

    barrier = threading.Barrier(n, timeout=WAIT)

    def one(i: int):
        barrier.wait()
        return runner.run(make_call("same-key", request_id=f"req-{i}"), work)

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(one, range(n)))

    assert len(executions) == 1 and waiting.is_set()
    firsts = [a for a in answers if not a.replayed]
    assert len(firsts) == 1 and firsts[0].status == 200 and firsts[0].body["jobId"] == executions[0]
    assert all(a.status == 200 and a.body == firsts[0].body for a in answers)
    assert job_count(ledger) == 1
    rec = ledger.get(executions[0])
    assert rec.status == "Completed" and rec.attempts == 1
    assert rec.upstream_ids == {"automationContactIds": ["ac-1"]}


def test_a_repeat_still_running_after_the_wait_is_a_503_with_retry_after(ledger, runner):
    release = threading.Event()
    started = threading.Event()

    def slow(ctx):
        started.set()
        release.wait(WAIT)
        return ActionResult(body={"jobId": ctx.job_id})

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(runner.run, make_call("k-wait"), slow)
        assert started.wait(WAIT)
        with pytest.raises(ActionError) as ei:
            runner.run(make_call("k-wait"), slow)
        problem = ei.value.problem
        assert (problem.status, problem.code) == (503, "REQUEST_IN_PROGRESS") and problem.transient
        assert int(problem.headers["Retry-After"]) >= 1 and problem.ext["jobId"]
        release.set()
        assert first.result(WAIT).status == 200
    assert runner.run(make_call("k-wait"), slow).replayed


def test_twenty_sequential_replays_return_the_same_answer(ledger, runner):
    counter = Counter()
    first = runner.run(make_call("k-seq"), ok_work(counter))
    assert not first.replayed and first.status == 200
    for _ in range(20):
        again = runner.run(make_call("k-seq"), ok_work(counter))
        assert again.replayed
        assert (again.status, again.body, again.headers) == (first.status, first.body, first.headers)
    assert counter.n == 1
    assert job_count(ledger) == 1


def test_same_key_with_a_different_body_is_422(ledger, runner):
    counter = Counter()
    first = runner.run(make_call("k-body"), ok_work(counter))
    with pytest.raises(ActionError) as ei:
        runner.run(make_call("k-body", b'{"contact": {"email": "bob@example.com"}}'), ok_work(counter))
    assert ei.value.problem.status == 422
    assert ei.value.problem.code == "IDEMPOTENCY_KEY_REUSED"
    assert ei.value.problem.ext["jobId"] == first.job_id
    assert counter.n == 1 and job_count(ledger) == 1


def test_calls_without_a_key_are_recorded_every_time(ledger, runner):
    counter = Counter()
    a = runner.run(make_call(None), ok_work(counter))
    b = runner.run(make_call(None), ok_work(counter))
    assert counter.n == 2 and a.job_id != b.job_id and not (a.replayed or b.replayed)
    assert {ledger.get(a.job_id).status, ledger.get(b.job_id).status} == {"Completed"}


def test_run_headers_dedupe_a_power_automate_retry(runner):
    counter = Counter()
    body = b'{"contact": {"email": "ann@example.com"}}'

    def call():
        return ActionCall(operation=OP, provider="spotler", caller=CALLER,
                          idempotency_key=derive_key(OP, RUN, body, CALLER), body_hash=body_hash(body))

    a = runner.run(call(), ok_work(counter))
    b = runner.run(call(), ok_work(counter))
    assert counter.n == 1 and b.replayed and b.body == a.body


def test_non_transient_problem_is_recorded_and_replayed(ledger, runner):
    runs = Counter()

    def work(ctx):
        runs.bump()
        raise perr.NotFound("No automation with id 42.", code="AUTOMATION_NOT_FOUND")

    first = runner.run(make_call("k-404", request_id="req-a"), work)
    assert first.status == 404 and not first.replayed
    assert first.is_problem  # the HTTP layer sends it as application/problem+json
    assert first.body["code"] == "AUTOMATION_NOT_FOUND" and first.body["jobId"] == first.job_id
    assert first.body["requestId"] == "req-a"
    rec = ledger.get(first.job_id)
    assert (rec.status, rec.http_status, rec.result_code, rec.retryable) == ("Failed", 404, "AUTOMATION_NOT_FOUND",
                                                                            False)
    assert rec.message == "No automation with id 42." and rec.finished_at is not None
    again = runner.run(make_call("k-404", request_id="req-b"), work)
    assert again.replayed and (again.status, again.body, again.headers) == (first.status, first.body, first.headers)
    assert runs.n == 1


def test_an_action_the_platform_lacks_is_a_final_4xx(ledger, runner):
    runs = Counter()

    def work(ctx):
        runs.bump()
        raise perr.NotSupported("Piggy has no automations.", code="NOT_SUPPORTED_BY_PLATFORM")

    first = runner.run(make_call("k-501"), work)
    assert first.status == 400 and "Retry-After" not in first.headers  # Power Automate retries no 4xx
    assert runner.run(make_call("k-501"), work).replayed and runs.n == 1
    assert ledger.get(first.job_id).status == "Failed"


def test_transient_failure_then_retry_gives_one_record_with_two_attempts(ledger, runner):
    runs = Counter()

    def work(ctx):
        if runs.bump() == 1:
            raise perr.Unavailable("Spotler is unavailable.", code="UPSTREAM_UNAVAILABLE")
        return ActionResult(body={"jobId": ctx.job_id, "attempt": ctx.attempt},
                            upstream_ids={"automationContactIds": ["ac-9"]})

    first = runner.run(make_call("k-503"), work)
    assert first.status == 503 and int(first.headers["Retry-After"]) >= 1 and not first.replayed
    assert first.body["jobId"] == first.job_id
    rec = ledger.get(first.job_id)
    assert (rec.status, rec.http_status, rec.result_code, rec.retryable) == ("Failed", 503, "UPSTREAM_UNAVAILABLE",
                                                                            True)
    second = runner.run(make_call("k-503", request_id="req-2"), work)
    assert second.status == 200 and not second.replayed and second.job_id == first.job_id
    assert second.body == {"jobId": first.job_id, "attempt": 2}
    assert job_count(ledger) == 1
    rec = ledger.get(first.job_id)
    assert (rec.status, rec.attempts, rec.http_status, rec.request_id) == ("Completed", 2, 200, "req-2")
    assert rec.upstream_ids == {"automationContactIds": ["ac-9"]}
    third = runner.run(make_call("k-503"), work)
    assert third.replayed and third.body == second.body and runs.n == 2


def test_a_lost_answer_of_a_call_not_safe_to_repeat_is_final_and_never_rerun(ledger, make_runner):
    """Finding: a reset after the platform applied a trigger (or a read timeout) was a retryable 503/504 and the
    retry triggered the automation again. Now the job ends OUTCOME_UNKNOWN (with what to check) and every retry
    gets that answer."""
    runner = make_runner(ledger, StubOperations())
    runs = Counter()

    def work(ctx):
        runs.bump()
        raise perr.OutcomeUnknown("Spotler may have applied the request.", call="trigger_automation")

    first = runner.run(make_call("k-unknown"), work)
    assert first.status == 409 and first.body["code"] == "OUTCOME_UNKNOWN"
    assert "Check the platform." in first.body["detail"] and first.body["upstreamCall"] == "trigger_automation"
    rec = ledger.get(first.job_id)
    assert (rec.status, rec.result_code, rec.retryable) == ("Failed", "OUTCOME_UNKNOWN", False)
    for _ in range(3):
        again = runner.run(make_call("k-unknown"), work)
        assert again.replayed and again.status == 409 and again.body == first.body
    assert runs.n == 1


def test_unexpected_exception_is_recorded_answered_500_and_releases_the_key(ledger, runner):
    runs = Counter()

    def work(ctx):
        if runs.bump() == 1:
            raise KeyError("bug")
        return ActionResult(body={"jobId": ctx.job_id})

    failed = runner.run(make_call("k-bug"), work)
    assert failed.status == 500 and failed.body["code"] == "INTERNAL_ERROR"
    (rec,), _ = ledger.list()
    assert (rec.status, rec.http_status, rec.result_code, rec.retryable) == ("Failed", 500, "INTERNAL_ERROR", True)
    assert "KeyError" in rec.message
    answer = runner.run(make_call("k-bug"), work)
    assert answer.status == 200 and answer.job_id == rec.job_id
    assert ledger.get(rec.job_id).attempts == 2 and job_count(ledger) == 1


def test_work_result_of_the_wrong_type_is_an_internal_error(ledger, runner):
    assert runner.run(make_call("k-type"), lambda ctx: {"not": "an ActionResult"}).status == 500
    (rec,), _ = ledger.list()
    assert rec.result_code == "INTERNAL_ERROR"


def test_upstream_ids_are_merged_and_recorded_with_the_outcome(ledger, runner):
    def work(ctx):
        ctx.add_upstream_ids("automationContactIds", ["ac-1", "ac-2"])
        ctx.add_upstream_ids("automationContactIds", "ac-2")
        return ActionResult(body={}, upstream_ids={"automationContactIds": ["ac-3"]})

    answer = runner.run(make_call("k-prog"), work)
    assert ledger.get(answer.job_id).upstream_ids == {"automationContactIds": ["ac-1", "ac-2", "ac-3"]}


def test_long_work_answers_202_then_its_location_gives_the_synchronous_answer(ledger, make_runner):
    """Finding: calls ran past Power Automate's 120 s. Work not done within the sync budget answers 202; the job
    shows progress; its result answers 202 until done, then exactly the answer a synchronous call gives."""
    runner = make_runner(ledger, sync_budget=0.2)
    release = threading.Event()

    def long_work(ctx):
        ctx.set_progress(1, 3)
        release.wait(WAIT)
        ctx.set_progress(3, 3)
        return ActionResult(body={"jobId": ctx.job_id, "resultCode": "OK", "stopped": 3})

    accepted = runner.run(make_call("k-long"), long_work)
    assert accepted.status == 202 and accepted.accepted and accepted.body["status"] == "InProgress"
    assert accepted.retry_after >= 1  # the HTTP layer sends it as Retry-After
    deadline = time.monotonic() + WAIT  # the work reports its progress as soon as it runs
    while (polled := runner.result(accepted.job_id, CALLER)).body.get("progress") is None:
        assert time.monotonic() < deadline
        release.wait(0.02)
    assert polled.status == 202 and polled.body["progress"] == {"done": 1, "total": 3}
    repeat = runner.run(make_call("k-long"), long_work)  # Power Automate lost the 202: the same 202 again
    assert repeat.status == 202 and repeat.replayed and repeat.job_id == accepted.job_id
    with pytest.raises(ActionError) as other:  # another caller cannot see it
        runner.result(accepted.job_id, "key:someone-else")
    assert other.value.problem.status == 404
    release.set()
    deadline = time.monotonic() + WAIT
    while (done := runner.result(accepted.job_id, CALLER)).status == 202 and time.monotonic() < deadline:
        runner._stop.wait(0.02)
    assert done.status == 200 and done.body == {"jobId": accepted.job_id, "resultCode": "OK", "stopped": 3}
    assert runner.run(make_call("k-long"), long_work).body == done.body
    rec = ledger.get(accepted.job_id)
    assert rec.status == "Completed" and rec.mode == "async" and rec.progress == {"done": 3, "total": 3}


def test_inline_work_runs_in_the_callers_thread_and_can_be_given_up_with_a_202(ledger, make_runner):
    """The HTTP layer's mode for short works: no hand-off to a runner thread; the transport keeps the deadline
    through the running call's detach(), which answers the 202 while the work goes on in the caller's thread."""
    runner = make_runner(ledger)
    offered: list = []
    threads: list = []

    def run_inline(call, work):
        running = runner.begin(call, work)
        offered.append(running)
        return running.execute()

    release, started = threading.Event(), threading.Event()

    def work(ctx):
        threads.append(threading.get_ident())
        started.set()
        release.wait(WAIT)
        return ActionResult(body={"jobId": ctx.job_id, "resultCode": "OK"})

    quick = run_inline(make_call("k-inline-1"), ok_work(Counter()))
    assert quick.status == 200
    assert offered[0].detach() is None  # given up after it finished: nothing to give up, its own answer stands
    assert not runner._pool._threads  # no runner thread was needed

    offered.clear()
    result: list = []
    caller = threading.Thread(target=lambda: result.append(run_inline(make_call("k-inline-2"), work)))
    caller.start()
    assert started.wait(WAIT) and threads == [caller.ident]
    accepted = offered[0].detach()  # the transport's deadline passed
    assert accepted.status == 202 and accepted.accepted and accepted.body["status"] == "InProgress"
    assert ledger.get(accepted.job_id).mode == "async"
    assert runner.result(accepted.job_id, CALLER).status == 202
    release.set()
    caller.join(WAIT)
    assert result[0].status == 200  # the caller's own answer (the transport drops it)
    done = runner.result(accepted.job_id, CALLER)
    assert done.status == 200 and done.body == {"jobId": accepted.job_id, "resultCode": "OK"}
    assert runner.run(make_call("k-inline-2"), work).body == done.body  # and a retry replays it


def test_a_transient_failure_after_an_inline_job_was_given_up_is_retried_in_the_background(ledger, make_runner):
    runner = make_runner(ledger)
    release, started = threading.Event(), threading.Event()

    def failing(ctx):
        started.set()
        release.wait(WAIT)
        raise perr.Unavailable("Spotler is unavailable (HTTP 503).")

    result: list = []
    running = runner.begin(make_call("k-inline-3"), failing)
    caller = threading.Thread(target=lambda: result.append(running.execute()))
    caller.start()
    assert started.wait(WAIT)
    accepted = running.detach()
    release.set()
    caller.join(WAIT)
    rec = ledger.get(accepted.job_id)
    assert rec.status == "InProgress" and rec.mode == "async" and rec.result_code == "UPSTREAM_UNAVAILABLE"
    assert runner.result(accepted.job_id, CALLER).status == 202  # due again later, any process may claim it


def test_a_live_call_renews_its_lease_and_is_never_taken_over(db_url, make_runner):
    """Finding: a call still running after the 150 s lease was declared dead (OUTCOME_UNKNOWN) and then flipped
    the record back to Completed. Now the lease is short and renewed while the call runs."""
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, lease_seconds=0.6)
    other = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, lease_seconds=0.6, owner="other-instance")
    try:
        runner = make_runner(led, sync_budget=WAIT)
        runner.start()
        release = threading.Event()
        started = threading.Event()

        def slow(ctx):
            started.set()
            release.wait(WAIT)
            return ActionResult(body={"jobId": ctx.job_id})

        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(runner.run, make_call("k-renew"), slow)
            assert started.wait(WAIT)
            (rec,), _ = led.list()
            first_lease = rec.lease_expires_at
            deadline = time.monotonic() + WAIT  # wait (observably) until the lease was renewed past 3 leases
            while led.get(rec.job_id).lease_expires_at < first_lease + timedelta(seconds=1.8):
                assert time.monotonic() < deadline, "the lease was not renewed"
                release.wait(0.05)
            assert other.claim_due(10) == []  # another instance finds nothing to take over
            release.set()
            answer = fut.result(WAIT)
        assert answer.status == 200 and not answer.replayed
        rec = led.get(answer.job_id)
        assert rec.status == "Completed" and rec.attempts == 1
    finally:
        led.close()
        other.close()


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now


def test_a_late_worker_cannot_overwrite_a_job_taken_over_after_its_lease(db_url):
    clock = Clock()
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, lease_seconds=30, clock=clock)
    try:
        job_id = led.insert(make_call("k-late"))
        clock.now += timedelta(seconds=31)
        (claimed,) = led.claim_due(5)
        assert claimed.job_id == job_id and claimed.attempt == 2
        assert claimed.body == {"contact": {"email": "ann@example.com"}}  # the kept request, decrypted
        # the first worker comes back late: its outcome is not recorded
        assert not led.finish(job_id, 1, status="Completed", http_status=200, result_code="OK", message=None,
                              upstream_ids={}, duration_ms=1, retryable=False, response=(200, {}, {}))
        assert led.settle_unknown(job_id, 2, idem_problem(), "req-1")
        assert led.get(job_id).result_code == "OUTCOME_UNKNOWN"
    finally:
        led.close()


def idem_problem():
    from service.actions.idempotency import outcome_unknown_problem

    return outcome_unknown_problem()


def test_a_dead_workers_job_is_resumed_when_no_unsafe_call_was_sent(db_url, make_runner):
    clock = Clock()
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, lease_seconds=30, clock=clock)
    try:
        job_id = led.insert(make_call("k-resume"))  # what a worker that died before any unsafe call leaves
        runs = Counter()
        resumed = threading.Event()

        def work(ctx):
            runs.bump()
            resumed.set()
            return ActionResult(body={"jobId": ctx.job_id, "attempt": ctx.attempt})

        runner = make_runner(led, StubOperations(work))
        with pytest.raises(ActionError) as ei:  # within the lease: a retryable 503, never 409
            runner.run(make_call("k-resume"), work)
        assert ei.value.problem.status == 503
        clock.now += timedelta(seconds=31)
        assert runner.claim_and_run() == 1
        assert resumed.wait(WAIT)
        deadline = time.monotonic() + WAIT
        while led.get(job_id).status == "InProgress":
            assert time.monotonic() < deadline
            resumed.wait(0.02)
        answer = runner.run(make_call("k-resume"), work)
        assert answer.replayed and answer.status == 200 and answer.body == {"jobId": job_id, "attempt": 2}
        assert runs.n == 1 and job_count(led) == 1
    finally:
        led.close()


@pytest.mark.parametrize("verdict,status,code", [(("unknown", None), 409, "OUTCOME_UNKNOWN"),
                                                 (("applied", ActionResult(body={"score": 15})), 200, None)])
def test_a_dead_workers_job_after_an_unsafe_call_is_settled_never_rerun(db_url, make_runner, verdict, status, code):
    clock = Clock()
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, lease_seconds=30, clock=clock)
    try:
        job_id = led.insert(make_call("k-settle"))
        assert led.mark_unsafe(job_id, 1, {"call": "trigger_automation", "readback": None})
        runs = Counter()
        ops = StubOperations(ok_work(runs), verdict=verdict)
        runner = make_runner(led, ops)
        clock.now += timedelta(seconds=31)
        assert runner.claim_and_run() == 1
        deadline = time.monotonic() + WAIT
        while led.get(job_id).status == "InProgress":
            assert time.monotonic() < deadline
            threading.Event().wait(0.02)
        answer = runner.run(make_call("k-settle"), ok_work(runs))
        assert answer.replayed and answer.status == status and (code is None or answer.body["code"] == code)
        assert runs.n == 0 and ops.settled == 1
    finally:
        led.close()


# ---------------------------------------------------------------------------------------------------------
# Several processes
# ---------------------------------------------------------------------------------------------------------


def _mp_call(db_url: str, key: str, marker_dir: str, results, go, hold) -> None:
    """Child process: one call with ``key``; the work leaves a marker file and waits for ``hold``."""
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY)
    runner = JobRunner(led, None, RunnerConfig(wait_seconds=0.3))

    def work(ctx):
        with open(os.path.join(marker_dir, f"{os.getpid()}.ran"), "w") as fh:
            fh.write(ctx.job_id)
        hold.wait(WAIT)
        return ActionResult(body={"jobId": ctx.job_id, "pid": os.getpid()})

    go.wait(WAIT)
    try:
        answer = runner.run(make_call(key), work)
        results.put(("answer", answer.status, answer.body, answer.replayed))
    except ActionError as exc:
        results.put(("error", exc.problem.status, exc.problem.code, exc.problem.headers.get("Retry-After")))
    finally:
        runner.stop()
        led.close()


def test_several_processes_with_one_key_run_the_work_once(sqlite_ledger, sqlite_url, tmp_path, make_runner):
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
    assert [e[1:3] for e in errors] == [(503, "REQUEST_IN_PROGRESS")] * (n - 1)
    assert all(int(e[3]) >= 1 for e in errors)
    again = make_runner(sqlite_ledger).run(make_call("k-mp"), ok_work(Counter()))
    assert again.replayed and again.body == answers[0][2]
    assert job_count(sqlite_ledger) == 1


def _crash(db_url: str, key: str, unsafe: bool) -> None:
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY)
    runner = JobRunner(led, None, RunnerConfig())

    def work(ctx):
        if unsafe:
            ctx.guard.before_unsafe_call("trigger_automation")
        os._exit(3)  # the worker dies in the middle of the upstream call

    runner.run(make_call(key), work)


@pytest.mark.parametrize("unsafe", [True, False])
def test_a_crashed_worker_is_answered_503_then_settled_or_resumed(db_url, make_runner, unsafe):
    """Finding: after a worker crash a repeat got 409 for up to 150 s, then OUTCOME_UNKNOWN even when nothing
    had been sent. Now: 503 + Retry-After until the job is settled (an unsafe call may have been sent:
    OUTCOME_UNKNOWN) or resumed (no unsafe call was sent: run again, once)."""
    proc = multiprocessing.get_context("spawn").Process(target=_crash, args=(db_url, "k-crash", unsafe))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 3
    clock = Clock()
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, clock=clock)
    try:
        (rec,), _ = led.list()
        assert rec.status == "InProgress" and rec.lease_expires_at > utcnow()
        runs = Counter()
        runner = make_runner(led, StubOperations(ok_work(runs)))
        with pytest.raises(ActionError) as ei:
            runner.run(make_call("k-crash"), ok_work(runs))
        assert ei.value.problem.status == 503 and ei.value.problem.code == "REQUEST_IN_PROGRESS"
        clock.now = rec.lease_expires_at + timedelta(seconds=1)
        assert runner.claim_and_run() == 1
        deadline = time.monotonic() + WAIT
        while led.get(rec.job_id).status == "InProgress":
            assert time.monotonic() < deadline
            threading.Event().wait(0.02)
        answer = runner.run(make_call("k-crash"), ok_work(runs))
        assert answer.replayed and job_count(led) == 1
        if unsafe:
            assert answer.status == 409 and answer.body["code"] == "OUTCOME_UNKNOWN" and runs.n == 0
            assert answer.is_problem  # sent as application/problem+json (service.api.answers)
        else:
            assert answer.status == 200 and runs.n == 1
    finally:
        led.close()
