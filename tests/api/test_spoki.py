"""Every action through the API with PROVIDER=spoki, against the Spoki simulator over a real socket.

One simulator per module on a loopback port (the sandbox account's API key), reset before each test; each test
gets its own app (real factory, sandbox mode) pointed at it with ``sandbox_upstream_url``.
"""

from __future__ import annotations

import json

import pytest
import yaml

from service import privacy
from service.actions.catalog import OPERATIONS
from service.capabilities_table import ROOT
from service.sandbox.launch import SANDBOX_CREDENTIALS
from service.sandbox.spoki import demo
from tests.api.test_foundation import assert_problem

MARIO = {"email": demo.CONTACT_MARIO_EMAIL}
GIULIA = {"email": demo.CONTACT_GIULIA_EMAIL}
ORDER = str(demo.AUTOMATION_ORDER_ID)
CUSTOMERS, PROSPECTS = str(demo.LIST_CUSTOMERS_ID), str(demo.LIST_PROSPECTS_ID)


@pytest.fixture(scope="module")
def spoki(spoki_sim):
    return spoki_sim


@pytest.fixture
def sim(spoki):
    simulator = spoki.simulator
    simulator.reset()
    return simulator


@pytest.fixture
def call(make_call, settings, spoki, sim):
    return make_call(settings.with_(provider="spoki", sandbox_upstream_url=spoki.url))


def ok(resp) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def counters(sim) -> dict:
    return sim.state()["counters"]


def custom(sim, cid: int) -> dict:
    """The stored custom fields of a contact by code."""
    return {sim.custom_fields[fid]["code"]: v for fid, v in sim.contact(cid)["custom"].items()}


def start(call, automation=ORDER, key=None, **body):
    body.setdefault("contact", MARIO)
    return call("POST", f"/automations/{automation}/start", body, key=key)


# -- system: health, connection, capabilities ------------------------------------------------------------

def test_health_and_capabilities_agree_on_the_platform(call):
    health = ok(call.client.get("/health"))
    caps = ok(call("GET", "/capabilities"))
    assert health["provider"] == caps["provider"] == "spoki"
    assert health["mode"] == caps["mode"] == "sandbox"
    by_op = {o["operationId"]: o for o in caps["operations"]}
    assert list(by_op) == [o.operation_id for o in OPERATIONS]
    assert by_op["ListTags"]["supported"] and not by_op["AddTag"]["supported"]
    assert "Add Tag" in by_op["AddTag"]["reason"]
    assert by_op["AddToAudience"]["supported"] and not by_op["StopAutomation"]["supported"]


def test_test_connection_reaches_the_simulator(call, sim):
    body = ok(call("GET", "/connection"))
    assert body["status"] == "ok" and body["provider"] == "spoki"
    sim.api_keys.clear()  # the platform no longer accepts the key
    try:
        body = assert_problem(call("GET", "/connection"), 424, "PLATFORM_AUTH_FAILED")
        assert "SPOKI_API_KEY" in body["detail"]
        assert counters(sim)["auth_failures"] >= 1
    finally:
        sim.api_keys.add(SANDBOX_CREDENTIALS["spoki"]["api_key"])


def _requests() -> dict[str, tuple[str, str]]:
    """operationId -> (method, path with placeholders filled) from openapi.yaml."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    out = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId"):
                filled = path.replace("{automationId}", ORDER).replace("{audienceId}", PROSPECTS)
                filled = filled.replace("{triggerId}", "t1").replace("{campaignId}", "c1")
                out[op["operationId"]] = (method.upper(), filled)
    return out


ANY_BODY = {"contact": MARIO, "contacts": [MARIO], "tags": "VIP", "tag": "VIP", "score": 1, "name": "Clienti",
            "automationContactIds": "run-1", "field": "CITY", "value": "Roma", "permissions": "marketing"}


@pytest.mark.parametrize("operation_id", [o.operation_id for o in OPERATIONS])
def test_each_action_answers_not_supported_exactly_when_capabilities_say_so(call, sim, operation_id):
    item = next(o for o in ok(call("GET", "/capabilities"))["operations"] if o["operationId"] == operation_id)
    method, path = _requests()[operation_id]
    before = sim.state()
    r = call(method, path, ANY_BODY if method != "GET" else None)
    if item["supported"]:
        assert "NOT_SUPPORTED_BY_PLATFORM" not in r.text, r.text
    else:
        body = assert_problem(r, 400, "NOT_SUPPORTED_BY_PLATFORM")  # a 4xx: not retried
        assert body["detail"] == item["reason"] and "Spoki" in body["detail"]
        assert body["operation"] == operation_id
        assert sim.state() == before  # refused up front: the platform was not called


# -- contact fields and contacts ---------------------------------------------------------------------------

def test_contact_fields_are_standard_plus_custom_fields(call, sim):
    by_name = {f["name"]: f for f in ok(call("GET", "/contact-fields"))["value"]}
    assert set(by_name) == {"phone", "first_name", "last_name", "email", "language"} | {
        f["code"] for f in sim.custom_fields.values()}
    assert by_name["phone"]["type"] == "mobNr" and by_name["email"]["type"] == "email"
    assert by_name["BIRTHDAY"]["type"] == "date" and by_name["APPOINTMENT_AT"]["type"] == "dateTime"
    assert by_name["ORDER_ID"]["type"] == "string" and by_name["CITY"]["displayName"] == "City"


def test_get_contact_by_email_id_and_phone(call, sim):
    by_email = ok(call("GET", "/contacts", **MARIO))
    by_id = ok(call("GET", "/contacts", externalId=str(demo.CONTACT_MARIO_ID)))
    by_phone = ok(call("GET", "/contacts", externalId="+39 333 123 4567"))
    assert by_email == by_id == by_phone
    assert by_id["externalId"] == str(demo.CONTACT_MARIO_ID)
    assert by_id["fields"]["phone"] == demo.CONTACT_MARIO_PHONE
    assert {k: by_id["fields"][k] for k in custom(sim, demo.CONTACT_MARIO_ID)} == custom(sim, demo.CONTACT_MARIO_ID)


def test_unknown_contact_is_404(call, sim):
    assert_problem(call("GET", "/contacts", email="nessuno@example.it"), 404, "CONTACT_NOT_FOUND")
    assert_problem(call("GET", "/contacts", externalId="999999"), 404, "CONTACT_NOT_FOUND")
    assert_problem(call("GET", "/contacts", externalId="+390000000000"), 404, "CONTACT_NOT_FOUND")


def test_shared_email_is_ambiguous_and_names_the_candidates(call, sim):
    body = assert_problem(call("GET", "/contacts", email=demo.SHARED_EMAIL), 400, "AMBIGUOUS_CONTACT")
    assert [c["externalId"] for c in body["candidates"]] == [str(demo.CONTACT_VERDI_A_ID), str(demo.CONTACT_VERDI_B_ID)]
    assert {c["email"] for c in body["candidates"]} == {privacy.mask_email(demo.SHARED_EMAIL)}
    assert demo.SHARED_EMAIL not in json.dumps(body)


def test_creating_a_contact_needs_a_phone(call, sim):
    before = sim.state()["contacts"]
    body = assert_problem(call("PUT", "/contacts", {"contact": {"email": "nuovo@example.it"},
                                                    "fields": {"first_name": "Nuovo"}}), 400, "PHONE_REQUIRED")
    assert body["field"] == "phone"
    assert sim.state()["contacts"] == before and counters(sim).get("contacts_created", 0) == 0


def test_upsert_creates_with_phone_and_converted_custom_fields(call, sim):
    r = ok(call("PUT", "/contacts", {"contact": {"email": "nuovo@example.it"},
                                     "fields": {"phone": "+39 333 555 1212", "First name": "Nuovo",
                                                "BIRTHDAY": "17/05/1990", "City": "Torino"}}))
    assert r["contact"]["created"] is True
    cid = int(r["contact"]["externalId"])
    stored = sim.contact(cid)
    assert stored["phone"] == "+393335551212" and stored["email"] == "nuovo@example.it"
    assert stored["first_name"] == "Nuovo"
    assert custom(sim, cid) == {"BIRTHDAY": "1990-05-17", "CITY": "Torino"}
    # "already exists" is success: the same contact is updated, not duplicated
    again = ok(call("PUT", "/contacts", {"contact": {"email": "nuovo@example.it"}, "fields": {"City": "Roma"}}))
    assert again["contact"] == {"externalId": str(cid), "created": False}
    assert custom(sim, cid)["CITY"] == "Roma" and counters(sim)["contacts_created"] == 1


@pytest.mark.parametrize("fields, code", [({"nope": "x"}, "UNKNOWN_FIELD"), ({"BIRTHDAY": "31-02-2024"}, None)])
def test_upsert_refuses_bad_fields_before_calling_spoki(call, sim, fields, code):
    before = sim.contact(demo.CONTACT_MARIO_ID)
    r = call("PUT", "/contacts", {"contact": MARIO, "fields": fields})
    assert r.status_code == 400, r.text
    if code:
        assert r.json()["code"] == code
    assert r.json()["field"] == next(iter(fields))
    assert sim.contact(demo.CONTACT_MARIO_ID) == before and counters(sim).get("contacts_updated", 0) == 0


def test_set_and_clear_a_custom_field(call, sim):
    r = ok(call("POST", "/contacts/fields", {"contact": MARIO, "field": "City", "value": "Roma"}))
    assert r["field"] == "CITY" and custom(sim, demo.CONTACT_MARIO_ID)["CITY"] == "Roma"
    ok(call("POST", "/contacts/fields/clear", {"contact": MARIO, "field": "CITY"}))
    assert custom(sim, demo.CONTACT_MARIO_ID) == {"ORDER_ID": "42"}
    assert_problem(call("POST", "/contacts/fields", {"contact": MARIO, "field": "nope", "value": "x"}),
                   400, "UNKNOWN_FIELD")
    assert_problem(call("POST", "/contacts/fields", {"contact": {"email": "nessuno@example.it"}, "field": "CITY",
                                                     "value": "x"}), 404, "CONTACT_NOT_FOUND")


def test_anonymize_deletes_the_contact_in_spoki(call, sim):
    ok(call("POST", "/contacts/anonymize", {"contact": GIULIA}))
    assert sim.contact(demo.CONTACT_GIULIA_ID) is None and counters(sim)["contacts_deleted"] == 1
    assert_problem(call("GET", "/contacts", **GIULIA), 404, "CONTACT_NOT_FOUND")


# -- permissions (marketing consent) ------------------------------------------------------------------------

def test_marketing_consent_is_the_one_permission(call, sim):
    assert [p["value"] for p in ok(call("GET", "/permissions"))["value"]] == ["marketing"]
    r = ok(call("POST", "/contacts/permissions", {"contact": GIULIA, "permissions": "marketing"}))
    assert r["permissions"] == [{**r["permissions"][0], "value": "marketing", "enabled": True}]
    assert sim.contact(demo.CONTACT_GIULIA_ID)["status"] == "Subscribed"
    ok(call("POST", "/contacts/permissions", {"contact": GIULIA, "permissions": ["marketing"], "enabled": False}))
    assert sim.contact(demo.CONTACT_GIULIA_ID)["status"] == "Unsubscribed"


def test_unknown_permission_is_400(call, sim):
    r = call("POST", "/contacts/permissions", {"contact": GIULIA, "permissions": "sms"})
    assert r.status_code == 400, r.text
    assert "sms" in r.json()["detail"]
    assert sim.contact(demo.CONTACT_GIULIA_ID)["status"] == "Not Declared"


# -- automations -----------------------------------------------------------------------------------------

def test_list_automations_has_those_with_an_api_start_step(call, sim):
    value = {a["id"]: a for a in ok(call("GET", "/automations"))["value"]}
    assert set(value) == {str(a["id"]) for a in sim.automations.values() if a["webhook_set"]}
    assert value[ORDER]["status"] == "ACTIVE" and value[str(demo.AUTOMATION_SUMMER_ID)]["status"] == "INACTIVE"
    assert [f["name"] for f in value[ORDER]["fields"]] == ["ORDER_ID"]
    assert demo.AUTOMATION_ORDER_SECRET not in str(value)


def test_fields_schema_lists_the_custom_fields_used(call):
    props = ok(call("GET", f"/automations/{ORDER}/schema"))["schema"]["properties"]
    assert set(props) == {"ORDER_ID"} and props["ORDER_ID"]["type"] == "string"


def test_start_sends_phone_and_custom_fields_through_the_start_step(call, sim):
    body = ok(start(call, fields={"ORDER_ID": "A-77"}))
    assert body["resultCode"] == "OK" and body["contact"]["externalId"] == str(demo.CONTACT_MARIO_ID)
    [run] = sim.state()["runs"]
    assert run["automation_id"] == demo.AUTOMATION_ORDER_ID and run["phone"] == demo.CONTACT_MARIO_PHONE
    assert run["custom_fields"] == {"ORDER_ID": "A-77"}
    assert run["api_key_sent"] is False  # the webhook takes the start step's secret, not the API key
    job = call("GET", f"/jobs/{body['jobId']}")
    assert job.status_code == 200 and demo.AUTOMATION_ORDER_SECRET not in job.text
    assert demo.AUTOMATION_ORDER_SECRET not in str(body)


def test_start_applies_the_automations_steps(call, sim):
    ok(start(call, automation=str(demo.AUTOMATION_TAG_VIP_ID), contact=GIULIA))
    assert demo.TAG_VIP_ID in sim.contact(demo.CONTACT_GIULIA_ID)["tags"]


def test_start_replay_runs_once(call, sim):
    first = start(call, key="spoki-start-1", fields={"ORDER_ID": "1"})
    second = start(call, key="spoki-start-1", fields={"ORDER_ID": "1"})
    assert first.status_code == second.status_code == 200, second.text
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json() == second.json()
    assert counters(sim)["automation_runs"] == 1
    assert start(call, key="spoki-start-2", fields={"ORDER_ID": "1"}).status_code == 200
    assert counters(sim)["automation_runs"] == 2


def test_inactive_automation_is_409(call, sim):
    body = assert_problem(start(call, automation=str(demo.AUTOMATION_SUMMER_ID)), 409, "AUTOMATION_INACTIVE")
    assert demo.AUTOMATION_SUMMER_NAME in body["detail"]
    assert counters(sim).get("automation_runs", 0) == 0


@pytest.mark.parametrize("automation", [str(demo.AUTOMATION_WELCOME_ID), "999999"])
def test_automation_without_api_start_step_or_unknown_is_404(call, sim, automation):
    assert_problem(start(call, automation=automation), 404, "AUTOMATION_NOT_FOUND")
    assert counters(sim).get("automation_runs", 0) == 0


def test_unknown_field_and_unknown_contact(call, sim):
    assert_problem(start(call, fields={"nope": "x"}), 400, "UNKNOWN_AUTOMATION_FIELD")
    assert_problem(start(call, contact={"email": "nessuno@example.it"}), 404, "CONTACT_NOT_FOUND")
    assert counters(sim).get("automation_runs", 0) == 0


def test_creating_the_contact_on_start_needs_its_phone(call, sim):
    assert_problem(start(call, contact={"email": "nuovo@example.it"}, createContactIfMissing=True),
                   400, "PHONE_REQUIRED")
    body = ok(start(call, contact={"email": "nuovo@example.it", "externalId": "+393335551212"},
                    createContactIfMissing=True, fields={"ORDER_ID": "9"}))
    assert body["contact"]["created"] is True
    created = sim.contact(int(body["contact"]["externalId"]))
    assert created["phone"] == "+393335551212" and created["email"] == "nuovo@example.it"
    assert sim.state()["runs"][0]["contact_id"] == created["id"]


# -- tags and audiences (lists) -----------------------------------------------------------------------------

def test_list_tags(call, sim):
    assert [t["name"] for t in ok(call("GET", "/tags"))["value"]] == [
        t["name"] for t in sorted(sim.tags.values(), key=lambda t: t["order"])]


def test_list_and_create_audiences(call, sim):
    assert {(a["id"], a["name"]) for a in ok(call("GET", "/audiences"))["value"]} == {
        (str(x["id"]), x["name"]) for x in sim.lists.values()}
    created = ok(call("POST", "/audiences", {"name": "Newsletter estate"}))["audience"]
    assert sim.lists[int(created["id"])]["name"] == "Newsletter estate"
    again = ok(call("POST", "/audiences", {"name": "Newsletter estate"}))["audience"]
    assert again["id"] == created["id"] and counters(sim)["lists_created"] == 1  # no duplicate list
    assert created["id"] in [a["id"] for a in ok(call("GET", "/audiences"))["value"]]


def test_add_to_audience_reports_per_contact(call, sim):
    r = ok(call("POST", f"/audiences/{CUSTOMERS}/members", {"contacts": [
        MARIO, GIULIA, {"email": "nessuno@example.it"}]}))
    assert [x["result"] for x in r["results"]] == ["already_member", "added", "not_found"]
    assert demo.LIST_CUSTOMERS_ID in sim.contact(demo.CONTACT_GIULIA_ID)["lists"]


def test_remove_from_audience_reports_per_contact(call, sim):
    r = ok(call("POST", f"/audiences/{CUSTOMERS}/members/remove", {"contacts": [
        MARIO, {"externalId": str(demo.CONTACT_GIULIA_ID)}]}))
    assert [x["result"] for x in r["results"]] == ["removed", "not_member"]
    assert demo.LIST_CUSTOMERS_ID not in sim.contact(demo.CONTACT_MARIO_ID)["lists"]


def test_unknown_audience_is_404(call, sim):
    assert_problem(call("POST", "/audiences/999999/members", {"contacts": [MARIO]}), 404, "AUDIENCE_NOT_FOUND")
    assert_problem(call("POST", "/audiences/999999/members/remove", {"contacts": [MARIO]}), 404,
                   "AUDIENCE_NOT_FOUND")


def test_audience_replay_adds_once(call, sim):
    body = {"contacts": [GIULIA]}
    first = call("POST", f"/audiences/{PROSPECTS}/members", body, key="spoki-aud-1")
    second = call("POST", f"/audiences/{PROSPECTS}/members", body, key="spoki-aud-1")
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    assert counters(sim)["list_members_added"] == 1


# -- transport ---------------------------------------------------------------------------------------------

def test_throttling_is_503_with_retry_after(call, sim):
    sim.throttle(count=10, retry_after=30)  # longer than the service waits: handed to the caller
    r = call("GET", "/tags")
    assert_problem(r, 503, "UPSTREAM_RATE_LIMITED")
    assert r.headers["Retry-After"] == "30"  # Spoki's own wait, passed on
