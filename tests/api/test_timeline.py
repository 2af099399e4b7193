"""Dataverse timeline write-back through the whole stack: regarding in, the note on the record's timeline out.

Everything is counted where it happens: triggers at the Spotler simulator, notes and requests at the Dataverse
simulator, token requests at the Entra ID simulator.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from service.microsoft.config import MicrosoftSettings
from service.sandbox.dataverse import demo as dv
from service.sandbox.entra import demo
from service.sandbox.spotler import DEMO
from tests.api.support import assert_problem
from tests.conftest import API_KEY

WELCOME = DEMO.automations["welcome"]
JAN = {"table": "contact", "id": dv.CONTACT_JAN}


@pytest.fixture
def app(make_client, settings, spotler_sim, sim, ms_settings):
    return make_client(settings.with_(sandbox_upstream_url=spotler_sim.url,
                                      microsoft=ms_settings.with_(timeline_budget_seconds=2)))


def start(app, body, headers=None, key=None):
    return app.post(f"/automations/{WELCOME}/start", json=body,
                    headers={**(headers or {"X-API-Key": API_KEY}), "Idempotency-Key": key or uuid.uuid4().hex})


def user(ms) -> dict[str, str]:
    return {"Authorization": f"Bearer {ms.entra.user_token()}"}


def test_a_maker_starts_an_automation_from_a_record_and_the_note_appears(app, ms, sim):
    r = start(app, {"regarding": JAN, "fieldsText": "voucherCode=WELCOME10"}, user(ms))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["contact"]["externalId"] == DEMO.contacts["jan"]  # found by the record's email address
    assert body["timeline"]["status"] == "written"
    [note] = ms.dataverse.notes(dv.CONTACT_JAN)
    assert note["annotationid"] == body["timeline"]["noteId"]
    assert note["subject"] == "Spotler Mail+: Automation started: Welcome journey"
    assert body["automationContactId"] in note["notetext"] and body["jobId"] in note["notetext"]
    assert "jan@example.com" not in note["notetext"]
    assert (note["createdbytype"], note["_createdby_value"]) == ("user", demo.USER_OBJECT_ID)  # on behalf of
    job = app.get(f"/jobs/{body['jobId']}", headers=user(ms)).json()  # jobs are scoped to their caller
    assert job["timeline"] == body["timeline"]
    assert ms.entra.token_requests("obo") == 1  # one token for the record read and the note
    assert sim.stats()["triggers"] == 1


def test_with_an_api_key_the_app_writes_and_a_given_contact_is_used(app, ms):
    account = {"table": "account", "id": dv.ACCOUNT_CONTOSO}
    r = app.post("/contacts/tags", json={"contact": {"email": DEMO.emails["anna"]}, "tags": "vip;newsletter",
                                         "regarding": account}, headers={"X-API-Key": API_KEY})
    assert r.status_code == 200, r.text
    assert r.json()["timeline"]["status"] == "written"
    [note] = ms.dataverse.notes(dv.ACCOUNT_CONTOSO)
    assert note["subject"] == "Spotler Mail+: Tags added: vip, newsletter"
    assert note["_createdby_value"] == demo.API_CLIENT_ID
    assert ms.dataverse.state()["counters"].get("get_account", 0) == 0  # the contact was given: no record read
    for _ in range(5):
        app.post("/contacts/tags/remove", json={"contact": {"email": DEMO.emails["anna"]}, "tags": "vip",
                                                "regarding": account}, headers={"X-API-Key": API_KEY})
    assert ms.entra.token_requests("client_credentials") == 1  # the app token came from msal's cache
    assert len(ms.dataverse.notes(dv.ACCOUNT_CONTOSO)) == 6


def test_a_lead_unknown_to_the_platform_is_created_from_the_record(app, ms, sim):
    r = start(app, {"regarding": {"table": "lead", "id": dv.LEAD_LOTTE.upper()}, "createContactIfMissing": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["contact"]["created"] is True and body["timeline"]["status"] == "written"
    props = sim.contact(body["contact"]["externalId"])["properties"]
    assert (props["email"], props["firstName"], props["lastName"]) == ("lotte.lead@example.com", "Lotte", "Lead")
    [note] = ms.dataverse.notes(dv.LEAD_LOTTE)
    assert "(created by this action)" in note["notetext"]


@pytest.mark.parametrize("regarding, status, code", [
    ({"table": "contact", "id": "not-a-guid"}, 400, "INVALID_REGARDING"),
    ({"table": "contact", "id": str(uuid.uuid4())}, 404, "REGARDING_NOT_FOUND"),
    ({"table": "contact", "id": dv.CONTACT_NO_EMAIL}, 422, "REGARDING_HAS_NO_EMAIL"),
    ({"table": "contact", "id": dv.CONTACT_BAD_EMAIL}, 422, "REGARDING_EMAIL_INVALID"),
])
def test_a_record_that_gives_no_contact_fails_before_the_platform(app, ms, sim, regarding, status, code):
    assert_problem(start(app, {"regarding": regarding}), status, code)
    assert sim.stats()["triggers"] == 0 and ms.dataverse.notes() == []


def test_dataverse_unavailable_for_the_record_is_a_retryable_503(app, ms, sim):
    ms.dataverse_faults.configure(fail_rate=1, fail_status=503, retry_after=7, methods=["GET"])
    r = start(app, {"regarding": JAN})
    assert_problem(r, 503, "DATAVERSE_UNAVAILABLE")
    assert r.headers["retry-after"] == "7" and sim.stats()["triggers"] == 0


def test_one_note_under_20_concurrent_identical_calls_and_replays(app, ms, sim):
    headers, key = user(ms), uuid.uuid4().hex
    body = {"regarding": JAN, "fieldsText": "voucherCode=ONCE"}
    sim.faults.configure(latency_ms=150)  # keep the first call in flight while the others arrive
    try:
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: start(app, body, headers, key), range(20)))
    finally:
        sim.faults.configure(latency_ms=0)
    ok = [a for a in answers if a.status_code == 200]
    assert ok and all(a.status_code in (200, 429, 503) for a in answers), [a.text for a in answers]
    assert all("retry-after" in a.headers for a in answers if a.status_code != 200)
    again = start(app, body, headers, key)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert {a.json()["timeline"]["noteId"] for a in [*ok, again]} == {ok[0].json()["timeline"]["noteId"]}
    assert sim.stats()["triggers"] == 1
    assert len(ms.dataverse.notes(dv.CONTACT_JAN)) == 1


def test_retries_write_one_note(app, ms, sim):
    """The platform fails once (the flow retries), then Dataverse's answer to the note is lost (the service
    retries): one trigger, one note, and a replay changes nothing."""
    key, body = uuid.uuid4().hex, {"regarding": JAN}
    sim.faults.configure(fail_rate=1, fail_status=503, retry_after=0, times=3)
    first = start(app, body, key=key)
    assert first.status_code == 503 and ms.dataverse.notes() == []  # no note for an action that did not happen
    ms.dataverse_faults.configure(reset_rate=1, reset_phase="after", times=1, methods=["POST"])
    retried = start(app, body, key=key)
    assert retried.status_code == 200 and retried.json()["timeline"]["status"] == "written", retried.text
    replay = start(app, body, key=key)
    assert replay.json() == retried.json()
    assert sim.stats()["triggers"] == 1
    assert len(ms.dataverse.notes(dv.CONTACT_JAN)) == 1
    assert ms.dataverse.state()["counters"]["post_annotation"] == 2  # the lost answer and the duplicate


def test_dataverse_down_leaves_the_action_done_once_and_the_job_says_failed(app, ms, sim):
    key = uuid.uuid4().hex
    ms.dataverse_faults.configure(fail_rate=1, fail_status=503, retry_after=0, methods=["POST"])
    r = start(app, {"contact": {"email": DEMO.emails["jan"]}, "regarding": JAN}, key=key)
    assert r.status_code == 200, r.text
    timeline = r.json()["timeline"]
    assert (timeline["status"], timeline["reason"]) == ("failed", "DATAVERSE_UNAVAILABLE")
    assert "noteId" not in timeline
    job = app.get(f"/jobs/{r.json()['jobId']}", headers={"X-API-Key": API_KEY}).json()
    assert job["status"] == "Completed" and job["timeline"]["status"] == "failed"
    ms.dataverse_faults.clear()
    assert start(app, {"contact": {"email": DEMO.emails["jan"]}, "regarding": JAN}, key=key).json() == r.json()
    assert sim.stats()["triggers"] == 1 and ms.dataverse.notes() == []


def test_a_429_longer_than_the_budget_fails_the_note_at_once(app, ms, sim):
    ms.dataverse_faults.configure(fail_rate=1, fail_status=429, retry_after=120, methods=["POST"])
    r = start(app, {"contact": {"email": DEMO.emails["jan"]}, "regarding": JAN})
    assert r.status_code == 200 and r.json()["timeline"]["reason"] == "DATAVERSE_RATE_LIMITED"
    assert ms.dataverse_faults.stats()["injected"] == {"status_429": 1}  # asked once, no waiting
    assert sim.stats()["triggers"] == 1


def test_without_dataverse_the_note_is_skipped(make_client, settings, spotler_sim, sim, ms):
    """Entra ID configured (live settings against the simulator), Dataverse not: a note cannot be written,
    and a record cannot stand in for the contact."""
    entra_only = MicrosoftSettings(tenant_id=demo.TENANT_ID, client_id=demo.API_CLIENT_ID,
                                   app_id_uri=demo.API_APP_ID_URI, authority_host=ms.entra_url,
                                   ca_bundle=ms.ca_path, jwks_refresh_cooldown_seconds=0)
    client = make_client(settings.with_(sandbox_upstream_url=spotler_sim.url, microsoft=entra_only))
    r = start(client, {"contact": {"email": DEMO.emails["jan"]}, "regarding": JAN}, user(ms))
    assert r.status_code == 200 and r.json()["timeline"]["status"] == "skipped"
    assert_problem(start(client, {"regarding": JAN}), 400, "DATAVERSE_NOT_CONFIGURED")


def test_no_token_secret_or_clear_email_in_logs_or_the_ledger(app, ms, capsys):
    token = ms.entra.user_token()
    ok = start(app, {"regarding": JAN, "fieldsText": "voucherCode=X"}, {"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    ms.dataverse_faults.configure(fail_rate=1, fail_status=503, retry_after=0, methods=["POST"])
    failed = start(app, {"regarding": {"table": "contact", "id": dv.CONTACT_ANNA}},
                   {"Authorization": f"Bearer {token}"})
    assert failed.json()["timeline"]["status"] == "failed"
    app.get("/connection", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    logs = capsys.readouterr().out
    with app.app_.runtime.ledger.engine.connect() as conn:
        rows = json.dumps([dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM job_ledger"))],
                          default=str)
    assert "aad:" in rows and "timeline" in rows  # the rows are there
    for secret in (token, token.split(".")[2], demo.API_CLIENT_SECRET, "jan@example.com", "anna@example.com"):
        assert secret not in logs and secret not in rows
