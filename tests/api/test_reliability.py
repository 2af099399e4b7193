"""Issue #13 through the API, against the Spotler simulator: each test is one finding of the hostile-caller and
flaky-network trial (it failed on the code before the fix).

- a lost answer of a call that is not safe to repeat never repeats it (OUTCOME_UNKNOWN, or settled by read-back)
- a repeat while the first attempt runs waits and replays, never 409
- work that cannot finish in time answers 202 + Location; the Location answers 202, then the synchronous 200
- no 500 on any input, on every write operation; chunked bodies work; a 4xx leaves no side effect
- no clear e-mail or field value in log lines; every address form masked; the SQLite file is 0600
- jobs scoped to the caller; the schema is never missing, also in live mode on a fresh database
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from service.actions.idempotency import MAX_IDEMPOTENCY_KEY_LENGTH
from service.config import Settings
from service.sandbox.launch import SANDBOX_CREDENTIALS
from service.sandbox.spotler import DEMO
from tests.api.support import assert_ok, assert_problem
from tests.conftest import API_KEY

WELCOME = DEMO.automations["welcome"]
JAN_ID, PIET_ID = DEMO.contacts["jan"], DEMO.contacts["piet"]
WAIT = 30
TRIGGER = "/integrationservice/automation/trigger/"


def key() -> str:
    return uuid.uuid4().hex


def start(call, contact, k=None, **extra):
    return call("POST", f"/automations/{WELCOME}/start", {"contact": contact, **extra}, key=k)


def poll(client, location: str, deadline_s: float = WAIT):
    """GET the Location (as Power Automate does) until it stops answering 202."""
    path = location.split("://", 1)[1].split("/", 1)[1]
    deadline = time.monotonic() + deadline_s
    seen = []
    while True:
        r = client.get("/" + path, headers={"X-API-Key": API_KEY})
        seen.append(r.status_code)
        if r.status_code != 202 or time.monotonic() > deadline:
            return r, seen
        threading.Event().wait(0.05)


# -- a lost answer never repeats a side effect ----------------------------------------------------------------

@pytest.mark.parametrize("fault", [{"reset_rate": 1.0, "reset_phase": "after"},
                                   {"hang_rate": 1.0, "hang_seconds": 1.0, "hang_then": "proceed"}])
def test_lost_answer_of_a_trigger_is_outcome_unknown_and_never_triggers_twice(make_call, settings, spotler_sim, sim,
                                                                              fault):
    """Finding: a reset after Spotler applied the trigger (or a read timeout while it worked) gave 503/504; the
    retry triggered the automation a second time."""
    call = make_call(settings.with_(sandbox_upstream_url=spotler_sim.url,
                                    platform_env={"SPOTLER_READ_TIMEOUT": "0.3"}))
    sim.faults.configure(times=1, path_prefix=TRIGGER, **fault)
    k = key()
    first = start(call, {"externalId": JAN_ID}, k)
    body = assert_problem(first, 409, "OUTCOME_UNKNOWN")
    assert "Check in spotler whether automation" in body["detail"] and body["jobId"]
    for _ in range(3):  # Power Automate would not retry a 409; a flow maker's re-run with the same key gets it
        again = start(call, {"externalId": JAN_ID}, k)
        assert again.status_code == 409 and again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
    sim.faults.release_hangs()
    deadline = time.monotonic() + WAIT
    while sim.stats()["triggers"] < 1 and time.monotonic() < deadline:  # a hung request lands late
        threading.Event().wait(0.05)
    assert sim.stats()["triggers"] == 1
    job = call("GET", f"/jobs/{body['jobId']}").json()
    assert job["status"] == "Failed" and job["resultCode"] == "OUTCOME_UNKNOWN"


def test_lost_answer_of_a_score_increase_is_settled_by_reading_the_score_back(call, sim):
    """Finding: SetScore increase counted twice after a lost answer. The score is read back: the call is
    answered as applied, once."""
    sim.faults.configure(reset_rate=1.0, reset_phase="after", times=1, methods=["POST"],
                         path_regex=r"/contact/[^/]+/score$", body_regex=r'"score": ?5')
    body = {"contact": {"externalId": JAN_ID}, "tag": "vip", "score": 5, "mode": "increase"}
    before = sim.tags_of(JAN_ID)["vip"]
    first = call("POST", "/contacts/scores", body, key="score-lost")
    result = assert_ok(first)
    assert result["score"] == before + 5 and sim.tags_of(JAN_ID)["vip"] == before + 5
    again = call("POST", "/contacts/scores", body, key="score-lost")
    assert again.json() == result and sim.tags_of(JAN_ID)["vip"] == before + 5


def test_safe_calls_are_still_retried_after_a_lost_answer(call, sim):
    """A call that is safe to repeat (add a tag) is retried as before: 503, and the retry applies it."""
    sim.faults.configure(reset_rate=1.0, reset_phase="after", times=1, methods=["POST"],
                         path_regex=r"/contact/[^/]+/tag$")
    body = {"contact": {"externalId": PIET_ID}, "tags": "reliable"}
    first = call("POST", "/contacts/tags", body, key="tag-lost")
    assert_problem(first, 503, "UPSTREAM_UNAVAILABLE")
    assert int(first.headers["Retry-After"]) >= 1
    assert_ok(call("POST", "/contacts/tags", body, key="tag-lost"))
    assert "reliable" in sim.tags_of(PIET_ID)


# -- a repeat while the first attempt runs ---------------------------------------------------------------------

def test_repeats_while_the_first_runs_wait_and_get_its_answer_never_409(call, sim):
    """Finding: a repeat while the first attempt ran got 409 REQUEST_IN_PROGRESS, which Power Automate does not
    retry: the flow step failed although the action succeeded."""
    sim.faults.configure(latency_ms=300, path_prefix=TRIGGER)
    k = key()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: start(call, {"externalId": PIET_ID}, k), range(6)))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1 and sim.stats()["triggers"] == 1


def test_a_repeat_still_running_after_the_wait_is_a_retryable_503(make_call, settings, spotler_sim, sim):
    call = make_call(settings.with_(sandbox_upstream_url=spotler_sim.url, in_progress_wait_seconds=0.2))
    sim.faults.configure(latency_ms=800, path_prefix=TRIGGER)
    k = key()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(start, call, {"externalId": PIET_ID}, k)
        deadline = time.monotonic() + WAIT
        while not call("GET", "/jobs", status="InProgress").json()["value"]:  # the first call is running
            assert time.monotonic() < deadline
            threading.Event().wait(0.02)
        repeat = start(call, {"externalId": PIET_ID}, k)
        assert_problem(repeat, 503, "REQUEST_IN_PROGRESS")
        assert int(repeat.headers["Retry-After"]) >= 1
        assert first.result(WAIT).status_code == 200
    assert sim.stats()["triggers"] == 1


# -- long work: 202 + Location ----------------------------------------------------------------------------------

def test_long_work_answers_202_and_its_location_gives_the_synchronous_answer(make_call, settings, spotler_sim, sim):
    """Finding: StopAutomationRuns with 500 ids at 250 ms upstream latency took 127 s (Power Automate gives up at
    120 s). Past the deadline the call answers 202 + absolute Location + Retry-After; the Location answers 202
    (with progress) until done, then the 200 a synchronous call gives."""
    call = make_call(settings.with_(sandbox_upstream_url=spotler_sim.url, sync_deadline_seconds=0.3))
    ids = [str(uuid.uuid4()) for _ in range(40)]
    sim.faults.configure(latency_ms=25, path_prefix="/integrationservice/automation/stop/")
    r = call("POST", "/automation-runs/stop", {"automationContactIds": ids}, key="long-1")
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    assert location.startswith("http://testserver/jobs/job_") and location.endswith("/result")
    assert int(r.headers["Retry-After"]) >= 1 and r.json()["status"] == "InProgress"
    repeat = call("POST", "/automation-runs/stop", {"automationContactIds": ids}, key="long-1")
    assert repeat.status_code == 202 and repeat.headers["Location"] == location  # a lost 202 is replayed
    job_id = r.json()["jobId"]
    job = call("GET", f"/jobs/{job_id}").json()
    assert job["status"] == "InProgress" and job["background"] is True
    done, seen = poll(call.client, location)
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["jobId"] == job_id and result["resultCode"] == "NOTHING_STOPPED"
    assert [x["automationContactId"] for x in result["results"]] == ids
    assert {x["result"] for x in result["results"]} == {"NOT_FOUND"}
    job = call("GET", f"/jobs/{job_id}").json()
    assert job["status"] == "Completed" and job["progress"] == {"done": 40, "total": 40}
    assert sim.stats()["requests"]["POST /automation/stop/<acid>"] == 40  # each run stopped once
    other = call.client.get(location.split("testserver", 1)[1], headers={"X-API-Key": "other-key-0123456789"})
    assert other.status_code == 401


def test_a_slow_platform_switches_a_start_to_the_asynchronous_pattern(make_call, settings, spotler_sim, sim):
    """Finding: StartAutomation with createContactIfMissing at 19 s per upstream call took 133 s."""
    call = make_call(settings.with_(sandbox_upstream_url=spotler_sim.url, sync_deadline_seconds=0.2))
    sim.faults.configure(latency_ms=120)
    r = start(call, {"email": "slow.new@example.com"}, key(), createContactIfMissing=True)
    assert r.status_code == 202, r.text
    done, _ = poll(call.client, r.headers["Location"])
    result = assert_ok(done)
    assert result["contact"]["created"] is True and result["automationContactId"]
    assert sim.stats()["triggers"] == 1


def test_a_short_action_runs_in_the_request_thread_and_its_202_follows_the_forwarded_address(
        make_client, settings, spotler_sim, sim):
    """Short actions (one contact) run in the request's thread, without a hand-off to a runner thread; past the
    deadline the transport answers the job's 202, with the Location the caller reaches us at."""
    # a deadline the first (cold) call always meets, and an upstream that is slower than it
    client = make_client(settings.with_(sandbox_upstream_url=spotler_sim.url, sync_deadline_seconds=1.0))
    runner = client.app_.runtime.runner
    body = {"contact": {"externalId": JAN_ID}}
    headers = {"X-API-Key": API_KEY, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "actions.example.com"}
    assert client.post(f"/automations/{WELCOME}/start", json=body, headers={**headers, "Idempotency-Key": key()}
                       ).status_code == 200
    assert not runner._pool._threads  # no runner thread was started for it
    sim.faults.configure(latency_ms=1600, path_prefix=TRIGGER)
    r = client.post(f"/automations/{WELCOME}/start", json=body, headers={**headers, "Idempotency-Key": key()})
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == f"https://actions.example.com/jobs/{r.json()['jobId']}/result"
    assert r.headers["Retry-After"] and r.headers["X-Request-Id"]
    sim.faults.configure(latency_ms=0)
    done, _ = poll(client, r.headers["Location"])
    assert_ok(done)
    assert sim.stats()["triggers"] == 2
    assert not runner._pool._threads


# -- no 500 on any input -----------------------------------------------------------------------------------------

#: every write operation: a body valid but for the slot @V@ where a hostile value goes, and that slot's field
WRITES = [
    ("POST", f"/automations/{WELCOME}/start", '{"contact": {"externalId": @V@}}', "contact.externalId"),
    ("POST", f"/automations/{WELCOME}/stop", '{"contact": {"externalId": @V@}}', "contact.externalId"),
    ("POST", "/automation-runs/stop", '{"automationContactIds": [@V@]}', "automationContactIds[0]"),
    ("POST", "/campaigns/VHJpZ2dlclNpZ251cA/trigger", '{"contact": {"externalId": @V@}}', "contact.externalId"),
    ("POST", "/campaigns/Q2FtcGFpZ25TaWdudXA/stop", '{"contact": {"externalId": @V@}}', "contact.externalId"),
    ("PUT", "/contacts", '{"contact": {"externalId": @V@}}', "contact.externalId"),
    ("POST", "/contacts/anonymize", '{"contact": {"externalId": @V@}}', "contact.externalId"),
    ("POST", "/contacts/fields", '{"contact": {"externalId": @V@}, "field": "city", "value": "x"}',
     "contact.externalId"),
    ("POST", "/contacts/fields/clear", '{"contact": {"externalId": @V@}, "field": "city"}', "contact.externalId"),
    ("POST", "/contacts/permissions", '{"contact": {"externalId": @V@}, "permissions": "Newsletter"}',
     "contact.externalId"),
    ("POST", "/contacts/tags", '{"contact": {"externalId": @V@}, "tags": "a"}', "contact.externalId"),
    ("POST", "/contacts/tags/remove", '{"contact": {"externalId": @V@}, "tags": "a"}', "contact.externalId"),
    ("POST", "/contacts/scores", '{"contact": {"externalId": "x1"}, "tag": "a", "score": @V@}', "score"),
    ("POST", "/audiences", '{"name": "Team", "id": @V@}', "id"),
    ("POST", "/audiences/aud-vip/members", '{"contacts": [{"externalId": @V@}]}', "contacts[0].externalId"),
    ("POST", "/audiences/aud-vip/members/remove", '{"contacts": [{"externalId": @V@}]}', "contacts[0].externalId"),
]
#: class -> (value for the slot, or a whole body when it starts with "!"; Content-Type; status)
HOSTILE = {
    "no content type": ('"x1"', None, 415),
    "nested 100,000 deep": ("!" + "[" * 100_000 + "]" * 100_000, "application/json", 400),
    "integer of 5,000 digits": ("9" * 5000, "application/json", 400),
    "lone surrogate": ('"a\\ud800b"', "application/json", 400),
    "NUL in a string": ('"a\\u0000b"', "application/json", 400),
    "NaN": ("NaN", "application/json", 400),
    "Infinity": ("-Infinity", "application/json", 400),
}


def test_hostile_input_is_a_4xx_problem_on_every_write_operation_and_records_nothing(api, sim):
    """Finding: 100 answers were 500, on every write operation (no Content-Type - also writing a Failed
    INTERNAL_ERROR record -, JSON nested 100,000 deep, an integer over 4,300 digits, a lone surrogate, NUL,
    NaN/Infinity). Each is a 4xx problem naming the field; nothing is recorded or sent."""
    failures = []
    for method, path, template, field in WRITES:
        for name, (value, ctype, status) in HOSTILE.items():
            body = value[1:] if value.startswith("!") else template.replace("@V@", value)
            headers = {"X-API-Key": API_KEY}
            if ctype:
                headers["Content-Type"] = ctype
            if name == "no content type" and path.endswith("/scores"):
                body = template.replace("@V@", "1")
            r = api.request(method, path, content=body.encode(), headers=headers)
            ok = (r.status_code == status and r.headers["content-type"].startswith("application/problem+json")
                  and {"type", "title", "status", "detail", "code"} <= r.json().keys() and len(r.text) < 2000)
            if ok and status == 400 and not value.startswith("!"):
                ok = r.json().get("field") == field
            if not ok:
                failures.append((method, path, name, r.status_code, r.text[:200]))
    assert failures == []
    assert api.get("/jobs", headers={"X-API-Key": API_KEY}).json()["value"] == []  # nothing half-recorded
    assert sum(sim.stats()["requests"].values()) == 0  # and nothing reached the platform


def test_nul_and_nan_never_wedge_a_job_on_postgresql(make_call, settings, pg_url, spotler_sim, sim):
    """Finding (PostgreSQL): NUL in a string made the ledger write fail after the platform answered 404; the job
    stayed InProgress (409, then OUTCOME_UNKNOWN)."""
    call = make_call(settings.with_(sandbox_upstream_url=spotler_sim.url, database_url=pg_url))
    k = key()
    r = call.client.post(f"/automations/{WELCOME}/start", content=b'{"contact": {"externalId": "ghost\\u0000"}}',
                         headers={"X-API-Key": API_KEY, "Content-Type": "application/json", "Idempotency-Key": k})
    assert_problem(r, 400, "INVALID_CHARACTER")
    unknown = start(call, {"externalId": "ghost-id"}, k)  # same key, other body: nothing was recorded for it
    assert_problem(unknown, 404, "CONTACT_NOT_FOUND")
    again = start(call, {"externalId": "ghost-id"}, k)
    assert again.status_code == 404 and again.headers["Idempotent-Replayed"] == "true"
    jobs = call("GET", "/jobs").json()["value"]
    assert [j["status"] for j in jobs] == ["Failed"]


def test_a_chunked_body_is_read(call, sim, api):
    """Finding: a chunked body was refused as "RequestBody is required"."""
    def chunks():
        yield b'{"contact": '
        yield json.dumps({"externalId": JAN_ID}).encode() + b"}"

    r = api.post(f"/automations/{WELCOME}/start", content=chunks(),
                 headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
    assert_ok(r)
    assert sim.stats()["triggers"] == 1


def test_a_huge_run_id_is_a_400_naming_the_field_not_a_retryable_503(call, sim):
    """Finding: a 500 KB run id was a retryable 503 (the platform refused the URL) instead of a 400."""
    r = call("POST", "/automation-runs/stop", {"automationContactIds": "x" * 500_000})
    body = assert_problem(r, 400, "INVALID_IDENTIFIER")
    assert body["field"] == "automationContactIds" and len(r.text) < 1000  # not echoed at full length
    assert sum(sim.stats()["requests"].values()) == 0


@pytest.mark.parametrize("header,code", [("x" * (MAX_IDEMPOTENCY_KEY_LENGTH + 1), "INVALID_IDEMPOTENCY_KEY"),
                                         ("x" * 230, "INVALID_IDEMPOTENCY_KEY")])
def test_idempotency_key_limit_is_one_rule_with_one_code(call, header, code):
    """Finding: the spec allowed 200 characters, the code 255, with two error codes."""
    assert_problem(start(call, {"externalId": JAN_ID}, header), 400, code)
    assert_ok(start(call, {"externalId": JAN_ID}, "y" * MAX_IDEMPOTENCY_KEY_LENGTH))


# -- a 4xx never leaves a side effect -----------------------------------------------------------------------

def test_an_external_id_with_a_slash_is_refused_before_any_upstream_call(call, sim):
    """Finding: UpsertContact with externalId team/42 created the contact, then answered 404."""
    r = call("PUT", "/contacts", {"contact": {"externalId": "team/42", "email": "team42@example.com"}})
    body = assert_problem(r, 400, "INVALID_IDENTIFIER")
    assert body["field"] == "contact.externalId"
    assert sim.contact("team/42") is None and sim.stats()["contacts_created"] == 0
    assert sum(sim.stats()["requests"].values()) == 0


def test_an_audience_id_with_a_slash_is_refused(call, sim):
    """Finding: CreateAudience accepted an id with '/' (an audience nobody can address afterwards)."""
    assert_problem(call("POST", "/audiences", {"name": "Team", "id": "team/42"}), 400, "INVALID_IDENTIFIER")
    assert sim.stats()["audiences_created"] == 0


# -- privacy ----------------------------------------------------------------------------------------------------

def test_no_log_line_carries_a_clear_email_or_a_field_value(call, sim, capsys):
    """Finding: the request validator logged the offending value (74 log lines carried clear e-mail addresses,
    one a 1 MB value)."""
    long_local = "maria.longname." + "x" * 300
    call("POST", f"/automations/{WELCOME}/start", {"contact": {"email": f"{long_local}@example.com"}})
    call("POST", f"/automations/{WELCOME}/start", {"contact": {"email": "jöhn.dœ@exämple.com"},
                                                   "fields": {"voucherCode": 123456789}})
    call("POST", "/contacts/fields", {"contact": {"email": "nobody.here@example.com"}, "field": "city",
                                      "value": "Secret-City-Value"})
    call("POST", "/contacts/scores", {"contact": {"externalId": JAN_ID}, "tag": "t", "score": "not-a-number-xyz"})
    out = capsys.readouterr()
    text = out.out + out.err
    assert text.count('"logger"') > 3  # the JSON log lines were captured
    for forbidden in ("maria.longname", "jöhn.dœ", "nobody.here", "Secret-City-Value", "not-a-number-xyz"):
        assert forbidden not in text, forbidden


def test_every_address_form_is_masked_in_jobs(call, sim):
    """Finding: non-ASCII or odd addresses were stored unmasked in the ledger's inputs and messages and returned
    by GET /jobs."""
    for email in ("jöhn.dœ@exämple.com", "O'Brien+x@Example.org"):
        call("POST", "/contacts/anonymize", {"contact": {"email": email}})
    jobs = call("GET", "/jobs").json()["value"]
    text = json.dumps(jobs, ensure_ascii=False)
    assert len(jobs) == 2 and "jöhn" not in text and "Brien" not in text
    assert {j["contact"]["emailMasked"] for j in jobs} == {"j***@exämple.com", "o***@example.org"}


def test_the_sqlite_ledger_file_is_private(call, settings):
    """Finding: the SQLite ledger file was world-readable."""
    assert_ok(start(call, {"externalId": JAN_ID}))
    path = settings.database_url.split("sqlite:///", 1)[1]
    for name in (path, path + "-wal"):
        if os.path.exists(name):
            assert stat.S_IMODE(os.stat(name).st_mode) & 0o077 == 0, name


# -- jobs are scoped to the caller ----------------------------------------------------------------------------

def test_a_caller_sees_only_its_own_jobs(make_client, settings, spotler_sim, sim):
    """Finding: one API key read and listed another key's jobs."""
    other_key = "other-key-0123456789abcdef"
    client = make_client(settings.with_(sandbox_upstream_url=spotler_sim.url, api_keys=(API_KEY, other_key)))
    mine = client.post(f"/automations/{WELCOME}/start", json={"contact": {"externalId": JAN_ID}},
                       headers={"X-API-Key": API_KEY}).json()["jobId"]
    theirs = {"X-API-Key": other_key}
    assert client.get("/jobs", headers=theirs).json()["value"] == []
    assert client.get(f"/jobs/{mine}", headers=theirs).status_code == 404
    assert client.get(f"/jobs/{mine}/result", headers=theirs).status_code == 404
    assert [j["jobId"] for j in client.get("/jobs", headers={"X-API-Key": API_KEY}).json()["value"]] == [mine]


# -- the schema is never missing ----------------------------------------------------------------------------

def test_live_mode_on_a_fresh_database_migrates_itself(make_client, tmp_path, spotler_sim, sim):
    """Finding: live mode on a fresh database answered 500 to every write ("no such table: job_ledger")."""
    creds = SANDBOX_CREDENTIALS["spotler"]
    live = Settings(api_keys=(API_KEY,), database_url=f"sqlite:///{tmp_path}/fresh/ledger.db",
                    ledger_hash_key="a-live-ledger-key-0123456789abcdef", list_cache_seconds=0,
                    platform_env={"SPOTLER_CONSUMER_KEY": creds["consumer_key"],
                                  "SPOTLER_CONSUMER_SECRET": creds["consumer_secret"],
                                  "SPOTLER_BASE_URL": spotler_sim.url})
    assert live.mode == "live"
    client = make_client(live)
    r = client.post(f"/automations/{WELCOME}/start", json={"contact": {"externalId": JAN_ID}},
                    headers={"X-API-Key": API_KEY})
    assert_ok(r)
    engine = sa.create_engine(live.database_url)
    try:
        assert sa.inspect(engine).has_table("job_ledger")
    finally:
        engine.dispose()


def test_postgresql_without_auto_migrate_answers_503_saying_what_to_run(make_client, settings, pg_url, spotler_sim,
                                                                       caplog):
    client = make_client(settings.with_(sandbox_upstream_url=spotler_sim.url, database_url=pg_url,
                                        auto_migrate=False))
    r = client.post(f"/automations/{WELCOME}/start", json={"contact": {"externalId": JAN_ID}},
                    headers={"X-API-Key": API_KEY})
    assert_problem(r, 503, "LEDGER_UNAVAILABLE")
    assert int(r.headers["Retry-After"]) >= 1
    assert any("python -m service.db upgrade" in rec.getMessage() for rec in caplog.records)
