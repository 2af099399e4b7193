"""The job ledger as a repository: records, queries, privacy, maintenance - on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from service import privacy
from service.actions.idempotency import ActionCall, ActionResult, body_hash, derive_key
from service.actions.ledger import JobRecord, Ledger, new_job_id, utcnow
from service.actions.runner import JobRunner, RunnerConfig
from service.actions.problems import ActionError
from service.providers import errors as perr
from service.providers.base import ContactRef
from tests.databases import TEST_HASH_KEY

API_KEY = "sk_live_4f9a8b7c6d5e4f3a2b1c"
CALLER = "key:" + privacy.api_key_id(API_KEY)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def call(op="AddTag", *, email=None, external_id=None, inputs=None, key=None, request_id="req"):
    body = repr(inputs).encode()
    return ActionCall(operation=op, provider="spotler", caller=CALLER, request_id=request_id,
                      known_secrets=(API_KEY,),
                      contact=ContactRef(email=email, external_id=external_id) if email or external_id else None,
                      inputs=inputs, body_hash=body_hash(body),
                      idempotency_key=derive_key(op, {"Idempotency-Key": key} if key else {}, body, CALLER),
                      params={}, body=inputs)


def run(ledger, call, work):
    """One call through a job runner on ``ledger``."""
    runner = JobRunner(ledger, None, RunnerConfig(wait_seconds=0.3))
    try:
        return runner.run(call, work)
    finally:
        runner.stop()


def done(ctx):
    return ActionResult(body={"jobId": ctx.job_id})


def test_job_ids_are_short_opaque_and_time_ordered():
    t = utcnow()
    a, b = new_job_id(t), new_job_id(t + timedelta(milliseconds=5))
    assert re.fullmatch(r"job_[0-9A-HJKMNP-TV-Z]{26}", a)
    assert a[:14] < b[:14] and a != new_job_id(t)


def test_a_record_holds_what_was_asked_and_what_happened(ledger):
    answer = run(ledger, call("StartAutomation", email="  Jane.Doe@Example.com ", inputs={"automationId": "a1"},
                             request_id="req-42"),
                        lambda ctx: ActionResult(body={"jobId": ctx.job_id}, result_code="OK", message="Started.",
                                                 upstream_ids={"automationContactIds": ["101", "102"]}))
    rec = ledger.get(answer.job_id)
    assert isinstance(rec, JobRecord)
    assert (rec.operation, rec.provider, rec.status, rec.http_status, rec.result_code, rec.message) == (
        "StartAutomation", "spotler", "Completed", 200, "OK", "Started.")
    assert rec.email_masked == "j***@example.com" and rec.external_id is None
    assert rec.caller == CALLER and rec.request_id == "req-42"
    assert rec.inputs == {"automationId": "a1"} and rec.attempts == 1
    assert rec.created_at.tzinfo is not None and rec.finished_at >= rec.created_at
    assert rec.duration_ms is not None and rec.duration_ms >= 0 and rec.lease_expires_at is None
    assert rec.upstream_ids == {"automationContactIds": ["101", "102"]}
    assert ledger.get("job_nope") is None and ledger.get("") is None


def test_public_dict_is_camel_case_and_omits_absent_values(ledger):
    answer = run(ledger, call(external_id="ext-7"), done)
    doc = ledger.get(answer.job_id).to_public_dict()
    assert doc["jobId"] == answer.job_id and doc["status"] == "Completed" and doc["httpStatus"] == 200
    assert doc["contact"] == {"externalId": "ext-7"}
    assert doc["createdAt"].endswith("Z") and doc["finishedAt"].endswith("Z")
    assert datetime.fromisoformat(doc["createdAt"].replace("Z", "+00:00")).tzinfo is not None
    assert "upstreamIds" not in doc and "message" not in doc
    assert None not in doc.values() and "" not in doc.values()
    assert set(doc) <= {"jobId", "operation", "provider", "status", "resultCode", "message", "httpStatus", "contact",
                        "upstreamIds", "attempts", "createdAt", "finishedAt", "durationMs", "requestId"}
    in_progress = JobRecord(job_id="job_x", operation="AddTag", provider="spotler", status="InProgress",
                            created_at=utcnow(), updated_at=utcnow())
    assert set(in_progress.to_public_dict()) == {"jobId", "operation", "provider", "status", "attempts", "createdAt"}


def test_list_filters_by_status_operation_email_and_time(db_url):
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    clock = Clock(t0)
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, clock=clock)
    try:
        ids = {}
        for i, (op, email) in enumerate([("AddTag", "ann@example.com"), ("StartAutomation", "bob@example.com"),
                                         ("AddTag", "Bob@Example.com"), ("SetScore", None)]):
            clock.now = t0 + timedelta(minutes=i)
            ids[i] = run(led, call(op, email=email), done).job_id
        clock.now = t0 + timedelta(minutes=10)
        failed = run(led, call("AddTag", email="ann@example.com"),
                         lambda ctx: (_ for _ in ()).throw(perr.Rejected("Contact opted out.", code="OPTED_OUT")))

        def listed(**kw):
            return [r.job_id for r in led.list(**kw)[0]]

        assert listed() == [failed.job_id, ids[3], ids[2], ids[1], ids[0]]  # newest first
        assert listed(status="Failed") == [failed.job_id]
        assert listed(operation="AddTag", status="Completed") == [ids[2], ids[0]]
        assert listed(email=" BOB@example.COM ") == [ids[2], ids[1]]
        assert listed(email="nobody@example.com") == []
        assert listed(since=t0 + timedelta(minutes=1), until=t0 + timedelta(minutes=3)) == [ids[2], ids[1]]
        assert listed(since=datetime(2025, 3, 1, 12, 3)) == [failed.job_id, ids[3]]  # naive = UTC
        assert listed(caller="key:other") == []
        assert len(listed(caller=CALLER)) == 5
        with pytest.raises(ActionError) as ei:
            led.list(status="Done")
        assert ei.value.problem.status == 400
    finally:
        led.close()


def test_list_pages_with_a_cursor(db_url):
    clock = Clock(datetime(2025, 1, 1, tzinfo=UTC))
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, clock=clock)
    try:
        made = []
        for i in range(7):
            clock.now += timedelta(seconds=1 if i != 3 else 0)  # two records share a timestamp
            made.append(run(led, call(), done).job_id)
        pages, cursor = [], None
        while True:
            items, cursor = led.list(limit=3, cursor=cursor)
            pages.append([r.job_id for r in items])
            if cursor is None:
                break
        assert [len(p) for p in pages] == [3, 3, 1]
        flat = [j for p in pages for j in p]
        assert sorted(flat) == sorted(made) and len(set(flat)) == 7
        created = [led.get(j).created_at for j in flat]
        assert created == sorted(created, reverse=True)
        with pytest.raises(ActionError) as ei:
            led.list(cursor="not-a-cursor")
        assert ei.value.problem.code == "INVALID_CURSOR"
    finally:
        led.close()


def test_no_secret_and_no_clear_email_in_any_column_of_any_row(ledger):
    email = "Jane.Secret@Example.com"
    secret_inputs = {
        "contact": {"email": email},
        "password": "hunter2",
        "apiKey": API_KEY,
        "nested": {"clientSecret": "s3cr3t-value", "Authorization": "Bearer abcdef123456", "list": [email]},
        "fieldsText": f"note=call {email};password=hunter2",
        "echo": f"my key is {API_KEY}",
    }
    run(ledger, call("StartAutomation", email=email, inputs=secret_inputs, key="k1"),
               lambda ctx: ActionResult(body={"jobId": ctx.job_id, "contact": {"email": email}},
                                        message=f"Started for {email}."))
    run(ledger, call("AddTag", email=email, inputs=secret_inputs, key="k2"),
               lambda ctx: (_ for _ in ()).throw(perr.NotFound(f"No contact {email}.", code="CONTACT_NOT_FOUND")))
    run(ledger, call("SetScore", email=email, inputs=secret_inputs, key="k3"),
               lambda ctx: (_ for _ in ()).throw(perr.Unavailable(f"Down for {email}.")))
    assert run(ledger, call("RemoveTag", email=email, inputs=secret_inputs),
               lambda ctx: (_ for _ in ()).throw(ValueError(f"bug with {email} and {API_KEY}"))).status == 500

    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM job_ledger")).mappings().all()
    assert len(rows) == 4
    for row in rows:
        for column, value in row.items():
            text = str(value).lower()
            for forbidden in ("hunter2", API_KEY.lower(), email.lower(), "s3cr3t-value", "abcdef123456"):
                assert forbidden not in text, f"{forbidden!r} stored in clear in column {column}"
    # ...and the replay still gives the original answer
    replay = run(ledger, call("StartAutomation", email=email, inputs=secret_inputs, key="k1"), done)
    assert replay.replayed and replay.body["contact"] == {"email": email}
    stored = ledger.list(operation="StartAutomation")[0][0]
    assert stored.inputs["password"] == "***" and stored.inputs["contact"]["email"] == "j***@example.com"
    assert stored.message == "Started for j***@example.com."


def test_a_different_ledger_key_cannot_read_stored_answers_or_match_emails(db_url, ledger):
    run(ledger, call(email="ann@example.com", inputs={"a": 1}, key="kk"), done)
    other = Ledger.from_url(db_url, email_hash_key=b"another-key")
    try:
        assert other.list(email="ann@example.com")[0] == []
        with pytest.raises(ActionError) as ei:
            run(other, call(email="ann@example.com", inputs={"a": 1}, key="kk"), done)
        assert ei.value.problem.code == "STORED_ANSWER_UNAVAILABLE"
    finally:
        other.close()


def test_purge_deletes_old_finished_records_only(db_url):
    """Running records are never purged: an expired one is resumed or settled by the service."""
    clock = Clock(datetime(2025, 1, 1, tzinfo=UTC))
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, clock=clock, lease_seconds=150)
    try:
        old = [run(led, call(), done).job_id for _ in range(3)]
        clock.now += timedelta(days=40)
        running_old = led.insert(call(), clock.now - timedelta(days=35))  # lease long expired: to be resumed
        recent = run(led, call(), done).job_id
        assert led.purge(older_than_days=30, batch_size=2) == 3
        assert all(led.get(j) is None for j in old)
        assert led.get(recent) is not None and led.get(running_old).status == "InProgress"
        assert led.purge(older_than_days=30) == 0
    finally:
        led.close()


def test_ledger_rejects_an_empty_key(db_url):
    with pytest.raises(ValueError):
        Ledger.from_url(db_url, email_hash_key=b"")


@pytest.mark.parametrize("email", ["jöhn.dœ@exämple.com", '"john doe"@example.com', "john@[192.0.2.1]",
                                   "山田太郎@例え.jp", "O'Brien+news@Example.org"])
def test_every_address_form_is_masked_in_inputs_messages_and_columns(ledger, email):
    """Finding: non-ASCII or odd addresses were stored unmasked in the ledger's inputs and messages (and returned
    by GET /jobs). Field values are not stored in clear either."""
    inputs = {"contact": {"email": email}, "contacts": [{"email": email}], "fields": {"firstName": "Jöhn"},
              "fieldsText": "voucherCode=SECRET-VOUCHER;city=Zürich", "value": "private-value"}
    run(ledger, call("UpsertContact", email=email, inputs=inputs, key="k-odd"),
        lambda ctx: (_ for _ in ()).throw(perr.NotFound(f"No contact {email} here.", code="CONTACT_NOT_FOUND")))
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM job_ledger")).mappings().all()
    local = email.rsplit("@", 1)[0].strip('"')
    for row in rows:
        for column, value in row.items():
            text = str(value)
            for forbidden in (local, "SECRET-VOUCHER", "Zürich", "private-value", "Jöhn"):
                assert forbidden not in text, f"{forbidden!r} stored in clear in column {column}"
    (rec,), _ = ledger.list()
    public = str(rec.to_public_dict())
    assert local not in public and "***@" in public
