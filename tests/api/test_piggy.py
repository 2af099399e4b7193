"""Every action through the API with PROVIDER=piggy, against the Piggy (Leat) simulator over a real socket.

One simulator per module on a loopback port (the sandbox account's token), reset before each test; each test
gets its own app (real factory, sandbox mode) pointed at it with ``sandbox_upstream_url``.
"""

from __future__ import annotations

import uuid

import pytest
import yaml

from service.actions.catalog import OPERATIONS
from service.capabilities_table import ROOT
from service.sandbox.piggy import demo
from tests.api.test_foundation import assert_problem

SPONGEBOB = {"email": demo.DEMO_CONTACT_EMAIL}
BIRTHDAY = demo.AUTOMATION_BIRTHDAY_UUID
NEWSLETTER = demo.SUBSCRIPTION_NEWSLETTER_UUID


@pytest.fixture(scope="module")
def piggy(piggy_sim):
    return piggy_sim


@pytest.fixture
def sim(piggy):
    simulator = piggy.simulator
    simulator.reset()
    return simulator


@pytest.fixture
def piggy_settings(settings, piggy):
    return settings.with_(provider="piggy", sandbox_upstream_url=piggy.url)


@pytest.fixture
def call(make_call, piggy_settings, sim):
    return make_call(piggy_settings)


def ok(resp) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def counters(sim) -> dict:
    return sim.state()["counters"]


def start(call, automation=BIRTHDAY, key=None, **body):
    body.setdefault("contact", SPONGEBOB)
    return call("POST", f"/automations/{automation}/start", body, key=key)


# -- system: health, connection, capabilities ------------------------------------------------------------

def test_health_and_capabilities_agree_on_the_platform(call):
    health = ok(call.client.get("/health"))
    caps = ok(call("GET", "/capabilities"))
    assert health["provider"] == caps["provider"] == "piggy"
    assert health["mode"] == caps["mode"] == "sandbox"
    by_op = {o["operationId"]: o for o in caps["operations"]}
    assert list(by_op) == [o.operation_id for o in OPERATIONS]
    assert not by_op["AddTag"]["supported"] and "tags" in by_op["AddTag"]["reason"]
    assert not by_op["StopAutomation"]["supported"] and "stop" in by_op["StopAutomation"]["reason"]
    assert by_op["StartAutomation"]["supported"] and "reason" not in by_op["StartAutomation"]


def test_test_connection_reaches_the_simulator(call, sim):
    body = ok(call("GET", "/connection"))
    assert body["status"] == "ok" and body["provider"] == "piggy" and body["mode"] == "sandbox"


def _requests() -> dict[str, tuple[str, str]]:
    """operationId -> (method, path with placeholders filled) from openapi.yaml."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    out = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId"):
                filled = path
                for name in ("automationId", "triggerId", "campaignId", "audienceId"):
                    filled = filled.replace("{" + name + "}", BIRTHDAY if name == "automationId" else "x1")
                out[op["operationId"]] = (method.upper(), filled)
    return out


ANY_BODY = {"contact": SPONGEBOB, "contacts": [SPONGEBOB], "tags": "vip", "tag": "vip", "score": 1, "name": "VIP",
            "automationContactIds": "run-1", "field": "firstname", "value": "Sandy", "permissions": "Newsletter"}


@pytest.mark.parametrize("operation_id", [o.operation_id for o in OPERATIONS])
def test_each_action_answers_not_supported_exactly_when_capabilities_say_so(call, sim, operation_id):
    item = next(o for o in ok(call("GET", "/capabilities"))["operations"] if o["operationId"] == operation_id)
    method, path = _requests()[operation_id]
    before = counters(sim)
    r = call(method, path, ANY_BODY if method != "GET" else None)
    if item["supported"]:
        assert "NOT_SUPPORTED_BY_PLATFORM" not in r.text, r.text
    else:
        body = assert_problem(r, 400, "NOT_SUPPORTED_BY_PLATFORM")  # a 4xx: not retried
        assert body["detail"] == item["reason"] and "Piggy" in body["detail"]
        assert body["operation"] == operation_id
        assert counters(sim) == before  # refused up front: the platform was not called


# -- contact fields and contacts ---------------------------------------------------------------------------

def test_contact_fields_map_piggy_attribute_types(call, sim):
    by_name = {f["name"]: f for f in ok(call("GET", "/contact-fields"))["value"]}
    assert set(by_name) == {a["name"] for a in sim.attributes}
    assert {n: by_name[n]["type"] for n in ("housenumber", "average_spend", "vip", "member_since", "last_visit_at",
                                            "birthdate", "interests", "phone", "email")} == {
        "housenumber": "int", "average_spend": "money", "vip": "boolean", "member_since": "date",
        "last_visit_at": "dateTime", "birthdate": "birthdate", "interests": "set", "phone": "mobNr",
        "email": "email"}
    assert by_name["interests"]["options"] == [{"name": "Coffee", "value": "coffee"}, {"name": "Cake", "value": "cake"},
                                               {"name": "Tea", "value": "tea"}]
    assert by_name["firstname"]["displayName"] == "First name"


def test_get_contact_by_email_any_case_and_by_uuid(call, sim):
    by_email = ok(call("GET", "/contacts", email=demo.DEMO_CONTACT_EMAIL.upper()))
    by_uuid = ok(call("GET", "/contacts", externalId=demo.DEMO_CONTACT_UUID))
    assert by_email == by_uuid
    stored = sim.get_contact(demo.DEMO_CONTACT_UUID)["current_values"]
    assert by_uuid["externalId"] == demo.DEMO_CONTACT_UUID and by_uuid["email"] == demo.DEMO_CONTACT_EMAIL
    assert by_uuid["fields"]["firstname"] == stored["firstname"]
    assert by_uuid["fields"]["housenumber"] == stored["housenumber"]


def test_unknown_contact_is_404(call, sim):
    assert_problem(call("GET", "/contacts", email="nobody@bikinibottom.sea"), 404, "CONTACT_NOT_FOUND")
    assert_problem(call("GET", "/contacts", externalId=str(uuid.uuid4())), 404, "CONTACT_NOT_FOUND")
    assert counters(sim).get("contacts_created", 0) == 0  # a lookup never creates


def test_upsert_creates_with_converted_values(call, sim):
    r = ok(call("PUT", "/contacts", {
        "contact": {"email": "Sandy.Cheeks@Treedome.SEA"},
        "fields": {"First name": "Sandy", "housenumber": "12", "vip": "ja", "interests": "Coffee;tea",
                   "member_since": "29-02-2024", "average_spend": "12,50", "favourite_shop": "Utrecht"}}))
    assert r["contact"]["created"] is True
    stored = sim.get_contact(r["contact"]["externalId"])
    assert stored["email"] == "sandy.cheeks@treedome.sea"  # Piggy keys contacts by lowercased email
    assert stored["current_values"] == {
        "email": "sandy.cheeks@treedome.sea", "firstname": "Sandy", "housenumber": 12, "vip": True,
        "interests": ["coffee", "tea"], "member_since": "2024-02-29", "average_spend": 12.5,
        "favourite_shop": "utr"}
    assert counters(sim)["contacts_created"] == 1


def test_upsert_updates_an_existing_contact_and_keeps_other_fields(call, sim):
    before = sim.get_contact(demo.DEMO_CONTACT_UUID)["current_values"]
    r = ok(call("PUT", "/contacts", {"contact": SPONGEBOB, "fields": {"lastname": "SquarePants II"}}))
    assert r["contact"] == {"externalId": demo.DEMO_CONTACT_UUID, "created": False}
    after = sim.get_contact(demo.DEMO_CONTACT_UUID)["current_values"]
    assert after == {**before, "lastname": "SquarePants II"}
    assert counters(sim).get("contacts_created", 0) == 0


@pytest.mark.parametrize("fields, code", [
    ({"nope": "x"}, "UNKNOWN_FIELD"),
    ({"housenumber": "1.5"}, None),
    ({"vip": "maybe"}, None),
    ({"interests": "Coffee;Beer"}, None),
])
def test_upsert_refuses_bad_fields_before_calling_piggy(call, sim, fields, code):
    r = call("PUT", "/contacts", {"contact": {"email": "new@bikinibottom.sea"}, "fields": fields})
    assert r.status_code == 400, r.text
    body = r.json()
    if code:
        assert body["code"] == code
    assert body["field"] == next(iter(fields))
    assert counters(sim).get("contact_updates", 0) == 0


def test_upsert_replay_creates_once(call, sim):
    body = {"contact": {"email": "once@bikinibottom.sea"}, "fields": {"firstname": "Once"}}
    first = call("PUT", "/contacts", body, key="piggy-upsert-1")
    second = call("PUT", "/contacts", body, key="piggy-upsert-1")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert counters(sim)["contacts_created"] == 1 and counters(sim)["contact_updates"] == 1


def test_set_and_clear_a_field(call, sim):
    r = ok(call("POST", "/contacts/fields", {"contact": SPONGEBOB, "field": "Last visit",
                                             "value": "2024-03-01T13:45:00+01:00"}))
    assert r["field"] == "last_visit_at"
    assert sim.get_contact(demo.DEMO_CONTACT_UUID)["current_values"]["last_visit_at"] == "2024-03-01T13:45:00+01:00"
    ok(call("POST", "/contacts/fields/clear", {"contact": SPONGEBOB, "field": "lastname"}))
    values = sim.get_contact(demo.DEMO_CONTACT_UUID)["current_values"]
    assert "lastname" not in values and values["firstname"] == "Spongebob"


def test_set_field_errors(call, sim):
    assert_problem(call("POST", "/contacts/fields", {"contact": SPONGEBOB, "field": "nope", "value": "x"}),
                   400, "UNKNOWN_FIELD")
    body = call("POST", "/contacts/fields", {"contact": SPONGEBOB, "field": "loyalty_card", "value": "X"}).json()
    assert body["status"] == 400 and body["field"] == "loyalty_card" and "read-only" in body["detail"]
    assert_problem(call("POST", "/contacts/fields", {"contact": {"email": "ghost@bikinibottom.sea"},
                                                     "field": "firstname", "value": "x"}), 404, "CONTACT_NOT_FOUND")
    assert counters(sim).get("contact_updates", 0) == 0


def test_anonymize_deletes_the_contact_in_piggy(call, sim):
    ok(call("POST", "/contacts/anonymize", {"contact": SPONGEBOB}))
    assert sim.get_contact(demo.DEMO_CONTACT_UUID) is None and counters(sim)["contacts_deleted"] == 1
    assert_problem(call("GET", "/contacts", **SPONGEBOB), 404, "CONTACT_NOT_FOUND")
    assert_problem(call("POST", "/contacts/anonymize", {"contact": SPONGEBOB}), 404, "CONTACT_NOT_FOUND")


# -- permissions (subscription types) ----------------------------------------------------------------------

def test_permissions_are_subscription_types(call, sim):
    value = ok(call("GET", "/permissions"))["value"]
    assert [(p["name"], p["value"]) for p in value] == [(s["name"], s["uuid"]) for s in sim.subscription_types]


def test_set_permissions_subscribes_and_unsubscribes(call, sim):
    r = ok(call("POST", "/contacts/permissions", {"contact": SPONGEBOB, "permissions": "Newsletter;Promotions"}))
    state = {p["value"]: p["enabled"] for p in r["permissions"]}
    assert sim.get_contact(demo.DEMO_CONTACT_UUID)["subscriptions"] == state
    assert state[NEWSLETTER] and state[demo.SUBSCRIPTION_PROMOTIONS_UUID]
    ok(call("POST", "/contacts/permissions", {"contact": SPONGEBOB, "permissions": [NEWSLETTER], "enabled": False}))
    subs = sim.get_contact(demo.DEMO_CONTACT_UUID)["subscriptions"]
    assert subs[NEWSLETTER] is False and subs[demo.SUBSCRIPTION_PROMOTIONS_UUID] is True


def test_unknown_permission_is_400(call, sim):
    r = call("POST", "/contacts/permissions", {"contact": SPONGEBOB, "permissions": "Sms"})
    assert r.status_code == 400, r.text
    assert "Sms" in r.json()["detail"]
    assert counters(sim).get("subscription_changes", 0) == 0


# -- automations -----------------------------------------------------------------------------------------

def test_list_automations_has_only_runnable_kinds(call, sim):
    value = ok(call("GET", "/automations"))["value"]
    listed = {a["id"]: a["status"] for a in value}
    expected = {a["uuid"]: a["status"].upper() for a in sim.automations if a["event"] == "contact_updated"}
    assert listed == expected


def test_start_automation_records_a_run(call, sim):
    body = ok(start(call))
    assert body["resultCode"] == "OK" and body["jobId"]
    assert body["contact"] == {"externalId": demo.DEMO_CONTACT_UUID, "created": False}
    assert sim.state()["runs"] == [{"automation_uuid": BIRTHDAY, "contact_uuid": demo.DEMO_CONTACT_UUID,
                                    "data": None}]
    job = ok(call("GET", f"/jobs/{body['jobId']}"))
    assert job["operation"] == "StartAutomation" and job["provider"] == "piggy"


def test_start_replay_runs_once(call, sim):
    first = start(call, key="piggy-start-1")
    second = start(call, key="piggy-start-1")
    assert first.status_code == second.status_code == 200, second.text
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json() == second.json()
    assert counters(sim)["automation_runs"] == 1
    assert start(call, key="piggy-start-2").status_code == 200  # a new logical call runs again
    assert counters(sim)["automation_runs"] == 2


def test_inactive_automation_is_409(call, sim):
    body = assert_problem(start(call, automation=demo.AUTOMATION_WINBACK_UUID), 409, "AUTOMATION_NOT_RUNNABLE")
    assert "active" in body["detail"]
    assert counters(sim).get("automation_runs", 0) == 0


def test_automation_that_is_not_contact_updated_cannot_be_started(call, sim):
    assert_problem(start(call, automation=demo.AUTOMATION_CREDIT_UUID), 404, "AUTOMATION_NOT_FOUND")
    assert counters(sim).get("automation_runs", 0) == 0


def test_listing_every_automation_lets_piggy_refuse_the_other_kinds(make_call, piggy_settings, sim):
    call = make_call(piggy_settings.with_(platform_env={"PIGGY_LIST_ALL_AUTOMATIONS": "true"}))
    assert {a["id"] for a in ok(call("GET", "/automations"))["value"]} == {a["uuid"] for a in sim.automations}
    body = assert_problem(start(call, automation=demo.AUTOMATION_CREDIT_UUID), 409, "AUTOMATION_NOT_RUNNABLE")
    assert "contact_updated" in body["detail"]
    assert counters(sim).get("automation_runs", 0) == 0


def test_unknown_automation_and_unknown_contact_are_404(call, sim):
    assert_problem(start(call, automation=str(uuid.uuid4())), 404, "AUTOMATION_NOT_FOUND")
    assert_problem(start(call, contact={"email": "ghost@bikinibottom.sea"}), 404, "CONTACT_NOT_FOUND")
    assert counters(sim).get("automation_runs", 0) == 0


def test_start_can_create_the_contact(call, sim):
    body = ok(start(call, contact={"email": "Patrick@BikiniBottom.sea"}, createContactIfMissing=True))
    assert body["contact"]["created"] is True
    created = sim.contact_by_email("patrick@bikinibottom.sea")
    assert created is not None and created["uuid"] == body["contact"]["externalId"]
    assert sim.state()["runs"][0]["contact_uuid"] == created["uuid"]


def test_configured_data_keys_give_a_schema_and_are_sent_as_data(make_call, piggy_settings, sim):
    call = make_call(piggy_settings.with_(platform_env={"PIGGY_AUTOMATION_FIELDS": f"{BIRTHDAY}=gift_code,message"}))
    caps = {o["operationId"]: o["supported"] for o in ok(call("GET", "/capabilities"))["operations"]}
    assert caps["GetAutomationFieldsSchema"] is True
    props = ok(call("GET", f"/automations/{BIRTHDAY}/schema"))["schema"]["properties"]
    assert set(props) == {"gift_code", "message"}
    ok(start(call, fields={"gift_code": "CAKE-10"}, fieldsText="message=Happy birthday!"))
    assert sim.state()["runs"][0]["data"] == {"gift_code": "CAKE-10", "message": "Happy birthday!"}
    assert_problem(start(call, fields={"other": "x"}), 400, "UNKNOWN_AUTOMATION_FIELD")


def test_schema_without_configured_keys_is_not_supported(call, sim):
    body = assert_problem(call("GET", f"/automations/{BIRTHDAY}/schema"), 400, "NOT_SUPPORTED_BY_PLATFORM")
    assert "PIGGY_AUTOMATION_FIELDS" in body["detail"]


def test_free_fields_are_sent_as_data_when_piggy_cannot_tell_the_keys(call, sim):
    ok(start(call, fieldsText="gift_code=CAKE-10;tags={a,b}"))
    assert sim.state()["runs"][0]["data"] == {"gift_code": "CAKE-10", "tags": ["a", "b"]}


# -- transport ---------------------------------------------------------------------------------------------

def test_maintenance_mode_is_503_with_retry_after(call, sim):
    sim.maintenance = True
    r = call("GET", "/contacts", **SPONGEBOB)
    body = assert_problem(r, 503, "UPSTREAM_UNAVAILABLE")
    assert "maintenance" in body["detail"]
    assert int(r.headers["Retry-After"]) >= 1


def test_oauth_client_credentials_renew_an_expired_token(make_call, settings, piggy, sim):
    live = settings.with_(provider="piggy", ledger_hash_key="k" * 40, platform_env={
        "PIGGY_CLIENT_ID": demo.DEMO_CLIENT_ID, "PIGGY_CLIENT_SECRET": demo.DEMO_CLIENT_SECRET,
        "PIGGY_BASE_URL": piggy.url})
    call = make_call(live)
    assert ok(call.client.get("/health"))["mode"] == "live"
    ok(call("GET", "/contacts", **SPONGEBOB))
    sim.expire_tokens()
    ok(call("GET", "/contacts", **SPONGEBOB))
    assert counters(sim)["tokens_issued"] == 2
