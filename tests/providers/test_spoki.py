"""SpokiProvider against the Spoki simulator over real loopback sockets."""

from __future__ import annotations

import datetime as dt

import pytest

from service import privacy
from service.providers import errors
from service.providers.base import ContactRef, FieldValue
from service.providers.spoki import SpokiConfig, SpokiProvider
from service.sandbox import FaultConfig, SimulatorServer
from service.sandbox.spoki import build, demo

KEY = "provider-test-key"
OPERATIONS = [
    "TestConnection", "ListContactFields", "GetContact", "UpsertContact", "SetContactField", "ClearContactField",
    "AnonymizeContact", "ListPermissions", "SetPermissions", "ListAutomations", "GetAutomationFieldsSchema",
    "StartAutomation", "StopAutomation", "StopAutomationRuns", "ListCampaigns", "TriggerCampaign", "StopCampaign",
    "ListTags", "AddTag", "RemoveTag", "SetScore", "ListAudiences", "CreateAudience", "AddToAudience",
    "RemoveFromAudience", "OnContactAdded", "OnContactChanged", "OnContactBounced", "OnContactUnsubscribed",
    "OnMailingInteraction", "ListMailings",
]
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def env():
    sim, app = build(api_key=KEY, page_size=2)  # small pages: every list call walks ``next``
    server = SimulatorServer(app).start()
    providers: list[SpokiProvider] = []

    def make(**overrides) -> SpokiProvider:
        kw = {"base_url": server.url, "api_key": KEY, "connect_timeout": 1.0, "read_timeout": 2.0,
              "max_retries": 1, "backoff_factor": 0.01, "cache_seconds": 0}
        kw.update(overrides)
        p = SpokiProvider(SpokiConfig(**kw))
        providers.append(p)
        return p

    yield sim, app, server, make
    app.release_hangs()
    for p in providers:
        p.close()
    server.stop()


@pytest.fixture
def spoki(env):
    return env[3]()


def _mario(p: SpokiProvider):
    return p.find_contact(ContactRef(external_id=str(demo.CONTACT_MARIO_ID)))


def _giulia(p: SpokiProvider):
    return p.find_contact(ContactRef(external_id=str(demo.CONTACT_GIULIA_ID)))


# -- connection ----------------------------------------------------------------------------------------------


def test_ping(spoki):
    assert spoki.ping()["platform"] == "spoki"


def test_wrong_api_key_is_auth_failed(env):
    with pytest.raises(errors.AuthFailed) as exc:
        env[3](api_key="wrong").ping()
    assert exc.value.upstream_status == 401 and "SPOKI_API_KEY" in exc.value.message


def test_forbidden_for_plan_is_forbidden(env):
    env[1].configure(FaultConfig(fail_rate=1.0, fail_status=403, times=1))
    env[1].error_body = {"detail": "Your plan does not include API access."}
    with pytest.raises(errors.Forbidden):
        env[3]().ping()


# -- fields and contacts ---------------------------------------------------------------------------------------


def test_contact_fields_include_standard_and_paged_custom_fields(spoki):
    fields = {f.name: f for f in spoki.list_contact_fields()}
    assert {"phone", "first_name", "last_name", "email", "language"} <= set(fields)
    assert {f["code"] for f in demo.custom_fields()} <= set(fields)  # 4 custom fields over 2 pages
    assert (fields["ORDER_ID"].type, fields["BIRTHDAY"].type, fields["APPOINTMENT_AT"].type) == \
        ("string", "date", "dateTime")
    assert fields["phone"].type == "mobNr" and fields["email"].type == "email"
    assert fields["ORDER_ID"].display_name == "Order id"


def test_find_contact_by_id_phone_and_email(spoki):
    mario = _mario(spoki)
    assert mario.email == demo.CONTACT_MARIO_EMAIL
    assert mario.properties["ORDER_ID"] == "42" and mario.properties["phone"] == demo.CONTACT_MARIO_PHONE
    assert mario.extra["list_ids"] == [str(demo.LIST_CUSTOMERS_ID)] and mario.extra["tags"] == ["VIP"]
    assert spoki.find_contact(ContactRef(external_id="+39 333 123 4567")).external_id == str(demo.CONTACT_MARIO_ID)
    assert spoki.find_contact(ContactRef(email=demo.CONTACT_GIULIA_EMAIL)).external_id == str(demo.CONTACT_GIULIA_ID)
    assert spoki.find_contact(ContactRef(external_id="999999")) is None
    assert spoki.find_contact(ContactRef(email="nobody@example.it")) is None
    assert spoki.find_contact(ContactRef(external_id="+390000000000")) is None


def test_shared_email_is_ambiguous(spoki):
    with pytest.raises(errors.InvalidInput) as exc:
        spoki.find_contact(ContactRef(email=demo.SHARED_EMAIL))
    assert exc.value.code == "AMBIGUOUS_CONTACT"
    masked = privacy.mask_email(demo.SHARED_EMAIL)
    assert sorted(exc.value.details["candidates"], key=lambda c: c["externalId"]) == [
        {"externalId": str(demo.CONTACT_VERDI_A_ID), "email": masked},
        {"externalId": str(demo.CONTACT_VERDI_B_ID), "email": masked}]
    assert demo.SHARED_EMAIL not in exc.value.message


def test_bad_references_are_invalid_input(spoki):
    for ref in (ContactRef(), ContactRef(external_id="abc"), ContactRef(external_id="+12"), ContactRef(email="x")):
        with pytest.raises(errors.InvalidInput):
            spoki.find_contact(ref)


def test_upsert_creates_by_phone_once(env, spoki):
    sim = env[0]
    a = spoki.upsert_contact(ContactRef(email="nina@example.it"),
                             {"phone": "+39 340 111 2222", "first_name": "Nina", "BIRTHDAY": "17/05/1990"})
    b = spoki.upsert_contact(ContactRef(email="nina@example.it"), {"last_name": "Neri"})
    assert a.external_id == b.external_id
    stored = sim.contact(int(a.external_id))
    assert stored["phone"] == "+393401112222" and stored["email"] == "nina@example.it"
    assert (stored["first_name"], stored["last_name"]) == ("Nina", "Neri")
    assert stored["custom"] == {demo.FIELD_BIRTHDAY: "1990-05-17"}
    assert sim.state()["counters"]["contacts_created"] == 1


def test_upsert_without_phone_cannot_create(env, spoki):
    with pytest.raises(errors.InvalidInput) as exc:
        spoki.upsert_contact(ContactRef(email="new@example.it"), {"first_name": "X"})
    assert exc.value.code == "PHONE_REQUIRED"
    assert env[0].state()["counters"].get("contacts_created", 0) == 0


def test_upsert_by_phone_reference_and_unknown_id(env, spoki):
    created = spoki.upsert_contact(ContactRef(external_id="+393409990000"), {"CITY": "Bari"})
    assert env[0].contact(int(created.external_id))["custom"] == {demo.FIELD_CITY: "Bari"}
    with pytest.raises(errors.NotFound):
        spoki.upsert_contact(ContactRef(external_id="999999"), {"CITY": "Bari"})


def test_upsert_with_purge_clears_custom_fields_not_given(env, spoki):
    spoki.upsert_contact(ContactRef(external_id=str(demo.CONTACT_MARIO_ID)), {"CITY": "Torino"}, purge=True)
    stored = env[0].contact(demo.CONTACT_MARIO_ID)
    assert stored["custom"] == {demo.FIELD_CITY: "Torino"}
    assert stored["first_name"] == "" and stored["phone"] == demo.CONTACT_MARIO_PHONE


def test_set_and_clear_fields(env, spoki):
    mario = _mario(spoki)
    updated = spoki.update_contact(mario, {"Appointment": "2026-03-01T09:30:00+01:00", "city": "Napoli",
                                           "first_name": "Marietto"})
    assert updated.properties["CITY"] == "Napoli" and updated.properties["first_name"] == "Marietto"
    assert updated.properties["APPOINTMENT_AT"].startswith("2026-03-01T09:30:00")
    cleared = spoki.update_contact(updated, {"ORDER_ID": None})
    assert "ORDER_ID" not in cleared.properties
    assert demo.FIELD_ORDER_ID not in env[0].contact(demo.CONTACT_MARIO_ID)["custom"]


def test_invalid_field_values_are_refused_locally(env, spoki):
    mario = _mario(spoki)
    for props, code in (({"BIRTHDAY": "someday"}, "INVALID_FIELD_VALUE"), ({"NOPE": "1"}, "UNKNOWN_FIELD"),
                        ({"email": "not-mail"}, "INVALID_FIELD_VALUE"), ({"phone": "12"}, "INVALID_FIELD_VALUE")):
        with pytest.raises(errors.InvalidInput) as exc:
            spoki.update_contact(mario, props)
        assert exc.value.code == code
    assert env[0].state()["counters"].get("contacts_updated", 0) == 0


def test_spoki_field_errors_become_invalid_input(spoki):
    with pytest.raises(errors.InvalidInput) as exc:
        spoki.client.request("POST", "contacts/sync/", body={"first_name": "x"})
    assert exc.value.upstream_status == 400
    assert "phone: This field is required." in exc.value.message
    assert exc.value.details["errors"] == {"phone": ["This field is required."]}


def test_anonymize_deletes(env, spoki):
    giulia = _giulia(spoki)
    spoki.anonymize_contact(giulia)
    assert env[0].contact(demo.CONTACT_GIULIA_ID) is None
    with pytest.raises(errors.NotFound):
        spoki.anonymize_contact(giulia)


# -- permissions -------------------------------------------------------------------------------------------------


def test_marketing_consent_is_the_permission(env, spoki):
    assert [o.value for o in spoki.list_permissions()] == ["marketing"]
    giulia = _giulia(spoki)
    assert spoki.set_permissions(giulia, {"marketing": True}) == {"marketing": True}
    assert env[0].contact(demo.CONTACT_GIULIA_ID)["status"] == "Subscribed"
    assert spoki.set_permissions(giulia, {"WhatsApp marketing consent": False}) == {"marketing": False}
    assert env[0].contact(demo.CONTACT_GIULIA_ID)["status"] == "Unsubscribed"
    with pytest.raises(errors.InvalidInput):
        spoki.set_permissions(giulia, {"sms": True})


# -- automations ---------------------------------------------------------------------------------------------------


def test_list_automations_with_api_start_step_and_fields(spoki):
    automations = {a.id: a for a in spoki.list_automations()}
    assert set(automations) == {str(demo.AUTOMATION_ORDER_ID), str(demo.AUTOMATION_TAG_VIP_ID),
                                str(demo.AUTOMATION_SUMMER_ID)}
    assert [f.name for f in automations[str(demo.AUTOMATION_ORDER_ID)].fields] == ["ORDER_ID"]
    assert automations[str(demo.AUTOMATION_SUMMER_ID)].status == "INACTIVE"
    assert "secret" not in repr(automations)  # the start step's secret never leaves the provider


def test_unfiltered_list_still_skips_automations_without_api_start_step(env):
    ids = {a.id for a in env[3](automation_filter="", automation_fields_lookup=False).list_automations()}
    assert str(demo.AUTOMATION_WELCOME_ID) not in ids and str(demo.AUTOMATION_ORDER_ID) in ids


def test_start_automation_once_through_its_start_step(env, spoki):
    sim = env[0]
    giulia = _giulia(spoki)
    result = spoki.start_automation(str(demo.AUTOMATION_TAG_VIP_ID), giulia, [
        FieldValue("ORDER_ID", "STRING", "A-1"), FieldValue("FIRST_NAME", "STRING", "Giuly"),
        FieldValue("CITY", "STRING", values=("Roma", "Milano"))])
    assert result.result == "OK" and result.runs[0].automation_id == str(demo.AUTOMATION_TAG_VIP_ID)
    state = sim.state()
    assert state["counters"]["automation_runs"] == 1
    run = state["runs"][0]
    assert run["api_key_sent"] is False and run["phone"] == demo.CONTACT_GIULIA_PHONE
    assert run["payload"]["first_name"] == "Giuly"
    assert run["custom_fields"] == {"ORDER_ID": "A-1", "CITY": "Roma, Milano"}
    assert demo.TAG_VIP_ID in sim.contact(demo.CONTACT_GIULIA_ID)["tags"]


@pytest.mark.parametrize(("automation", "code"), [(demo.AUTOMATION_SUMMER_ID, "AUTOMATION_INACTIVE"),
                                                  (demo.AUTOMATION_WELCOME_ID, "AUTOMATION_NOT_API_TRIGGERED")])
def test_start_refused_automations_are_rejected(env, spoki, automation, code):
    with pytest.raises(errors.Rejected) as exc:
        spoki.start_automation(str(automation), _giulia(spoki), [])
    assert exc.value.code == code
    assert env[0].state()["counters"].get("automation_runs", 0) == 0


def test_start_unknown_automation_is_not_found(spoki):
    with pytest.raises(errors.NotFound) as exc:
        spoki.start_automation("777", _giulia(spoki), [])
    assert exc.value.code == "AUTOMATION_NOT_FOUND"
    with pytest.raises(errors.InvalidInput):
        spoki.start_automation("order", _giulia(spoki), [])


def test_start_step_refusing_the_secret_is_rejected(env, spoki):
    env[1].configure(FaultConfig(fail_rate=1.0, fail_status=403, path_prefix="/wh/ap/"))
    with pytest.raises(errors.Rejected) as exc:
        spoki.start_automation(str(demo.AUTOMATION_ORDER_ID), _giulia(spoki), [])
    assert exc.value.code == "START_STEP_REFUSED"


def test_start_is_not_retried_after_reaching_spoki(env, spoki):
    sim, app = env[0], env[1]
    giulia = _giulia(spoki)
    app.configure(FaultConfig(reset_rate=1.0, reset_phase="after", times=1, path_prefix="/wh/ap/"))
    with pytest.raises(errors.OutcomeUnknown):  # applied, answer lost: not safe to repeat
        spoki.start_automation(str(demo.AUTOMATION_ORDER_ID), giulia, [])
    assert sim.state()["counters"]["automation_runs"] == 1  # applied once, never replayed
    app.configure(FaultConfig(fail_rate=1.0, fail_status=503, retry_after=0, times=1, path_prefix="/wh/ap/"))
    with pytest.raises(errors.Unavailable) as refused:  # a 503 refuses: not applied, safe to retry later
        spoki.start_automation(str(demo.AUTOMATION_ORDER_ID), giulia, [])
    assert not isinstance(refused.value, errors.OutcomeUnknown)
    assert sim.state()["counters"]["automation_runs"] == 1


# -- tags and audiences -------------------------------------------------------------------------------------------


def test_list_tags(spoki):
    assert [t.name for t in spoki.list_tags()] == [t["name"] for t in demo.tags()]


def test_audiences_are_lists(env, spoki):
    assert {(a.id, a.name) for a in spoki.list_audiences()} == {(str(x["id"]), x["name"]) for x in demo.lists()}
    created = spoki.create_audience("ignored-id", "Black Friday")
    again = spoki.create_audience("ignored-id", "black friday")
    assert created == again and env[0].state()["counters"]["lists_created"] == 1
    assert created.id in {a.id for a in spoki.list_audiences()}


def test_add_and_remove_audience_members_with_per_contact_results(env, spoki):
    sim = env[0]
    lid = str(demo.LIST_CUSTOMERS_ID)
    mario, giulia = _mario(spoki), _giulia(spoki)
    added = spoki.add_to_audience(lid, [mario, giulia])
    assert [(r.external_id, r.result) for r in added] == [(mario.external_id, "already_member"),
                                                         (giulia.external_id, "added")]
    assert demo.LIST_CUSTOMERS_ID in sim.contact(demo.CONTACT_GIULIA_ID)["lists"]
    giulia = _giulia(spoki)
    verdi = spoki.find_contact(ContactRef(external_id=str(demo.CONTACT_VERDI_A_ID)))
    removed = spoki.remove_from_audience(lid, [giulia, verdi])
    assert [r.result for r in removed] == ["removed", "not_member"]
    assert demo.LIST_CUSTOMERS_ID not in sim.contact(demo.CONTACT_GIULIA_ID)["lists"]
    assert demo.LIST_CUSTOMERS_ID in sim.contact(demo.CONTACT_MARIO_ID)["lists"]


@pytest.mark.parametrize("key", ["phones", "emails"])
def test_remove_from_audience_with_other_body_keys(env, key):
    spoki = env[3](list_remove_key=key)
    results = spoki.remove_from_audience(str(demo.LIST_CUSTOMERS_ID), [_mario(spoki)])
    assert [r.result for r in results] == ["removed"]
    assert env[0].contact(demo.CONTACT_MARIO_ID)["lists"] == []


def test_unknown_audience_is_not_found(spoki):
    with pytest.raises(errors.NotFound) as exc:
        spoki.add_to_audience("999", [_mario(spoki)])
    assert exc.value.code == "AUDIENCE_NOT_FOUND"
    with pytest.raises(errors.InvalidInput):
        spoki.add_to_audience("customers", [_mario(spoki)])


# -- transport ----------------------------------------------------------------------------------------------------


def test_throttled_get_is_retried_when_retry_after_is_short(env, spoki):
    env[0].throttle(1, retry_after=0)
    assert spoki.list_tags()
    assert env[0].throttle_count == 0


def test_throttled_with_long_retry_after_is_rate_limited(env, spoki):
    env[0].throttle(5, retry_after=60)
    with pytest.raises(errors.RateLimited) as exc:
        spoki.list_tags()
    assert exc.value.retry_after == 60


def test_throttled_post_is_not_retried(env, spoki):
    env[1].configure(FaultConfig(fail_rate=1.0, fail_status=429, retry_after=0, times=1, methods=["POST"]))
    with pytest.raises(errors.RateLimited):
        spoki.upsert_contact(ContactRef(external_id="+393409990001"), {})
    assert env[0].state()["counters"].get("contacts_created", 0) == 0
    assert env[1].stats()["injected"] == {"status_429": 1}


def test_server_error_and_timeout(env):
    app, make = env[1], env[3]
    app.configure(FaultConfig(fail_rate=1.0, fail_status=500))
    with pytest.raises(errors.Unavailable):
        make(max_retries=0).ping()
    app.configure(FaultConfig(hang_rate=1.0, hang_seconds=5, hang_then="fail", times=1))
    with pytest.raises(errors.UpstreamTimeout):
        make(read_timeout=0.3).ping()


# -- capabilities -------------------------------------------------------------------------------------------------


def test_unsupported_operations_raise_not_supported_with_the_reason(spoki):
    c = _mario(spoki)
    calls = {
        "StopAutomation": lambda: spoki.stop_automation("501", c),
        "StopAutomationRuns": lambda: spoki.stop_automation_runs(["x"]),
        "ListCampaigns": spoki.list_campaigns,
        "TriggerCampaign": lambda: spoki.trigger_campaign("t", c, []),
        "StopCampaign": lambda: spoki.stop_campaign("c", c),
        "AddTag": lambda: spoki.add_tags(c, ["VIP"]),
        "RemoveTag": lambda: spoki.remove_tags(c, ["VIP"]),
        "SetScore": lambda: spoki.set_score(c, "VIP", 1),
        "OnContactAdded": lambda: spoki.contact_feed(NOW, NOW),
        "OnContactChanged": lambda: spoki.contact_feed(NOW, NOW),
        "OnContactUnsubscribed": lambda: spoki.contact_feed(NOW, NOW),
        "OnContactBounced": lambda: spoki.bounce_feed(NOW, NOW),
        "OnMailingInteraction": lambda: spoki.interaction_feed("clicked", NOW, NOW),
        "ListMailings": lambda: spoki.list_mailings(NOW, NOW),
    }
    assert set(calls) == set(SpokiProvider.unsupported)
    for op, call in calls.items():
        with pytest.raises(errors.NotSupported) as exc:
            call()
        assert exc.value.message == SpokiProvider.unsupported[op]


def test_every_operation_is_either_supported_or_explained(spoki):
    assert set(SpokiProvider.unsupported) <= set(OPERATIONS)
    for op in OPERATIONS:
        assert spoki.supports(op) == (op not in SpokiProvider.unsupported)


def test_config_validation_and_env():
    with pytest.raises(ValueError):
        SpokiConfig(api_key="")
    with pytest.raises(ValueError):
        SpokiConfig(api_key="k", list_remove_key="contacts")
    cfg = _config_from_env({"SPOKI_API_KEY": "very-secret-key", "SPOKI_MAX_PAGES": "3",
                                "SPOKI_AUTOMATION_FIELDS_LOOKUP": "false", "SPOKI_BASE_URL": "https://app.spoki.it"})
    assert cfg.max_pages == 3 and cfg.automation_fields_lookup is False and cfg.base_url == "https://app.spoki.it"
    assert "very-secret-key" not in repr(cfg)


def _config_from_env(env):
    """The config exactly as the service builds it from the environment (live mode)."""
    from service.config import Settings
    from service.providers.factory import provider_config

    return provider_config(Settings.from_env({"PROVIDER": "spoki", "API_KEYS": "k" * 16, "LEDGER_HASH_KEY": "h" * 32,
                                               "TRIGGER_STATE_SECRET": "t" * 32, **env}))
