"""Automation and campaign actions through the API, against the Spotler simulator over a real socket."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from service.sandbox.spotler import DEMO
from tests.api.test_foundation import assert_problem

WELCOME = DEMO.automations["welcome"]
JAN = {"email": DEMO.emails["jan"]}


@pytest.fixture
def spotler(spotler_sim, sim):
    """The module's Spotler simulator, reset to the demo account (conftest's ``sim``)."""
    return spotler_sim


@pytest.fixture
def api(make_client, settings, spotler, auth):
    client = make_client(settings.with_(sandbox_upstream_url=spotler.url))

    def call(method, path, json=None, key=None, headers=None, **kw):
        h = {**auth, **(headers or {})}
        h["Idempotency-Key"] = key or uuid.uuid4().hex  # every logical call its own key unless a test says
        return client.request(method, path, json=json, headers=h, **kw)

    call.client = client
    return call


def start(api, automation=WELCOME, **body):
    body.setdefault("contact", JAN)
    return api("POST", f"/automations/{automation}/start", body)


# -- dropdowns ---------------------------------------------------------------------------------------------

def test_list_automations_gives_ids_names_status_and_typed_fields(api):
    r = api("GET", "/automations")
    assert r.status_code == 200, r.text
    by_id = {a["id"]: a for a in r.json()["value"]}
    welcome = by_id[WELCOME]
    assert {f["name"]: f["type"] for f in welcome["fields"]} == dict(DEMO.automation_fields["welcome"])
    assert by_id[DEMO.automations["birthday"]]["status"] != welcome["status"]  # the inactive one says so


def test_fields_schema_types_each_field(api):
    r = api("GET", f"/automations/{WELCOME}/schema")
    assert r.status_code == 200, r.text
    props = r.json()["schema"]["properties"]
    assert props["voucherCode"]["type"] == "string" and "format" not in props["voucherCode"]
    assert props["landingUrl"] == {**props["landingUrl"], "type": "string", "format": "uri"}
    assert props["recommended"]["type"] == "array" and props["recommended"]["items"]["type"] == "string"
    assert all("x-ms-summary" in p for p in props.values())


def test_fields_schema_of_unknown_automation_is_404(api):
    assert_problem(api("GET", f"/automations/{uuid.uuid4()}/schema"), 404, "AUTOMATION_NOT_FOUND")


# -- start ---------------------------------------------------------------------------------------------------

def test_start_with_typed_fields_returns_run_id(api, sim):
    r = start(api, fields={"voucherCode": "WELCOME10", "landingUrl": "https://shop.example/welcome",
                           "recommended": ["P-100", "P-200"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["resultCode"] == "OK" and body["jobId"]
    run_id = body["automationContactId"]
    assert body["automationContactIds"] == [run_id]
    run = sim.run(run_id)
    assert run is not None and run["externalContactId"] == DEMO.contacts["jan"]
    sent = {f["name"]: f.get("values") or f.get("value") for f in run["fields"]}
    assert sent == {"voucherCode": "WELCOME10", "landingUrl": "https://shop.example/welcome",
                    "recommended": ["P-100", "P-200"]}


def test_start_with_fields_text_as_migrated_from_spotler_jobs(api, sim):
    text = "voucherCode=SPRING;landingUrl=\nrecommended={P-100,P-300}"
    r = start(api, fieldsText=text)
    assert r.status_code == 200, r.text
    run = sim.run(r.json()["automationContactId"])
    sent = {f["name"]: f.get("values") or f.get("value") for f in run["fields"]}
    assert sent == {"voucherCode": "SPRING", "recommended": ["P-100", "P-300"]}  # blank landingUrl skipped


def test_typed_fields_win_over_text(api, sim):
    r = start(api, fields={"voucherCode": "TYPED"}, fieldsText="voucherCode=TEXT;recommended={P-200}")
    assert r.status_code == 200, r.text
    sent = {f["name"]: f.get("values") or f.get("value") for f in sim.run(r.json()["automationContactId"])["fields"]}
    assert sent == {"voucherCode": "TYPED", "recommended": ["P-200"]}


@pytest.mark.parametrize("body, field", [
    ({"fields": {"nope": "x"}}, "nope"),
    ({"fieldsText": "nope=x"}, "nope"),
    ({"fields": {"landingUrl": "not a url"}}, "landingUrl"),
    ({"fieldsText": "recommended={P-100,P-200"}, "recommended"),
    ({"fieldsText": "voucherCode=<STRING>"}, "voucherCode"),
])
def test_bad_fields_are_400_naming_the_field(api, sim, body, field):
    before = sim.stats()["automation_trigger_calls"]
    problem = assert_problem(start(api, **body), 400, problem_code(start(api, **body)))
    assert problem["field"] == field
    assert sim.stats()["automation_trigger_calls"] == before  # nothing was sent


def problem_code(resp):
    return resp.json()["code"]


def test_type_hint_message_is_pointed(api):
    body = start(api, fieldsText="voucherCode=<STRING>").json()
    assert "<STRING>" in body["detail"] and "voucherCode" in body["detail"]


def test_unknown_contact_is_404_and_create_option_creates_it(api, sim):
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    assert_problem(start(api, contact={"email": email}), 404, "CONTACT_NOT_FOUND")
    r = start(api, contact={"email": email}, createContactIfMissing=True)
    assert r.status_code == 200, r.text
    assert r.json()["contact"]["created"] is True
    assert sim.contact(r.json()["contact"]["externalId"])["properties"]["email"] == email


def test_contact_by_external_id(api, sim):
    r = start(api, contact={"externalId": DEMO.contacts["piet"]})
    assert r.status_code == 200, r.text
    assert sim.run(r.json()["automationContactId"])["externalContactId"] == DEMO.contacts["piet"]


@pytest.mark.parametrize("contact", [{}, {"email": "not-an-email"}, {"email": ""}])
def test_invalid_contact_is_400(api, contact):
    r = start(api, contact=contact)
    assert r.status_code == 400, r.text
    assert r.json()["field"].startswith("contact")


def test_missing_contact_is_400_naming_contact_or_regarding(api):
    """contact is optional in the schema since a Dataverse record (regarding) can supply it; neither is a 400."""
    r = api("POST", f"/automations/{WELCOME}/start", {"fields": {}})
    body = assert_problem(r, 400, "CONTACT_REQUIRED")
    assert body["field"] == "contact" and "regarding" in body["detail"]


def test_wrong_content_type_is_415(api):
    r = api("POST", f"/automations/{WELCOME}/start", content=b"contact=jan", headers={"content-type": "text/plain"})
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_unknown_automation_is_404(api):
    assert_problem(start(api, automation=str(uuid.uuid4())), 404, "AUTOMATION_NOT_FOUND")


def test_inactive_automation_is_409_with_reasons(api):
    body = assert_problem(start(api, automation=DEMO.automations["birthday"]), 409, "AUTOMATION_NOT_TRIGGERED")
    assert body["results"][0]["result"] == "AUTOMATION_INACTIVE"
    assert "active" in body["detail"]


def test_participation_limit_is_409_the_second_time(api):
    assert start(api, automation=DEMO.automations["one_time_offer"]).status_code == 200
    body = assert_problem(start(api, automation=DEMO.automations["one_time_offer"]), 409, "AUTOMATION_NOT_TRIGGERED")
    assert body["results"][0]["result"] == "PARTICIPATION_LIMIT_REACHED"


def test_trigger_with_one_inactive_automation_still_starts_the_other(api):
    r = start(api, automation=DEMO.automations["winback"])
    assert r.status_code == 200, r.text
    results = {x["result"] for x in r.json()["results"]}
    assert results == {"OK", "AUTOMATION_INACTIVE"}
    assert len(r.json()["automationContactIds"]) == 1


# -- stop ------------------------------------------------------------------------------------------------------

def test_stop_runs_by_id_reports_per_id(api, sim):
    a = start(api).json()["automationContactId"]
    b = start(api, contact={"email": DEMO.emails["anna"]}).json()["automationContactId"]
    unknown = str(uuid.uuid4())
    r = api("POST", "/automation-runs/stop", {"automationContactIds": f"{a}, {b},{unknown}"})
    assert r.status_code == 200, r.text
    results = {x["automationContactId"]: x["result"] for x in r.json()["results"]}
    assert results == {a: "STOPPED", b: "STOPPED", unknown: "NOT_FOUND"}
    assert r.json()["stopped"] == 2 and r.json()["resultCode"] == "PARTIAL"
    assert sim.run(a)["status"] != "ACTIVE"


def test_stop_runs_accepts_an_array(api):
    a = start(api).json()["automationContactId"]
    r = api("POST", "/automation-runs/stop", {"automationContactIds": [a]})
    assert r.status_code == 200 and r.json()["resultCode"] == "OK"
    again = api("POST", "/automation-runs/stop", {"automationContactIds": [a]})
    assert again.json()["results"][0]["result"] != "STOPPED"


@pytest.mark.parametrize("ids", ["", " , ", [], [{"id": 1}], True])
def test_stop_runs_rejects_empty_or_malformed_ids(api, ids):
    r = api("POST", "/automation-runs/stop", {"automationContactIds": ids})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "automationContactIds"


def test_stop_automation_stops_every_run_for_the_contact(api, sim):
    anna = {"email": DEMO.emails["anna"]}
    ids = {start(api, contact=anna).json()["automationContactId"] for _ in range(2)}
    other = start(api, contact={"email": DEMO.emails["piet"]}).json()["automationContactId"]
    r = api("POST", f"/automations/{WELCOME}/stop", {"contact": anna})
    assert r.status_code == 200, r.text
    assert {x["automationContactId"] for x in r.json()["results"] if x["result"] == "STOPPED"} == ids
    assert sim.run(other)["status"] == "ACTIVE"


# -- upstream failures -------------------------------------------------------------------------------------------

def test_upstream_outage_is_503_with_retry_after(api, sim):
    sim.faults.configure(fail_rate=1.0, fail_status=503, retry_after=1)  # GET retries honour it: keep it short
    r = start(api)
    assert_problem(r, 503, r.json()["code"])
    assert int(r.headers["retry-after"]) >= 1
    sim.faults.configure(fail_rate=0.0)


def test_upstream_hang_is_504(make_client, settings, spotler, auth):
    client = make_client(settings.with_(sandbox_upstream_url=spotler.url, upstream_read_timeout=0.5,
                                        upstream_max_retries=0))
    spotler.simulator.faults.configure(hang_rate=1.0, hang_seconds=3)
    try:
        r = client.get("/automations", headers=auth)
    finally:
        spotler.simulator.faults.configure(hang_rate=0.0)
    assert_problem(r, 504, "UPSTREAM_TIMEOUT")
    assert "retry-after" in r.headers


# -- exactly once ------------------------------------------------------------------------------------------------

def test_replay_with_same_key_returns_same_answer_without_second_start(api, sim):
    key = uuid.uuid4().hex
    first = api("POST", f"/automations/{WELCOME}/start", {"contact": JAN}, key=key)
    before = sim.stats()["automation_trigger_calls"]
    again = api("POST", f"/automations/{WELCOME}/start", {"contact": JAN}, key=key)
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert sim.stats()["automation_trigger_calls"] == before
    job = api("GET", f"/jobs/{first.json()['jobId']}").json()
    assert job["status"] == "Completed" and job["upstreamIds"]["automationContactIds"] == first.json()[
        "automationContactIds"]
    assert "jan@example.com" not in str(job)


# -- campaigns ---------------------------------------------------------------------------------------------------

def test_campaign_dropdown_lists_each_trigger(api):
    value = api("GET", "/campaigns").json()["value"]
    triggers = {v["triggerId"]: v for v in value}
    assert triggers[DEMO.campaign_triggers["signup"]]["campaignId"] == DEMO.campaigns["signup"]


def test_trigger_campaign_then_already_active_is_409_then_stop(api, sim):
    contact = {"email": DEMO.emails["piet"]}
    trigger = DEMO.campaign_triggers["signup"]
    r = api("POST", f"/campaigns/{trigger}/trigger", {"contact": contact, "fieldsText": "coupon=ABC"})
    assert r.status_code == 200, r.text
    again = api("POST", f"/campaigns/{trigger}/trigger", {"contact": contact})
    body = assert_problem(again, 409, again.json()["code"])
    assert "already" in body["detail"].lower()
    stop = api("POST", f"/campaigns/{DEMO.campaigns['signup']}/stop", {"contact": contact})
    assert stop.status_code == 200, stop.text


def test_inactive_campaign_and_contact_not_in_selection_are_409(api):
    r = api("POST", f"/campaigns/{DEMO.campaign_triggers['old_promo']}/trigger", {"contact": JAN})
    assert r.status_code == 409, r.text and "inactive" in r.json()["detail"].lower()
    r = api("POST", f"/campaigns/{DEMO.campaign_triggers['offers']}/trigger",
            {"contact": {"email": DEMO.emails["anna"]}})
    assert r.status_code == 409, r.text


def test_unknown_campaign_trigger_is_404(api):
    r = api("POST", "/campaigns/nope/trigger", {"contact": JAN})
    assert r.status_code == 404, r.text


# -- the text syntax never breaks the service ----------------------------------------------------------------------

@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.sampled_from(list("ab=;{},<>\n \t") + ["voucherCode", "recommended", "é", "https://x.y"]),
                     max_size=25).map("".join))
def test_arbitrary_fields_text_never_causes_a_500(api, text):
    r = start(api, fieldsText=text)
    # 400: our validation; 404: the platform does not know a product id in a list; never a 5xx
    assert r.status_code in (200, 400, 404), r.text


@pytest.mark.parametrize("status", [429, 500, 502, 504])
def test_every_answer_power_automate_retries_says_when(api, sim, status):
    """Power Automate retries 408, 429 and every 5xx: each such answer carries Retry-After; an upstream answer we
    cannot read (here a bare 307) is a 502 with Retry-After too. Nothing else is a 5xx."""
    sim.faults.configure(fail_rate=1.0, fail_status=status, retry_after=None, times=None)
    try:
        r = api("GET", "/automations")
    finally:
        sim.faults.configure(fail_rate=0.0)
    assert r.status_code in (503, 504), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
