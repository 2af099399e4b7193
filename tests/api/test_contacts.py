"""Contact operations through the API against the Spotler simulator: fields, get, upsert, anonymize, set/clear."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from service.sandbox.spotler import DEMO
from tests.api.support import assert_ok, assert_problem

JAN = {"email": DEMO.emails["jan"]}
JAN_ID = DEMO.contacts["jan"]


def get_fields(call, **ref) -> dict:
    return assert_ok(call("GET", "/contacts", **ref))["fields"]


# -- ListContactFields ------------------------------------------------------------------------------------

def test_list_contact_fields_feeds_the_dropdown(call, sim):
    value = assert_ok(call("GET", "/contact-fields"))["value"]
    by_name = {f["name"]: f for f in value}
    assert set(by_name) == set(sim.properties)
    assert by_name["firstName"]["displayName"] == "First name"
    assert by_name["firstName"]["title"] == "First name (firstName)"
    assert by_name["loyaltyPoints"]["type"] == "int"
    assert "options" not in by_name["firstName"]
    assert by_name["interests"]["options"] == [{"name": "Running", "value": "1"}, {"name": "Cycling", "value": "2"}]


# -- GetContact -------------------------------------------------------------------------------------------

def test_get_contact_by_email_and_by_external_id(call, sim):
    by_email = assert_ok(call("GET", "/contacts", email=DEMO.emails["jan"]))
    by_id = assert_ok(call("GET", "/contacts", externalId=JAN_ID))
    assert by_email == by_id
    stored = sim.contact(JAN_ID)["properties"]
    assert by_email["externalId"] == JAN_ID and by_email["email"] == DEMO.emails["jan"]
    assert by_email["fields"]["firstName"] == stored["firstName"]
    assert by_email["fields"]["loyaltyPoints"] == stored["loyaltyPoints"]


def test_get_contact_absent_is_404(call, sim):
    body = assert_problem(call("GET", "/contacts", email="nobody@example.com"), 404, "CONTACT_NOT_FOUND")
    assert "n***@example.com" in body["detail"] and "nobody@" not in body["detail"]  # masked, never in clear
    assert_problem(call("GET", "/contacts", externalId="no-such-id"), 404, "CONTACT_NOT_FOUND")


def test_get_contact_needs_email_or_external_id(call, sim):
    assert_problem(call("GET", "/contacts"), 400, "CONTACT_REQUIRED")
    assert_problem(call("GET", "/contacts", email="not-an-email"), 400, "INVALID_EMAIL")


# -- UpsertContact ----------------------------------------------------------------------------------------

def test_upsert_creates_with_coerced_values_by_display_name(call, sim):
    before = sim.stats()["contacts_created"]
    r = assert_ok(call("PUT", "/contacts", {
        "contact": {"email": "new.person@Example.COM"},
        "fields": {"First name": "Nina", "loyaltyPoints": "42", "Last purchase date": "29-02-2024",
                   "totalSpent": "1.234,56", "Last login": "01-03-2024 13:45", "Gender": "vrouw"},
    }))
    assert r["contact"]["created"] is True
    assert sorted(r["fieldsSet"]) == sorted(["firstName", "loyaltyPoints", "lastPurchaseDate", "totalSpent",
                                             "lastLogin", "gender"])
    assert sim.stats()["contacts_created"] == before + 1
    stored = sim.contact(r["contact"]["externalId"])["properties"]
    assert stored["email"] == "new.person@example.com"
    assert stored["firstName"] == "Nina"
    assert stored["loyaltyPoints"] == 42
    assert stored["lastPurchaseDate"] == "2024-02-29"
    assert stored["totalSpent"] == "1234.56"
    assert stored["lastLogin"].startswith("2024-03-01T13:45:00")
    assert stored["gender"] == "F"
    fields = get_fields(call, email="new.person@example.com")
    assert fields["loyaltyPoints"] == 42 and r["record"]["fields"] == fields


def test_upsert_updates_existing_and_keeps_other_fields(call, sim):
    before = get_fields(call, **JAN)
    r = assert_ok(call("PUT", "/contacts", {"contact": JAN, "fields": {"city": "Amersfoort"}}))
    assert r["contact"] == {"externalId": JAN_ID, "created": False}
    after = get_fields(call, **JAN)
    assert after["city"] == "Amersfoort"
    assert {k: v for k, v in after.items() if k != "city"} == {k: v for k, v in before.items() if k != "city"}


def test_upsert_with_purge_clears_fields_not_given(call, sim):
    assert_ok(call("PUT", "/contacts", {"contact": {"externalId": JAN_ID}, "fields": {"city": "Zwolle"},
                                        "purge": True}))
    fields = get_fields(call, externalId=JAN_ID)
    assert fields["city"] == "Zwolle"
    assert "firstName" not in fields and "loyaltyPoints" not in fields


def test_upsert_fields_text_and_typed_fields_win(call, sim):
    assert_ok(call("PUT", "/contacts", {"contact": JAN, "fieldsText": "First name=Johan;city=Delft",
                                        "fields": {"firstName": "Jan-Willem"}}))
    fields = get_fields(call, **JAN)
    assert fields["firstName"] == "Jan-Willem" and fields["city"] == "Delft"


def test_upsert_replay_creates_once(call, sim):
    body = {"contact": {"email": "once@example.com"}, "fields": {"firstName": "Once"}}
    first = call("PUT", "/contacts", body, key="upsert-once")
    second = call("PUT", "/contacts", body, key="upsert-once")
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert sim.stats()["contacts_created"] == 1
    # "already exists" is success: a new call (new key) updates the same contact
    third = assert_ok(call("PUT", "/contacts", body, key="upsert-twice"))
    assert third["contact"] == {"externalId": first.json()["contact"]["externalId"], "created": False}


def test_upsert_rejects_bad_values_before_calling_the_platform(call, sim):
    body = assert_problem(call("PUT", "/contacts", {"contact": {"email": "bad@example.com"},
                                                    "fields": {"lastPurchaseDate": "31-02-2024"}}),
                          400, "INVALID_FIELD_VALUE")
    assert body["field"] == "lastPurchaseDate" and body["value"] == "31-02-2024"
    assert_problem(call("PUT", "/contacts", {"contact": {"email": "bad@example.com"}, "fields": {"nope": "x"}}),
                   400, "UNKNOWN_FIELD")
    assert sim.stats()["contacts_created"] == 0


# -- AnonymizeContact -------------------------------------------------------------------------------------

def test_anonymize_removes_personal_data(call, sim):
    r = assert_ok(call("POST", "/contacts/anonymize", {"contact": JAN}))
    assert r["contact"]["externalId"] == JAN_ID
    assert sim.stats()["contacts_anonymized"] == 1
    assert sim.contact(JAN_ID)["properties"] == {}
    assert_problem(call("GET", "/contacts", **JAN), 404, "CONTACT_NOT_FOUND")


def test_anonymize_unknown_contact_is_404(call, sim):
    assert_problem(call("POST", "/contacts/anonymize", {"contact": {"email": "ghost@example.com"}}),
                   404, "CONTACT_NOT_FOUND")
    assert sim.stats()["contacts_anonymized"] == 0


# -- SetContactField / ClearContactField ------------------------------------------------------------------

@pytest.mark.parametrize("field, value, internal, stored", [
    ("Loyalty points", "250", "loyaltyPoints", 250),
    ("loyaltyPoints", " -7 ", "loyaltyPoints", -7),
    ("Last purchase date", "2024-02-29", "lastPurchaseDate", "2024-02-29"),
    ("Last purchase date", "29/02/2024", "lastPurchaseDate", "2024-02-29"),
    ("Last purchase date", "1.3.2024", "lastPurchaseDate", "2024-03-01"),
    ("Birthday", "12-04-1981", "birthday", "1981-04-12"),
    ("Total spent", "12,50", "totalSpent", "12.50"),
    ("Mobile number", "06-12 34 56 78", "mobileNumber", "0612345678"),
    ("Postcode", " 1234 ab ", "postalCode", "1234 AB"),
    ("Gender", "female", "gender", "F"),
    ("Interests", "Running;Cycling", "interests", {"1": True, "2": True}),
])
def test_set_contact_field_converts_and_leaves_other_fields(call, sim, field, value, internal, stored):
    before = get_fields(call, **JAN)
    r = assert_ok(call("POST", "/contacts/fields", {"contact": JAN, "field": field, "value": value}))
    assert r["field"] == internal and r["contact"]["externalId"] == JAN_ID
    assert sim.contact(JAN_ID)["properties"][internal] == stored
    after = get_fields(call, **JAN)
    assert {k: v for k, v in after.items() if k != internal} == {k: v for k, v in before.items() if k != internal}


def test_set_field_date_time_without_offset_is_utc(call, sim):
    r = assert_ok(call("POST", "/contacts/fields", {"contact": JAN, "field": "lastLogin", "value": "29-02-2024 13:45"}))
    assert r["value"] == "2024-02-29T13:45:00+00:00"
    assert get_fields(call, **JAN)["lastLogin"].startswith("2024-02-29T13:45:00")


def test_set_field_with_set_value_holds_exactly_the_chosen_options(call, sim):
    assert_ok(call("POST", "/contacts/fields", {"contact": JAN, "field": "interests", "value": "Running;Cycling"}))
    assert_ok(call("POST", "/contacts/fields", {"contact": JAN, "field": "interests", "value": "2"}))
    assert sim.contact(JAN_ID)["properties"]["interests"] == {"1": False, "2": True}


def test_ambiguous_display_name_lists_the_candidates(call, sim):
    body = assert_problem(call("POST", "/contacts/fields", {"contact": JAN, "field": "Preference", "value": "x"}),
                          400, "AMBIGUOUS_FIELD")
    assert {c["name"] for c in body["candidates"]} == {"profileField1", "profileField2"}
    assert "internal name" in body["detail"]
    assert sim.stats()["contacts_updated"] == 0
    assert_ok(call("POST", "/contacts/fields", {"contact": JAN, "field": "profileField2", "value": "tea"}))
    assert sim.contact(JAN_ID)["properties"]["profileField2"] == "tea"


@pytest.mark.parametrize("field, value, expected_part", [
    ("lastPurchaseDate", "31-02-2024", "date"),
    ("lastPurchaseDate", "02/29/2024", "day first"),
    ("loyaltyPoints", "abc", "whole number"),
    ("loyaltyPoints", "1.5", "whole number"),
    ("totalSpent", "1.234", "amount"),
    ("gender", "maybe", "M or F"),
])
def test_impossible_value_is_400_naming_field_value_and_format(call, sim, field, value, expected_part):
    body = assert_problem(call("POST", "/contacts/fields", {"contact": JAN, "field": field, "value": value}),
                          400, "INVALID_FIELD_VALUE")
    assert body["field"] == field
    assert body["value"] == value
    assert expected_part in body["expected"]
    assert field in body["detail"] and value in body["detail"]
    assert sim.stats()["contacts_updated"] == 0


def test_unknown_field_is_400_with_suggestions(call, sim):
    body = assert_problem(call("POST", "/contacts/fields", {"contact": JAN, "field": "loyaltyPoint", "value": "1"}),
                          400, "UNKNOWN_FIELD")
    assert "loyaltyPoints" in body["suggestions"]


def test_field_created_on_the_platform_is_found_despite_the_cache(make_client, settings, spotler_sim, sim):
    from tests.conftest import API_KEY

    api = make_client(settings.with_(sandbox_upstream_url=spotler_sim.url, list_cache_seconds=300))
    headers = {"X-API-Key": API_KEY}
    assert api.get("/contact-fields", headers=headers).status_code == 200  # cached now
    with sim.lock:
        sim.properties["shoeSize"] = {"name": "shoeSize", "description": "Shoe size", "type": "int"}
    r = api.post("/contacts/fields", headers=headers, json={"contact": JAN, "field": "Shoe size", "value": "44"})
    assert r.status_code == 200, r.text
    assert sim.contact(JAN_ID)["properties"]["shoeSize"] == 44


def test_set_field_on_unknown_contact_is_404(call, sim):
    assert_problem(call("POST", "/contacts/fields", {"contact": {"email": "ghost@example.com"}, "field": "city",
                                                     "value": "Ede"}), 404, "CONTACT_NOT_FOUND")


def test_empty_value_clears_the_field(call, sim):
    r = assert_ok(call("POST", "/contacts/fields", {"contact": JAN, "field": "City", "value": "  "}))
    assert "value" not in r
    assert "city" not in get_fields(call, **JAN)


def test_clear_contact_field_leaves_every_other_field(call, sim):
    before = get_fields(call, **JAN)
    assert "city" in before and "interests" not in before
    r = assert_ok(call("POST", "/contacts/fields/clear", {"contact": JAN, "field": "City"}))
    assert r["field"] == "city" and "value" not in r
    after = get_fields(call, **JAN)
    assert "city" not in after
    assert after == {k: v for k, v in before.items() if k != "city"}


def test_clear_permissions_set_field(call, sim):
    before = get_fields(call, **JAN)
    assert_ok(call("POST", "/contacts/fields/clear", {"contact": JAN, "field": "permissions"}))
    after = get_fields(call, **JAN)
    assert "permissions" in before and "permissions" not in after
    assert after == {k: v for k, v in before.items() if k != "permissions"}


def test_clear_field_errors(call, sim):
    assert_problem(call("POST", "/contacts/fields/clear", {"contact": JAN, "field": "Preference"}),
                   400, "AMBIGUOUS_FIELD")
    assert_problem(call("POST", "/contacts/fields/clear", {"contact": JAN, "field": "nope"}), 400, "UNKNOWN_FIELD")
    assert_problem(call("POST", "/contacts/fields/clear", {"contact": {"externalId": "ghost"}, "field": "city"}),
                   404, "CONTACT_NOT_FOUND")
    assert sim.stats()["contacts_updated"] == 0


def test_set_field_replay_returns_the_same_answer_once(call, sim):
    body = {"contact": JAN, "field": "Loyalty points", "value": "300"}
    first = call("POST", "/contacts/fields", body, key="set-field-1")
    second = call("POST", "/contacts/fields", body, key="set-field-1")
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert sim.stats()["contacts_updated"] == 1
    job = assert_ok(call("GET", f"/jobs/{first.json()['jobId']}"))
    assert job["operation"] == "SetContactField" and job["status"] == "Completed"


def test_set_field_error_replays_too(call, sim):
    body = {"contact": JAN, "field": "loyaltyPoints", "value": "abc"}
    first = call("POST", "/contacts/fields", body, key="bad-int")
    second = call("POST", "/contacts/fields", body, key="bad-int")
    assert_problem(first, 400, "INVALID_FIELD_VALUE")
    assert second.json()["code"] == "INVALID_FIELD_VALUE"


# -- property: value conversion never answers 500 ---------------------------------------------------------

_TYPED_FIELDS = ["loyaltyPoints", "totalSpent", "lastPurchaseDate", "birthday", "lastLogin", "gender",
                 "mobileNumber", "postalCode", "email", "interests", "firstName"]
_DATEISH = st.builds(lambda d, sep, m, y: f"{d}{sep}{m}{sep}{y}", st.integers(-1, 40), st.sampled_from("-/. "),
                     st.integers(-1, 14), st.integers(0, 10000))
_VALUES = st.one_of(st.text(max_size=40), st.text(alphabet=string.digits + ",.-+ €", max_size=20), _DATEISH,
                    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:?[0-9]{2})?\Z"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(_TYPED_FIELDS), value=_VALUES)
def test_value_conversion_never_answers_500(call, sim, field, value):
    r = call("POST", "/contacts/fields", {"contact": {"externalId": JAN_ID}, "field": field, "value": value})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        body = r.json()
        assert body["code"] in ("INVALID_FIELD_VALUE", "INVALID_PROPERTY", "UPSTREAM_VALIDATION_FAILED",
                                "INVALID_CHARACTER"), body
        if body["code"] == "INVALID_FIELD_VALUE":
            assert body["field"] == field and body["expected"]


def test_operation_descriptions_document_the_accepted_formats():
    """The formats in the spec are written statically; they must say what coercion accepts."""
    from pathlib import Path

    import yaml

    from service.actions.coercion import describe_formats

    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text(encoding="utf-8"))
    for path, method in (("/contacts/fields", "post"), ("/contacts", "put")):
        description = " ".join(spec["paths"][path][method]["description"].split())
        assert " ".join(describe_formats().split()) in description, path
