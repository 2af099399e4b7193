"""SpotlerProvider (the Provider interface) against the simulator over real loopback sockets."""

from __future__ import annotations

import hashlib
import threading

import pytest

from service.providers import errors
from service.providers.base import Contact, ContactRef, FieldValue, Provider
from service.providers.spotler import SpotlerConfig, SpotlerProvider, WireFormatError, generated_external_id
from service.sandbox.spotler import DEMO

JAN = DEMO.contacts["jan"]
PIET = DEMO.contacts["piet"]
ANNA = DEMO.contacts["anna"]
WELCOME = DEMO.automations["welcome"]


def _contact(spotler: SpotlerProvider, key: str) -> Contact:
    c = spotler.find_contact(ContactRef(external_id=DEMO.contacts[key]))
    assert c is not None
    return c


def test_every_provider_method_is_implemented():
    base_methods = {n for n, v in vars(Provider).items() if callable(v) and not n.startswith("_")}
    base_methods -= {"supports", "close"}
    missing = [n for n in base_methods if getattr(SpotlerProvider, n) is getattr(Provider, n)]
    assert missing == []
    # all but the webhook trigger: Spotler sends no webhooks (it has the polling triggers)
    assert set(SpotlerProvider.unsupported) == {"OnPlatformEvent", "ListPlatformEvents"}


def test_ping(spotler, spotler_sim):
    info = spotler.ping()
    assert info["platform"] == "spotler"
    assert info["contactFields"] == len(spotler_sim.properties)
    assert spotler_sim.stats()["requests"] == {"GET /contact/properties/list": 1}


def test_ping_with_bad_credentials_is_auth_failed(make_spotler_provider):
    with pytest.raises(errors.AuthFailed):
        make_spotler_provider(consumer_secret="wrong").ping()


def test_contact_fields_have_display_names_and_options(spotler):
    fields = {f.name: f for f in spotler.list_contact_fields()}
    assert fields["firstName"].display_name == "First name"
    assert fields["lastLogin"].type == "dateTime"
    assert [(o.name, o.value) for o in fields["permissions"].options] == [
        (name, str(bit)) for name, bit in DEMO.permissions.items()]
    same = sorted(n for n, f in fields.items() if f.display_name == "Preference")
    assert same == ["profileField1", "profileField2"]


def test_find_contact(spotler):
    by_id = spotler.find_contact(ContactRef(external_id=JAN))
    by_email = spotler.find_contact(ContactRef(email=DEMO.emails["jan"]))
    assert by_id == by_email
    assert by_id.email == DEMO.emails["jan"]
    assert by_id.extra["encryptedId"]
    assert by_id.extra["created"].startswith("2023-11-14T22:13:20")
    assert spotler.find_contact(ContactRef(external_id="nobody")) is None
    assert spotler.find_contact(ContactRef(email="nobody@example.com")) is None
    with pytest.raises(errors.InvalidInput):
        spotler.find_contact(ContactRef())


def test_dates_are_normalised_whatever_spotler_sends(spotler, spotler_sim):
    with spotler_sim.lock:
        props = spotler_sim.contacts[JAN]["properties"]
        props["lastLogin"] = 1_700_000_000_000  # epoch ms
        props["lastPurchaseDate"] = "2023-10-01T00:00:00Z"
    c = spotler.find_contact(ContactRef(external_id=JAN))
    assert c.properties["lastLogin"] == "2023-11-14T22:13:20+00:00"
    assert c.properties["lastPurchaseDate"] == "2023-10-01"
    assert c.properties["birthday"] == "1980-04-12"


def test_upsert_by_email_generates_a_stable_external_id(spotler, spotler_sim):
    ref = ContactRef(email="New.Person@Example.com")
    first = spotler.upsert_contact(ref, {"firstName": "New"})
    assert first.external_id == hashlib.sha256(b"new.person@example.com").hexdigest()
    assert first.external_id == generated_external_id(" new.person@example.com ")
    assert first.email == "New.Person@Example.com"
    assert first.extra["channels"] == {"EMAIL": True}
    again = spotler.upsert_contact(ref, {"lastName": "Person"})
    assert again.external_id == first.external_id
    assert again.properties["firstName"] == "New"
    assert spotler_sim.stats()["contacts_created"] == 1


def test_concurrent_upserts_of_one_address_create_one_contact(spotler, spotler_sim):
    ref = ContactRef(email="race@example.com")
    results = []
    threads = [threading.Thread(target=lambda: results.append(spotler.upsert_contact(ref, {"city": "Ede"})))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({c.external_id for c in results}) == 1
    assert spotler_sim.stats()["contacts_created"] == 1


def test_upsert_by_external_id_and_existing_channels_untouched(spotler, spotler_sim):
    created = spotler.upsert_contact(ContactRef(external_id="crm-77", email="crm77@example.com"), {"city": "Ede"})
    assert created.external_id == "crm-77"
    assert created.email == "crm77@example.com"
    with spotler_sim.lock:
        spotler_sim.contacts[JAN]["channels"]["EMAIL"] = False  # the person switched e-mail off
    updated = spotler.upsert_contact(ContactRef(email=DEMO.emails["jan"]), {"city": "Zeist"})
    assert updated.external_id == JAN
    assert updated.extra["channels"]["EMAIL"] is False
    assert updated.properties["city"] == "Zeist"
    assert updated.properties["firstName"] == "Jan"


def test_upsert_with_purge_keeps_only_given_fields_and_email(spotler):
    c = spotler.upsert_contact(ContactRef(email=DEMO.emails["jan"]), {"firstName": "J."}, purge=True)
    assert set(c.properties) == {"firstName", "email"}


def test_update_contact_sets_and_clears(spotler):
    jan = _contact(spotler, "jan")
    after = spotler.update_contact(jan, {"city": None, "loyaltyPoints": 7, "gender": "F"})
    assert "city" not in after.properties
    assert after.properties["loyaltyPoints"] == 7
    with pytest.raises(errors.InvalidInput) as info:
        spotler.update_contact(jan, {"gender": "X"})
    assert info.value.error_type == "INVALID_PROPERTY"


def test_anonymize(spotler, spotler_sim):
    spotler.anonymize_contact(_contact(spotler, "piet"))
    assert spotler.find_contact(ContactRef(email=DEMO.emails["piet"])) is None
    assert spotler_sim.stats()["contacts_anonymized"] == 1


def test_permissions(spotler):
    assert [(p.name, p.value) for p in spotler.list_permissions()] == [
        (n, str(b)) for n, b in DEMO.permissions.items()]
    piet = _contact(spotler, "piet")
    state = spotler.set_permissions(piet, {str(DEMO.permissions["Events"]): True})
    assert state == {"1": True, "2": False, "3": True}
    state = spotler.set_permissions(piet, {"1": False})
    assert state == {"1": False, "2": False, "3": True}
    with pytest.raises(errors.InvalidInput) as info:
        spotler.set_permissions(piet, {"42": True})
    assert info.value.code == "UNKNOWN_PERMISSION"


def test_permissions_property_is_configurable(make_spotler_provider):
    p = make_spotler_provider(permissions_property="interests")
    assert [o.name for o in p.list_permissions()] == ["Running", "Cycling"]
    missing = make_spotler_provider(permissions_property="nope")
    assert missing.list_permissions() == []


def test_list_automations_merges_a_shared_trigger(spotler):
    autos = {a.id: a for a in spotler.list_automations()}
    assert set(autos) == set(DEMO.automations.values())
    assert {f.name: f.type for f in autos[WELCOME].fields} == dict(DEMO.automation_fields["welcome"])
    assert autos[DEMO.automations["birthday"]].status == "INACTIVE"
    winback = autos[DEMO.automations["winback"]]
    assert winback.status == "ACTIVE"
    assert len(winback.extra["automationIds"]) == 2


def test_start_and_stop_automation(spotler, spotler_sim):
    jan = _contact(spotler, "jan")
    res = spotler.start_automation(WELCOME, jan, [
        FieldValue(name="voucherCode", type="STRING", value="V1"),
        FieldValue(name="recommended", type="PRODUCTLIST", values=("P-100",)),
    ])
    assert res.result == "OK"
    [acid] = res.automation_contact_ids
    assert spotler_sim.run(acid)["status"] == "ACTIVE"
    stopped = spotler.stop_automation(WELCOME, jan)
    assert [(s.automation_contact_id, s.result) for s in stopped] == [(acid, "STOPPED")]
    assert spotler_sim.run(acid)["status"] == "STOPPED"


def test_start_inactive_automation_is_rejected_with_reasons(spotler):
    with pytest.raises(errors.Rejected) as info:
        spotler.start_automation(DEMO.automations["birthday"], _contact(spotler, "jan"), [])
    assert info.value.error_type == "NOT_TRIGGERED"
    assert info.value.details["automationResults"][0]["result"] == "AUTOMATION_INACTIVE"


def test_stop_automation_runs(spotler, spotler_sim):
    jan = _contact(spotler, "jan")
    a = spotler.start_automation(WELCOME, jan, []).automation_contact_ids[0]
    b = spotler.start_automation(DEMO.automations["abandoned_cart"], jan, []).automation_contact_ids[0]
    spotler.stop_automation_runs([b])
    results = spotler.stop_automation_runs([a, a, b, "11111111-1111-4111-8111-111111111111"])
    assert [(r.automation_contact_id, r.result) for r in results] == [
        (a, "STOPPED"), (b, "ALREADY_FINISHED"), ("11111111-1111-4111-8111-111111111111", "NOT_FOUND")]
    assert spotler_sim.stats()["runs_stopped"] == 2


def test_campaigns(spotler, spotler_sim):
    campaigns = {c.id: c for c in spotler.list_campaigns()}
    assert campaigns[DEMO.campaigns["old_promo"]].active is False
    jan = _contact(spotler, "jan")
    spotler.trigger_campaign(DEMO.campaign_triggers["offers"], jan,
                             [FieldValue(name="url", type="URL", value="https://example.com/o")])
    with pytest.raises(errors.Rejected):
        spotler.trigger_campaign(DEMO.campaign_triggers["offers"], jan, [])
    spotler.stop_campaign(DEMO.campaigns["offers"], jan)
    assert spotler_sim.stats()["campaign_triggers"] == 1
    assert spotler_sim.stats()["campaign_stops"] == 1


def test_tags_and_scores(spotler, spotler_sim):
    piet = _contact(spotler, "piet")
    spotler.add_tags(piet, [" lead ", "lead", "webinar"], score=2)
    assert spotler_sim.tags_of(PIET) == {"lead": 2, "webinar": 2}
    assert spotler.set_score(piet, "lead", 5, "increase") == 7
    assert spotler.set_score(piet, "lead", 1, "decrease") == 6
    assert spotler.set_score(piet, "lead", 0, "set") == 0
    spotler.remove_tags(piet, ["webinar"])
    assert spotler_sim.tags_of(PIET) == {"lead": 0}
    assert {"vip", "lead", "webinar"} <= {t.name for t in spotler.list_tags()}
    with pytest.raises(errors.InvalidInput):
        spotler.set_score(piet, "lead", 1, "multiply")
    with pytest.raises(errors.InvalidInput):
        spotler.add_tags(piet, [" "])


def test_audiences_report_per_contact_results(spotler, spotler_sim):
    vip = DEMO.audiences["vip"]
    ghost = Contact(external_id="ghost")
    contacts = [_contact(spotler, "jan"), _contact(spotler, "piet"), ghost]
    added = {r.external_id: r.result for r in spotler.add_to_audience(vip, contacts)}
    assert added == {JAN: "already_member", PIET: "added", "ghost": "not_found"}
    assert set(spotler_sim.members_of(vip)) == {JAN, PIET}
    removed = {r.external_id: r.result for r in spotler.remove_from_audience(vip, [_contact(spotler, "piet"),
                                                                                   _contact(spotler, "anna"), ghost])}
    assert removed == {PIET: "removed", ANNA: "not_member", "ghost": "not_found"}
    assert spotler_sim.members_of(vip) == [JAN]


def test_audience_results_without_membership_route(make_spotler_provider, spotler_sim):
    p = make_spotler_provider(route_audience_members="")
    res = {r.external_id: r.result for r in p.add_to_audience(DEMO.audiences["vip"], [
        Contact(external_id=JAN), Contact(external_id=ANNA)])}
    assert res == {JAN: "added", ANNA: "added"}  # "is a member now": membership cannot be read
    assert set(spotler_sim.members_of(DEMO.audiences["vip"])) == {JAN, ANNA}


def test_unknown_audience_is_not_found(spotler):
    with pytest.raises(errors.NotFound):
        spotler.add_to_audience("no-such-audience", [Contact(external_id=JAN)])


def test_create_and_list_audiences(spotler):
    a = spotler.create_audience("aud-x", "X list", "d")
    assert (a.id, a.name, a.description) == ("aud-x", "X list", "d")
    assert spotler.create_audience("aud-x", "X list") == a  # replay is a success
    with pytest.raises(errors.Rejected):
        spotler.create_audience("aud-x", "Another name")
    assert "aud-x" in {x.id for x in spotler.list_audiences()}


def test_lower_tier_audiences_are_forbidden(spotler, spotler_sim):
    spotler_sim.tier = "basic"
    with pytest.raises(errors.Forbidden):
        spotler.add_to_audience(DEMO.audiences["vip"], [Contact(external_id=JAN)])


def test_disabled_routes_are_listed_as_unsupported(make_spotler_provider):
    p = make_spotler_provider(route_tag_add="", route_score="")
    assert set(p.unsupported) == {"AddTag", "SetScore", "OnPlatformEvent", "ListPlatformEvents"}
    assert not p.supports("AddTag") and p.supports("RemoveTag")
    with pytest.raises(errors.NotSupported):
        p.add_tags(Contact(external_id=JAN), ["x"])


@pytest.mark.parametrize("overrides", [
    {"route_tag_add": "FETCH contact/{external_id}/tag"},
    {"route_tag_add": "POST contact/{contact}/tag"},
    {"body_score": "{not json"},
    {"body_tag_remove": '{"tags": "{tag_list}"}'},
    {"automation_field_type_case": "title"},
    {"base_url": "ftp://example.com"},
    {"consumer_secret": ""},
])
def test_bad_configuration_fails_fast(overrides):
    values = {"consumer_key": "k", "consumer_secret": "s", **overrides}
    with pytest.raises(ValueError):
        SpotlerConfig(**values)


def test_wire_format_error_names_the_field():
    with pytest.raises(WireFormatError, match="route_automation_stop_run"):
        SpotlerConfig(consumer_key="k", consumer_secret="s", route_automation_stop_run="POST x/{run}")


def test_custom_route_and_body_are_used(make_spotler_provider, spotler_sim):
    # point the "stop all runs" call at the per-run endpoint shape to prove the template drives the wire
    p = make_spotler_provider(route_score="POST contact/{external_id}/score",
                              body_score='{"tag": "{tag}", "score": "{score}", "mode": "{mode}", "note": "via {mode}"}',
                              score_mode_case="lower")
    piet = Contact(external_id=PIET)
    assert p.set_score(piet, "loyal", 4, "increase") == 4  # the simulator upper-cases the mode itself


def test_lookups_run_on_threads_the_provider_made_once(spotler):
    """Issue #21: each find_contacts / lookup_emails made (and joined) a new thread pool."""
    def lookup_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith(("spotler-lookup", "spotler-email-lookup"))}

    spotler.lookup_emails([JAN, PIET, ANNA])
    spotler.find_contacts([ContactRef(email=DEMO.emails[k]) for k in ("jan", "piet")])
    first = lookup_threads()
    assert first  # still there after the calls: ready for the next one
    assert spotler.lookup_emails([JAN, PIET, ANNA]) == {i: spotler.find_contact(ContactRef(external_id=i)).email
                                                       for i in (JAN, PIET, ANNA)}
    assert [c.external_id for c in spotler.find_contacts([ContactRef(email=DEMO.emails["jan"])])] == [JAN]
    later = lookup_threads()
    assert first <= later  # the same threads serve the next calls (a pool adds threads up to its size only)
    assert len(later) <= spotler.lookup_threads + min(spotler.email_lookup_threads, spotler.config.pool_maxsize)
