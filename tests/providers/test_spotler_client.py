"""SpotlerClient against the simulator over real loopback sockets: every call's happy path and errors."""

from __future__ import annotations

import socket
import time
from urllib.parse import unquote

import pytest
import requests

from service.providers import errors
from service.providers.spotler import SpotlerClient, SpotlerConfig
from service.sandbox.server import SimulatorServer
from service.sandbox.spotler import DEMO, SpotlerSimulator

JAN = DEMO.contacts["jan"]
PIET = DEMO.contacts["piet"]
WELCOME = DEMO.automations["welcome"]


def _oauth_params(header: str | bytes) -> dict[str, str]:
    header = header.decode() if isinstance(header, bytes) else header
    assert header.startswith("OAuth ")
    out = {}
    for part in header[len("OAuth "):].split(","):
        k, _, v = part.strip().partition("=")
        out[k] = v.strip('"')
    return out


# -- signing --------------------------------------------------------------------------------------------------


def test_signature_matches_the_reference_vector():
    """spotler-api.md §2: key ck_test, secret cs_test, ts 1700000000, nonce abc123nonce."""
    cfg = SpotlerConfig(consumer_key="ck_test", consumer_secret="cs_test")
    client = SpotlerClient(cfg)
    client.auth.client.timestamp = "1700000000"
    client.auth.client.nonce = "abc123nonce"
    prepared = requests.Request(
        "GET", client.url("contact/search"), params={"pageSize": 1, "MPSearchQuery": "email=jan@example.com"},
        auth=client.auth,
    ).prepare()
    assert prepared.url == ("https://restapi.mailplus.nl/integrationservice/contact/search"
                            "?pageSize=1&MPSearchQuery=email%3Djan%40example.com")
    params = _oauth_params(prepared.headers["Authorization"])
    assert params["oauth_signature"] == "Fd5NKJMkewv87EYfpH01OJ%2BRM48%3D"
    assert unquote(params["oauth_signature"]) == "Fd5NKJMkewv87EYfpH01OJ+RM48="
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert "oauth_token" not in params


def test_every_call_is_signed_and_asks_for_json(spotler_client, spotler_sim):
    seen = {}

    def hook(resp, *args, **kwargs):
        seen.update(resp.request.headers)

    spotler_client._session.get().hooks["response"].append(hook)
    spotler_client.get_contact(JAN)
    as_text = {k: v.decode() if isinstance(v, bytes) else v for k, v in seen.items()}
    assert as_text["Accept"] == "application/json"
    assert as_text["Authorization"].startswith("OAuth ")
    assert spotler_sim.stats()["auth_failures"] == 0


@pytest.mark.parametrize("status", [401, 403])
def test_wrong_secret_is_auth_failed(status):
    sim = SpotlerSimulator("k", "right", auth_failure_status=status)
    with SimulatorServer(sim) as url:
        client = SpotlerClient(SpotlerConfig(consumer_key="k", consumer_secret="wrong",
                                             base_url=url + "/integrationservice", read_timeout=2))
        with pytest.raises(errors.AuthFailed) as info:
            client.list_properties()
        client.close()
    assert info.value.upstream_status == status
    assert sim.stats()["auth_failures"] == 1


# -- tolerant parsing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "expected"), [
    ([{"externalId": "a"}, {"no": "id"}], ["a"]),  # bare array; an invalid item is skipped
    ({"paging": {"after": "x"}, "contacts": [{"externalId": "b", "surprise": 1}]}, ["b"]),
    ({"paging": None, "contacts": None}, []),
    (None, []),
])
def test_list_payloads_are_loaded_tolerantly(payload, expected):
    from service.providers.spotler import schemas

    items, _ = schemas.load_list(schemas.ContactSchema(), payload, "contacts")
    assert [i["external_id"] for i in items] == expected


@pytest.mark.parametrize("value", [1_700_000_000_000, 1_700_000_000, "1700000000000", "2023-11-14T22:13:20Z",
                                   "2023-11-14T23:13:20+01:00", "2023-11-14T22:13:20"])
def test_dates_are_parsed_from_epoch_or_iso(value):
    from service.providers.spotler.schemas import parse_datetime

    assert parse_datetime(value).timestamp() == 1_700_000_000


# -- contacts ---------------------------------------------------------------------------------------------------


def test_list_properties_has_vendor_types_and_set_entries(spotler_client):
    props = {p["name"]: p for p in spotler_client.list_properties()}
    vendor_types = {"birthdate", "date", "dateTime", "email", "gender", "int", "mobNr", "money", "postcode", "set",
                    "string"}
    assert {p["type"] for p in props.values()} <= vendor_types
    perms = props["permissions"]
    assert perms["type"] == "set"
    assert {e["description"]: e["bit"] for e in perms["entries"]} == dict(DEMO.permissions)


def test_get_contact_parses_epoch_dates_and_permissions(spotler_client):
    c = spotler_client.get_contact(JAN)
    assert c["external_id"] == JAN
    assert c["properties"]["email"] == DEMO.emails["jan"]
    assert c["created"].tzinfo is not None and c["created"].year == 2023
    assert {e["bit"] for e in c["properties"]["permissions"] if e["enabled"]} == {1, 2}
    assert c["channels"] == [{"name": "EMAIL", "value": True}]


def test_get_contact_accepts_iso_dates():
    sim = SpotlerSimulator("k", "s", date_format="iso")
    with SimulatorServer(sim) as url:
        client = SpotlerClient(SpotlerConfig(consumer_key="k", consumer_secret="s",
                                             base_url=url + "/integrationservice"))
        c = client.get_contact(JAN)
        client.close()
    assert c["created"].timestamp() == 1_700_000_000


def test_unknown_contact_is_not_found(spotler_client):
    with pytest.raises(errors.NotFound) as info:
        spotler_client.get_contact("nobody")
    assert info.value.error_type == "CONTACT_NOT_FOUND"
    assert info.value.code == "CONTACT_NOT_FOUND"
    assert info.value.upstream_status == 404


def test_find_by_email_is_exact_case_insensitive_and_first_wins(spotler_client):
    assert spotler_client.find_contact_by_email("JAN@example.com ")["external_id"] == JAN
    assert spotler_client.find_contact_by_email("shared@example.com")["external_id"] == DEMO.contacts["shared_a"]
    assert spotler_client.find_contact_by_email("jan@example.co") is None


def test_special_characters_survive_signing_in_path_and_query(spotler_client):
    ext = "ext id+ü@x"
    spotler_client.insert_contact({"external_id": ext, "properties": {"email": "jan+promo@example.com"}})
    assert spotler_client.get_contact(ext)["properties"]["email"] == "jan+promo@example.com"
    assert spotler_client.find_contact_by_email("jan+promo@example.com")["external_id"] == ext


def test_insert_update_purge_and_errors(spotler_client, spotler_sim):
    spotler_client.insert_contact({"external_id": "n1", "properties": {"email": "n1@example.com", "city": "Gouda"},
                                   "channels": [{"name": "EMAIL", "value": True}]})
    with pytest.raises(errors.Rejected) as info:
        spotler_client.insert_contact({"external_id": "n1", "properties": {"city": "X"}}, update=False)
    assert info.value.error_type == "CONTACT_ALREADY_EXISTS"
    spotler_client.insert_contact({"external_id": "n1", "properties": {"firstName": "Nel"}}, update=True)
    assert spotler_client.get_contact("n1")["properties"]["city"] == "Gouda"  # merged, not purged
    spotler_client.update_contact("n1", {"lastName": "N"}, purge=True)
    assert spotler_client.get_contact("n1")["properties"] == {"lastName": "N"}
    spotler_client.update_contact("n1", {"lastName": None, "city": "Delft"})
    assert spotler_client.get_contact("n1")["properties"] == {"city": "Delft"}

    with pytest.raises(errors.InvalidInput) as info:
        spotler_client.update_contact("n1", {"email": "not-an-email"})
    assert info.value.message == "Email is invalid"
    with pytest.raises(errors.InvalidInput) as info:
        spotler_client.update_contact("n1", {"shoeSize": 44})
    assert (info.value.message, info.value.error_type) == ("Property is invalid", "INVALID_PROPERTY")
    with pytest.raises(errors.NotFound):
        spotler_client.update_contact("missing", {"city": "X"})
    assert spotler_sim.stats()["contacts_created"] == 1


def test_permissions_merge_by_bit(spotler_client):
    spotler_client.update_contact(JAN, {"permissions": [{"bit": 3, "enabled": True}, {"bit": 1, "enabled": False}]})
    bits = {e["bit"]: e["enabled"] for e in spotler_client.get_contact(JAN)["properties"]["permissions"]}
    assert bits == {1: False, 2: True, 3: True}
    with pytest.raises(errors.InvalidInput):
        spotler_client.update_contact(JAN, {"permissions": [{"bit": 99, "enabled": True}]})


def test_bulk_insert_chunks_by_100_with_per_contact_codes(spotler_client, spotler_sim):
    contacts = [{"external_id": f"b{i}", "properties": {"email": f"b{i}@example.com"}} for i in range(150)]
    contacts[7]["properties"]["email"] = "broken"
    contacts.append({"external_id": JAN, "properties": {"city": "Zeist"}})
    results = spotler_client.insert_contacts(contacts, update=False)
    assert len(results) == 151
    codes = {r["external_id"]: r["code"] for r in results}
    assert codes["b7"] == "PROPERTY_INVALID"
    assert codes[JAN] == "CONTACT_ALREADY_EXISTS"
    assert sum(1 for c in codes.values() if c == "OK") == 149
    assert spotler_sim.stats()["requests"]["POST /contact/list"] == 2


def test_anonymize(spotler_client):
    spotler_client.anonymize_contact(PIET)
    c = spotler_client.get_contact(PIET)
    assert c["properties"] == {}
    assert spotler_client.find_contact_by_email(DEMO.emails["piet"]) is None
    with pytest.raises(errors.NotFound):
        spotler_client.anonymize_contact("missing")


@pytest.mark.parametrize("shape", ["paged", "array"])
def test_updates_list_pages_through_everything(shape):
    sim = SpotlerSimulator("k", "s", list_shape=shape)
    with SimulatorServer(sim) as url:
        client = SpotlerClient(SpotlerConfig(consumer_key="k", consumer_secret="s",
                                             base_url=url + "/integrationservice"))
        got = [c["external_id"] for c in client.iter_updated_contacts("2023-01-01T00:00:00+01:00", "2024-01-01",
                                                                       page_size=4)]
        with pytest.raises(errors.InvalidInput) as info:
            list(client.iter_updated_contacts("yesterday", "2024-01-01"))
        client.close()
    assert sorted(got) == sorted(DEMO.contacts.values())
    assert len(got) == len(set(got))
    assert sim.stats()["requests"]["GET /contact/updates/list"] >= 2
    assert "fromDate" in info.value.message


def test_bounces(spotler_client):
    bounces = list(spotler_client.iter_bounces("2023-01-01", "2024-01-01"))
    assert [(b["contact"]["external_id"], b["type"]) for b in bounces] == [(PIET, "SOFTBOUNCE")]
    assert bounces[0]["date"].year == 2023
    assert list(spotler_client.iter_bounces("2020-01-01", "2020-02-01")) == []


def test_subscribe(spotler_client, spotler_sim):
    spotler_client.subscribe({"properties": {"email": "sub@example.com", "permissions": [{"bit": 1, "enabled": True}]}})
    found = spotler_client.find_contact_by_email("sub@example.com")
    assert found is not None
    assert spotler_sim.stats()["subscriptions"] == 1
    with pytest.raises(errors.InvalidInput):
        spotler_client.subscribe({"properties": {"email": "nope"}})


# -- automations ------------------------------------------------------------------------------------------------


def test_trigger_automation_with_fields_of_every_type(spotler_client, spotler_sim):
    fields = [{"name": "voucherCode", "type": "STRING", "value": "WELCOME10"},
              {"name": "landingUrl", "type": "URL", "value": "https://example.com/hi"},
              {"name": "recommended", "type": "PRODUCTLIST", "values": ["P-100", "P-200"]}]
    res = spotler_client.trigger_automation(WELCOME, JAN, fields)
    assert res["result"] == "OK"
    [run] = res["runs"]
    assert run["automation_id"] == DEMO.automation_ids["welcome"]
    stored = spotler_sim.run(run["automation_contact_id"])
    assert stored["status"] == "ACTIVE"
    assert {f["name"]: f["value"] or f["values"] for f in stored["fields"]} == {
        "voucherCode": "WELCOME10", "landingUrl": "https://example.com/hi", "recommended": ["P-100", "P-200"]}
    assert spotler_sim.stats()["triggers"] == 1


def test_automation_fields_key_is_configurable(make_spotler_client, spotler_sim):
    client = make_spotler_client(automation_fields_key="personalisation")
    res = client.trigger_automation(WELCOME, JAN, [{"name": "voucherCode", "type": "STRING", "value": "X"}])
    # the simulator only knows "automationFields", so the fields went under the configured key and were ignored
    assert spotler_sim.run(res["runs"][0]["automation_contact_id"])["fields"] == []


@pytest.mark.parametrize("location", ["item", "top"])
def test_automation_contact_id_is_found_per_item_or_top_level(location):
    sim = SpotlerSimulator("k", "s", run_id_location=location)
    with SimulatorServer(sim) as url:
        client = SpotlerClient(SpotlerConfig(consumer_key="k", consumer_secret="s",
                                             base_url=url + "/integrationservice"))
        res = client.trigger_automation(WELCOME, JAN)
        client.close()
    acid = res["runs"][0]["automation_contact_id"]
    assert sim.run(acid) is not None


def test_trigger_errors(spotler_client):
    with pytest.raises(errors.NotFound) as info:
        spotler_client.trigger_automation("00000000-0000-4000-8000-000000000000", JAN)
    assert (info.value.error_type, info.value.code) == ("TRIGGER_NOTFOUND", "TRIGGER_NOT_FOUND")
    with pytest.raises(errors.NotFound) as info:
        spotler_client.trigger_automation(WELCOME, "nobody")
    assert (info.value.error_type, info.value.code) == ("CONTACT_NOTFOUND", "CONTACT_NOT_FOUND")
    with pytest.raises(errors.Rejected) as info:
        spotler_client.trigger_automation(DEMO.automations["birthday"], JAN)
    assert info.value.upstream_status == 417
    assert info.value.code == "AUTOMATION_INACTIVE"
    assert info.value.details["automationResults"] == [
        {"automationId": DEMO.automation_ids["birthday"], "result": "AUTOMATION_INACTIVE"}]
    with pytest.raises(errors.InvalidInput):
        spotler_client.trigger_automation(WELCOME, JAN, [{"name": "landingUrl", "type": "STRING", "value": "x"}])
    with pytest.raises(errors.NotFound) as info:
        spotler_client.trigger_automation(WELCOME, JAN, [{"name": "recommended", "type": "PRODUCTLIST",
                                                          "values": ["P-999"]}])
    assert info.value.code == "PRODUCT_NOT_FOUND"


def test_participation_limit_and_partial_success(spotler_client):
    spotler_client.trigger_automation(DEMO.automations["one_time_offer"], JAN)
    with pytest.raises(errors.Rejected) as info:
        spotler_client.trigger_automation(DEMO.automations["one_time_offer"], JAN)
    assert info.value.code == "PARTICIPATION_LIMIT_REACHED"
    res = spotler_client.trigger_automation(DEMO.automations["winback"], JAN)
    assert res["result"] == "OK"
    assert sorted(r["result"] for r in res["runs"]) == ["AUTOMATION_INACTIVE", "OK"]
    assert [bool(r["automation_contact_id"]) for r in res["runs"] if r["result"] == "OK"] == [True]


def test_list_and_stop_automations(spotler_client, spotler_sim):
    listed = {a["trigger_code"]: a for a in spotler_client.list_automations()}
    assert {f["name"]: f["type"] for f in listed[WELCOME]["fields_"]} == dict(DEMO.automation_fields["welcome"])
    assert listed[DEMO.automations["birthday"]]["status"] == "INACTIVE"

    first = spotler_client.trigger_automation(WELCOME, JAN)["runs"][0]["automation_contact_id"]
    second = spotler_client.trigger_automation(WELCOME, JAN)["runs"][0]["automation_contact_id"]
    assert spotler_client.stop_automation_run(first) == "STOPPED"
    assert spotler_client.stop_automation_run(first) == "ALREADY_FINISHED"
    assert spotler_client.stop_automation_run("11111111-1111-4111-8111-111111111111") == "NOT_FOUND"
    stopped = spotler_client.stop_automation_for_contact(WELCOME, JAN)
    assert stopped == [{"automation_contact_id": second, "result": "STOPPED"}]
    assert spotler_client.stop_automation_for_contact(WELCOME, JAN) == []
    assert spotler_sim.stats()["runs_stopped"] == 2


# -- campaigns --------------------------------------------------------------------------------------------------


def test_campaign_list_trigger_stop(spotler_client, spotler_sim):
    campaigns = {c["encrypted_id"]: c for c in spotler_client.list_campaigns()}
    assert campaigns[DEMO.campaigns["old_promo"]]["active"] is False
    assert campaigns[DEMO.campaigns["signup"]]["triggers"][0]["encrypted_id"] == DEMO.campaign_triggers["signup"]

    spotler_client.trigger_campaign(DEMO.campaign_triggers["signup"], JAN,
                                    [{"name": "code", "type": "STRING", "value": "A1"},
                                     {"name": "items", "type": "PRODUCTLIST", "values": ["P-300"]}])
    with pytest.raises(errors.Rejected) as info:
        spotler_client.trigger_campaign(DEMO.campaign_triggers["signup"], JAN)
    assert info.value.message == "Contact already active in campaign"
    spotler_client.stop_campaign(DEMO.campaigns["signup"], JAN)
    with pytest.raises(errors.Rejected) as info:
        spotler_client.stop_campaign(DEMO.campaigns["signup"], JAN)
    assert info.value.message == "Campaign already finished"
    assert spotler_sim.stats()["campaign_triggers"] == 1
    assert spotler_sim.stats()["campaign_stops"] == 1


@pytest.mark.parametrize(("trigger", "contact", "exc", "message"), [
    ("old_promo", "jan", errors.Rejected, "Campaign inactive"),
    ("offers", "piet", errors.Rejected, "Contact not in selection"),
    ("signup", "blocked", errors.Rejected, "Contact is opted out"),
    ("signup", None, errors.NotFound, "Contact not found"),
    (None, "jan", errors.NotFound, "Trigger not found"),
])
def test_campaign_trigger_errors(spotler_client, trigger, contact, exc, message):
    trigger_id = DEMO.campaign_triggers[trigger] if trigger else "unknown-trigger"
    contact_id = DEMO.contacts[contact] if contact else "nobody"
    with pytest.raises(exc) as info:
        spotler_client.trigger_campaign(trigger_id, contact_id)
    assert info.value.message == message


def test_campaign_stop_errors(spotler_client):
    with pytest.raises(errors.Rejected) as info:
        spotler_client.stop_campaign(DEMO.campaigns["signup"], PIET)
    assert info.value.message == "Campaign not triggered"
    with pytest.raises(errors.NotFound) as info:
        spotler_client.stop_campaign("unknown", PIET)
    assert info.value.code == "CAMPAIGN_NOT_FOUND"


# -- audiences and temporary lists --------------------------------------------------------------------------------


def test_audience_crud(spotler_client):
    created = spotler_client.create_audience("aud-new", "New one", "desc")
    assert (created["external_id"], created["name"], created["description"]) == ("aud-new", "New one", "desc")
    assert created["create_date"] is not None
    assert spotler_client.get_audience("aud-new")["name"] == "New one"
    assert "aud-new" in {a["external_id"] for a in spotler_client.list_audiences()}
    assert spotler_client.update_audience("aud-new", "Renamed")["name"] == "Renamed"
    with pytest.raises(errors.Rejected) as info:
        spotler_client.create_audience("aud-new", "Other")
    assert info.value.error_type == "ID_NOTUNIQUE"
    with pytest.raises(errors.Rejected) as info:
        spotler_client.create_audience("aud-other", "Renamed")
    assert info.value.message == "Audience name must be unique"
    with pytest.raises(errors.Rejected) as info:
        spotler_client.delete_audience(DEMO.audiences["in_use"])
    assert info.value.message == "Cannot delete audience, as it's in use"
    spotler_client.delete_audience("aud-new")
    with pytest.raises(errors.NotFound):
        spotler_client.get_audience("aud-new")


def test_audiences_on_a_lower_tier_are_forbidden(spotler_client, spotler_sim):
    spotler_sim.tier = "basic"
    with pytest.raises(errors.Forbidden) as info:
        spotler_client.list_audiences()
    assert info.value.message == "Only Automation or eCommerce products can use this call"
    with pytest.raises(errors.Forbidden):
        spotler_client.add_audience_contacts(DEMO.audiences["vip"], [JAN])


def test_audience_members_are_chunked_by_2500(spotler_client, spotler_sim):
    ids = [f"m{i}" for i in range(2600)]
    spotler_client.insert_contacts([{"external_id": i, "properties": {}} for i in ids])
    spotler_client.add_audience_contacts(DEMO.audiences["vip"], ids)
    assert spotler_sim.stats()["requests"]["POST /audience/<aid>/contact"] == 2
    members = spotler_client.list_audience_members(DEMO.audiences["vip"])
    assert set(members) == set(ids) | {JAN}
    spotler_client.remove_audience_contacts(DEMO.audiences["vip"], ids)
    assert spotler_sim.stats()["requests"]["DELETE /audience/<aid>/contact"] == 2
    assert spotler_sim.members_of(DEMO.audiences["vip"]) == [JAN]


def test_audience_unknown_contacts_and_audience(spotler_client, spotler_sim):
    with pytest.raises(errors.NotFound) as info:
        spotler_client.add_audience_contacts(DEMO.audiences["vip"], [PIET, "ghost-1", "ghost-2"])
    assert info.value.details["externalContactIds"] == ["ghost-1", "ghost-2"]
    with pytest.raises(errors.NotFound) as info:
        spotler_client.add_audience_contacts("no-such-audience", [PIET])
    assert "externalContactIds" not in info.value.details


def test_empty_remove_sends_nothing_and_clear_removes_all(spotler_client, spotler_sim):
    spotler_client.remove_audience_contacts(DEMO.audiences["customers"], [])
    assert "DELETE /audience/<aid>/contact" not in spotler_sim.stats()["requests"]
    assert spotler_sim.members_of(DEMO.audiences["customers"])
    spotler_client.clear_audience(DEMO.audiences["customers"])
    assert spotler_sim.members_of(DEMO.audiences["customers"]) == []


def test_temporary_lists(spotler_client):
    spotler_client.create_temporary_list("tl-1", "Today", [JAN])
    spotler_client.add_to_temporary_list("tl-1", [PIET])
    assert [(t["external_id"], t["type"]) for t in spotler_client.list_temporary_lists()] == [("tl-1", "API")]
    with pytest.raises(errors.Rejected):
        spotler_client.create_temporary_list("tl-1", "Again")
    with pytest.raises(errors.NotFound):
        spotler_client.create_temporary_list("tl-2", "Other", ["ghost"])
    with pytest.raises(errors.NotFound):
        spotler_client.add_to_temporary_list("missing", [JAN])
    spotler_client.delete_temporary_list("tl-1")
    assert spotler_client.list_temporary_lists() == []


# -- tags and scores --------------------------------------------------------------------------------------------


def test_tags_and_scores(spotler_client, spotler_sim):
    spotler_client.add_tags(PIET, ["prospect", "vip"], score=5)
    assert spotler_sim.tags_of(PIET) == {"prospect": 5, "vip": 5}
    assert "prospect" in {t["name"] for t in spotler_client.list_tags()}
    assert spotler_client.set_score(PIET, "vip", 3, "increase") == 8
    assert spotler_client.set_score(PIET, "vip", 10, "decrease") == -2
    assert spotler_client.set_score(PIET, "vip", 1, "set") == 1
    spotler_client.remove_tags(PIET, ["vip"])
    assert spotler_sim.tags_of(PIET) == {"prospect": 5}
    with pytest.raises(errors.InvalidInput):
        spotler_client.add_tags(PIET, ["bad,tag"])
    with pytest.raises(errors.NotFound):
        spotler_client.add_tags("nobody", ["x"])


def test_disabled_route_is_not_supported(make_spotler_client):
    client = make_spotler_client(route_tag_list="")
    with pytest.raises(errors.NotSupported):
        client.list_tags()


# -- transport: retries, timeouts, resets -------------------------------------------------------------------------


def test_get_is_retried_on_503_then_succeeds(spotler_client, spotler_sim):
    spotler_sim.faults.configure(fail_rate=1.0, fail_status=503, retry_after=0, times=2)
    assert spotler_client.get_contact(JAN)["external_id"] == JAN
    assert spotler_sim.stats()["requests"]["GET /contact/<eid>"] == 1  # the two faults never reached the app
    assert spotler_sim.faults.stats()["injected"]["status_503"] == 2


def test_retries_stop_after_max_retries(make_spotler_client, spotler_sim):
    client = make_spotler_client(max_retries=2)
    spotler_sim.faults.configure(fail_rate=1.0, fail_status=500)
    with pytest.raises(errors.Unavailable) as info:
        client.list_properties()
    assert info.value.upstream_status == 500
    assert spotler_sim.faults.stats()["seen"] == 3


def test_retry_after_is_honoured(spotler_client, spotler_sim):
    spotler_sim.faults.configure(fail_rate=1.0, fail_status=429, retry_after=1, times=1)
    started = time.monotonic()
    spotler_client.list_properties()
    assert 0.9 <= time.monotonic() - started < 1.9
    assert spotler_sim.faults.stats()["seen"] == 2


def test_retry_after_above_the_cap_is_returned_not_slept(spotler_client, spotler_sim):
    spotler_sim.faults.configure(fail_rate=1.0, fail_status=429, retry_after=30)
    started = time.monotonic()
    with pytest.raises(errors.RateLimited) as info:
        spotler_client.list_properties()
    assert time.monotonic() - started < 1.0
    assert info.value.retry_after == 30
    assert spotler_sim.faults.stats()["seen"] == 1


def test_post_that_reached_the_server_is_not_retried(spotler_client, spotler_sim):
    spotler_sim.faults.configure(fail_rate=1.0, fail_status=503, retry_after=0, methods=["POST"])
    with pytest.raises(errors.Unavailable):
        spotler_client.trigger_automation(WELCOME, JAN)
    assert spotler_sim.faults.stats()["seen"] == 1


def test_reset_after_a_post_was_applied_is_not_retried(spotler_client, spotler_sim):
    spotler_sim.faults.configure(reset_rate=1.0, reset_phase="after", times=1)
    with pytest.raises(errors.OutcomeUnknown) as info:  # a trigger is not safe to repeat: outcome unknown
        spotler_client.trigger_automation(WELCOME, JAN)
    assert info.value.call == "trigger_automation" and info.value.in_flight is False  # a reset, not a hang
    assert spotler_sim.stats()["triggers"] == 1  # applied exactly once, the client did not resend


def test_idempotent_get_is_retried_after_a_reset(spotler_client, spotler_sim):
    spotler_sim.faults.configure(reset_rate=1.0, times=1)
    assert spotler_client.get_contact(JAN)["external_id"] == JAN
    assert spotler_sim.faults.stats()["seen"] == 2


def test_hang_raises_timeout_within_the_read_timeout(make_spotler_client, spotler_sim):
    client = make_spotler_client(read_timeout=0.3)
    spotler_sim.faults.configure(hang_rate=1.0, hang_seconds=3, hang_then="fail")
    started = time.monotonic()
    with pytest.raises(errors.UpstreamTimeout):
        client.get_contact(JAN)
    elapsed = time.monotonic() - started
    spotler_sim.faults.release_hangs()
    assert 0.25 <= elapsed < 1.5
    assert spotler_sim.faults.stats()["seen"] == 1  # a read timeout is not retried


def test_connection_refused_is_unavailable_and_not_sent():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = SpotlerClient(SpotlerConfig(consumer_key="k", consumer_secret="s", max_retries=1,
                                         backoff_factor=0.01, base_url=f"http://127.0.0.1:{port}/integrationservice"))
    with pytest.raises(errors.Unavailable) as info:
        client.trigger_automation(WELCOME, JAN)
    client.close()
    assert info.value.request_sent is False
