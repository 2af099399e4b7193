"""PiggyProvider against the Piggy simulator over real loopback sockets."""

from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest

from service.providers import errors
from service.providers.base import ContactRef, FieldValue, Provider
from service.providers.piggy import PiggyConfig, PiggyProvider
from service.providers.piggy.config import parse_field_lists, parse_pairs
from service.providers.piggy.provider import TYPE_MAP
from service.sandbox import FaultConfig, SimulatorServer
from service.sandbox.piggy import FakeClock, build, demo

TOKEN = "provider-test-token"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OPERATIONS = [
    "TestConnection", "ListContactFields", "GetContact", "UpsertContact", "SetContactField", "ClearContactField",
    "AnonymizeContact", "ListPermissions", "SetPermissions", "ListAutomations", "GetAutomationFieldsSchema",
    "StartAutomation", "StopAutomation", "StopAutomationRuns", "ListCampaigns", "TriggerCampaign", "StopCampaign",
    "ListTags", "AddTag", "RemoveTag", "SetScore", "ListAudiences", "CreateAudience", "AddToAudience",
    "RemoveFromAudience", "OnContactAdded", "OnContactChanged", "OnContactBounced", "OnContactUnsubscribed",
    "OnMailingInteraction", "ListMailings",
]
#: one contact feed serves the three contact triggers; its NotSupported names OnContactChanged
FEED_OPERATION = {"OnContactAdded": "OnContactChanged", "OnContactUnsubscribed": "OnContactChanged"}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def env(clock):
    sim, app = build(token=TOKEN, clock=clock, token_ttl=600)
    server = SimulatorServer(app).start()
    providers: list[PiggyProvider] = []

    def make(**overrides) -> PiggyProvider:
        kw = {"base_url": server.url, "api_token": TOKEN, "connect_timeout": 1.0, "read_timeout": 2.0,
              "max_retries": 1, "backoff_factor": 0.01, "cache_seconds": 0}
        kw.update(overrides)
        if "client_id" in overrides:
            kw.pop("api_token")
        p = PiggyProvider(PiggyConfig(**kw), clock=clock)
        providers.append(p)
        return p

    yield sim, app, server, make
    app.release_hangs()
    for p in providers:
        p.close()
    server.stop()


@pytest.fixture
def piggy(env):
    return env[3]()


def _contact(provider: PiggyProvider):
    return provider.find_contact(ContactRef(email=demo.DEMO_CONTACT_EMAIL))


# -- connection --------------------------------------------------------------------------------------------


def test_ping_reports_the_auth_mode(piggy):
    assert piggy.ping()["auth"] == "personal_access_token"


def test_wrong_token_is_auth_failed(env):
    with pytest.raises(errors.AuthFailed) as exc:
        env[3](api_token="wrong").ping()
    assert exc.value.upstream_status == 401 and "PIGGY_API_TOKEN" in exc.value.message


def test_refused_connection_is_unavailable(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.Unavailable):
        env[3](base_url=f"http://127.0.0.1:{port}", max_retries=0).ping()


# -- fields and contacts -----------------------------------------------------------------------------------


def test_contact_fields_map_piggy_types(piggy):
    fields = {f.name: f for f in piggy.list_contact_fields()}
    assert {a["name"] for a in demo.attributes()} == set(fields)
    for attr in demo.attributes():
        assert fields[attr["name"]].type == TYPE_MAP[attr["type"]], attr["name"]
    assert fields["gender"].type == "string" and [o.name for o in fields["gender"].options][:2] == ["Male", "Female"]
    assert fields["housenumber"].type == "int" and fields["average_spend"].type == "money"
    assert fields["interests"].type == "set"
    assert [o.value for o in fields["interests"].options] == ["coffee", "cake", "tea"]
    assert fields["email"].read_only and fields["loyalty_card"].read_only and not fields["firstname"].read_only
    assert fields["firstname"].display_name == "First name"


def test_find_contact_by_email_and_uuid(piggy):
    by_email = piggy.find_contact(ContactRef(email="SpongeBob@BikiniBottom.sea"))
    assert by_email.external_id == demo.DEMO_CONTACT_UUID
    assert by_email.properties["firstname"] == "Spongebob"
    assert by_email.extra["subscriptions"][demo.SUBSCRIPTION_FUNCTIONAL_UUID] is True
    by_uuid = piggy.find_contact(ContactRef(external_id=demo.DEMO_CONTACT_UUID))
    assert by_uuid.email == demo.DEMO_CONTACT_EMAIL
    assert piggy.find_contact(ContactRef(email="nobody@example.com")) is None
    assert piggy.find_contact(ContactRef(external_id="00000000-0000-0000-0000-000000000000")) is None
    with pytest.raises(errors.InvalidInput):
        piggy.find_contact(ContactRef())
    with pytest.raises(errors.InvalidInput):
        piggy.find_contact(ContactRef(email="not-an-email"))


def test_upsert_creates_once_and_converts_values(env, piggy):
    sim = env[0]
    props = {"firstname": "Patrick", "housenumber": "12", "average_spend": "12,50", "vip": "yes",
             "birthdate": "17-05-1990", "last_visit_at": "2026-01-02T10:00:00Z", "interests": "Coffee; tea",
             "Favourite shop": "Utrecht"}
    a = piggy.upsert_contact(ContactRef(email="Patrick@Star.sea"), props)
    b = piggy.upsert_contact(ContactRef(email="patrick@star.sea"), {"lastname": "Star"})
    assert a.external_id == b.external_id
    stored = sim.get_contact(a.external_id)["current_values"]
    assert stored["housenumber"] == 12 and stored["average_spend"] == 12.5 and stored["vip"] is True
    assert stored["birthdate"] == "1990-05-17" and stored["last_visit_at"].startswith("2026-01-02T10:00:00")
    assert stored["interests"] == ["coffee", "tea"] and stored["favourite_shop"] == "utr"
    assert stored["lastname"] == "Star" and stored["firstname"] == "Patrick"
    assert sim.state()["counters"]["contacts_created"] == 1


def test_upsert_by_unknown_uuid_is_not_found(piggy):
    with pytest.raises(errors.NotFound):
        piggy.upsert_contact(ContactRef(external_id="00000000-0000-0000-0000-000000000000"), {"firstname": "x"})


def test_upsert_with_purge_clears_writable_attributes_not_given(env, piggy):
    sim = env[0]
    piggy.upsert_contact(ContactRef(email=demo.DEMO_CONTACT_EMAIL), {"firstname": "Bob"}, purge=True)
    values = sim.get_contact(demo.DEMO_CONTACT_UUID)["current_values"]
    assert values == {"email": demo.DEMO_CONTACT_EMAIL, "firstname": "Bob"}


@pytest.mark.parametrize("encoding", ["form", "json"])
def test_update_and_clear_contact_field(env, encoding):
    sim, _, _, make = env
    piggy = make(body_encoding=encoding)
    contact = _contact(piggy)
    updated = piggy.update_contact(contact, {"housenumber": 8, "interests": ["cake", "tea"], "vip": True})
    assert updated.properties["housenumber"] == 8 and updated.properties["interests"] == ["cake", "tea"]
    cleared = piggy.update_contact(updated, {"lastname": None, "interests": None})
    assert "lastname" not in cleared.properties and "interests" not in cleared.properties
    assert sim.get_contact(demo.DEMO_CONTACT_UUID)["current_values"]["vip"] is True


def test_invalid_values_are_refused_before_calling_piggy(env, piggy):
    sim = env[0]
    contact = _contact(piggy)
    before = sim.state()["counters"].get("contact_updates", 0)
    for props, code in (({"housenumber": "1.5"}, "INVALID_FIELD_VALUE"), ({"vip": "maybe"}, "INVALID_FIELD_VALUE"),
                        ({"member_since": "tomorrow"}, "INVALID_FIELD_VALUE"), ({"gender": "robot"}, "INVALID_FIELD_VALUE"),
                        ({"nope": "x"}, "UNKNOWN_FIELD"), ({"created_by_import": "x"}, "FIELD_READ_ONLY"),
                        ({"loyalty_card": "123"}, "FIELD_READ_ONLY")):
        with pytest.raises(errors.InvalidInput) as exc:
            piggy.update_contact(contact, props)
        assert exc.value.code == code, props
    assert sim.state()["counters"].get("contact_updates", 0) == before


def test_piggy_validation_error_becomes_invalid_input_with_its_message(piggy):
    with pytest.raises(errors.InvalidInput) as exc:
        piggy.client.request("PUT", f"contacts/{demo.DEMO_CONTACT_UUID}", body={"attributes": {"ghost": "x"}})
    assert exc.value.upstream_status == 422 and exc.value.error_type == "1003"
    assert "ghost" in exc.value.message and exc.value.details["errors"]


def test_anonymize_deletes_the_contact(env, piggy):
    contact = _contact(piggy)
    piggy.anonymize_contact(contact)
    assert piggy.find_contact(ContactRef(email=demo.DEMO_CONTACT_EMAIL)) is None
    assert env[0].state()["counters"]["contacts_deleted"] == 1
    with pytest.raises(errors.NotFound):
        piggy.anonymize_contact(contact)


# -- permissions -------------------------------------------------------------------------------------------


def test_permissions_are_subscription_types(piggy):
    options = piggy.list_permissions()
    assert [o.value for o in options] == [s["uuid"] for s in demo.subscription_types()]
    contact = _contact(piggy)
    state = piggy.set_permissions(contact, {demo.SUBSCRIPTION_NEWSLETTER_UUID: True, "functional": False})
    assert state == {demo.SUBSCRIPTION_FUNCTIONAL_UUID: False, demo.SUBSCRIPTION_NEWSLETTER_UUID: True,
                     demo.SUBSCRIPTION_PROMOTIONS_UUID: False}
    with pytest.raises(errors.InvalidInput) as exc:
        piggy.set_permissions(contact, {"Carrier pigeon": True})
    assert exc.value.code == "UNKNOWN_PERMISSION"


# -- automations -------------------------------------------------------------------------------------------


def test_list_automations_only_runnable_by_default(env, piggy):
    listed = {a.id: a for a in piggy.list_automations()}
    assert set(listed) == {demo.AUTOMATION_BIRTHDAY_UUID, demo.AUTOMATION_WINBACK_UUID}
    assert listed[demo.AUTOMATION_BIRTHDAY_UUID].status == "ACTIVE"
    assert listed[demo.AUTOMATION_WINBACK_UUID].status == "INACTIVE"
    every = env[3](list_all_automations=True).list_automations()
    assert len(every) == len(demo.automations())


def test_automation_without_uuid_uses_the_configured_mapping(env):
    sim, _, _, make = env
    with sim.lock:
        for a in sim.automations:
            if a["uuid"] == demo.AUTOMATION_BIRTHDAY_UUID:
                del a["uuid"]
    assert demo.AUTOMATION_BIRTHDAY_NAME not in {a.name for a in make().list_automations()}  # no id: not offered
    mapped = make(automation_uuids=((demo.AUTOMATION_BIRTHDAY_NAME, demo.AUTOMATION_BIRTHDAY_UUID),))
    assert demo.AUTOMATION_BIRTHDAY_UUID in {a.id for a in mapped.list_automations()}


def test_automation_fields_come_from_configuration(env, piggy):
    assert not piggy.supports("GetAutomationFieldsSchema")
    assert all(a.fields == () for a in piggy.list_automations())
    configured = env[3](automation_fields=parse_field_lists(f"{demo.AUTOMATION_BIRTHDAY_NAME}=voucher, amount"))
    assert configured.supports("GetAutomationFieldsSchema")
    fields = {a.id: [f.name for f in a.fields] for a in configured.list_automations()}
    assert fields[demo.AUTOMATION_BIRTHDAY_UUID] == ["voucher", "amount"]
    assert "GetAutomationFieldsSchema" in PiggyProvider.unsupported  # the class default is unchanged


def test_start_automation_runs_exactly_once_with_data(env, piggy):
    sim = env[0]
    contact = _contact(piggy)
    result = piggy.start_automation(demo.AUTOMATION_BIRTHDAY_UUID, contact, [
        FieldValue("voucher", "STRING", "XMAS"), FieldValue("products", "PRODUCTLIST", values=("a", "b"))])
    assert result.result == "OK" and [r.automation_id for r in result.runs] == [demo.AUTOMATION_BIRTHDAY_UUID]
    state = sim.state()
    assert state["counters"]["automation_runs"] == 1
    assert state["runs"][0]["data"] == {"voucher": "XMAS", "products": ["a", "b"]}


def test_start_automation_by_configured_name(env):
    piggy = env[3](automation_uuids=(("Birthday", demo.AUTOMATION_BIRTHDAY_UUID),))
    piggy.start_automation("birthday", _contact(piggy), [])
    assert env[0].state()["runs"][0]["automation_uuid"] == demo.AUTOMATION_BIRTHDAY_UUID


@pytest.mark.parametrize("automation", [demo.AUTOMATION_CREDIT_UUID, demo.AUTOMATION_WINBACK_UUID])
def test_non_runnable_automation_is_rejected(env, piggy, automation):
    with pytest.raises(errors.Rejected) as exc:
        piggy.start_automation(automation, _contact(piggy), [])
    assert exc.value.code == "AUTOMATION_NOT_RUNNABLE" and exc.value.error_type == "1003"
    assert env[0].state()["counters"].get("automation_runs", 0) == 0


def test_start_unknown_automation_or_contact_is_not_found(piggy):
    contact = _contact(piggy)
    with pytest.raises(errors.NotFound) as exc:
        piggy.start_automation("00000000-0000-0000-0000-000000000000", contact, [])
    assert exc.value.code == "AUTOMATION_NOT_FOUND" and exc.value.error_type == "60013"
    piggy.anonymize_contact(contact)
    with pytest.raises(errors.NotFound) as exc:
        piggy.start_automation(demo.AUTOMATION_BIRTHDAY_UUID, contact, [])
    assert exc.value.code == "CONTACT_NOT_FOUND" and exc.value.error_type == "55031"


# -- transport: retries, timeouts, statuses ----------------------------------------------------------------


def test_post_is_not_retried_after_reaching_piggy(env, piggy):
    sim, app = env[0], env[1]
    contact = _contact(piggy)
    app.configure(FaultConfig(reset_rate=1.0, reset_phase="after", times=1, path_prefix="/api/v3/oauth/clients/automations/runs"))
    with pytest.raises(errors.OutcomeUnknown) as info:  # applied, answer lost: not safe to repeat
        piggy.start_automation(demo.AUTOMATION_BIRTHDAY_UUID, contact, [])
    assert info.value.in_flight is False  # a reset: the platform is done with it
    assert sim.state()["counters"]["automation_runs"] == 1  # applied once, never replayed
    assert app.stats()["injected"] == {"reset": 1}


def test_idempotent_get_is_retried_on_503(env, piggy):
    app = env[1]
    app.configure(FaultConfig(fail_rate=1.0, fail_status=503, retry_after=0, times=1))
    assert piggy.find_contact(ContactRef(email=demo.DEMO_CONTACT_EMAIL)) is not None
    assert app.stats()["injected"] == {"status_503": 1}


def test_rate_limit_with_long_retry_after_is_returned_not_slept(env, piggy):
    env[1].configure(FaultConfig(fail_rate=1.0, fail_status=429, retry_after=120))
    with pytest.raises(errors.RateLimited) as exc:
        piggy.list_permissions()
    assert exc.value.retry_after == pytest.approx(120, abs=1)


def test_maintenance_mode_is_unavailable(env, piggy):
    env[0].maintenance = True
    with pytest.raises(errors.Unavailable) as exc:
        piggy.ping()
    assert "maintenance" in exc.value.message


def test_read_timeout_is_upstream_timeout(env):
    app, make = env[1], env[3]
    piggy = make(read_timeout=0.3)
    app.configure(FaultConfig(hang_rate=1.0, hang_seconds=5, hang_then="fail", times=1))
    with pytest.raises(errors.UpstreamTimeout):
        piggy.ping()


# -- OAuth client credentials ------------------------------------------------------------------------------


def _oauth(make, **kw) -> PiggyProvider:
    return make(client_id=demo.DEMO_CLIENT_ID, client_secret=demo.DEMO_CLIENT_SECRET, **kw)


def test_client_credentials_token_is_cached_then_renewed_before_expiry(env, clock):
    sim, make = env[0], env[3]
    piggy = _oauth(make)
    assert piggy.ping()["auth"] == "client_credentials"
    piggy.list_permissions()
    assert sim.state()["counters"]["tokens_issued"] == 1
    clock.advance(600 - 29)  # inside the 30 s refresh margin
    piggy.ping()
    counters = sim.state()["counters"]
    assert counters["tokens_issued"] == 2 and counters.get("auth_failures", 0) == 0


def test_revoked_token_is_renewed_once_on_401(env):
    sim, make = env[0], env[3]
    piggy = _oauth(make)
    piggy.ping()
    sim.expire_tokens()
    contact = _contact(piggy)
    assert contact.external_id == demo.DEMO_CONTACT_UUID
    counters = sim.state()["counters"]
    assert counters["tokens_issued"] == 2 and counters["auth_failures"] == 1


def test_a_token_refused_twice_is_auth_failed_without_looping(env):
    sim, make = env[0], env[3]
    sim.token_ttl = 0  # every issued token is already expired
    with pytest.raises(errors.AuthFailed):
        _oauth(make).ping()
    counters = sim.state()["counters"]
    assert counters["tokens_issued"] == 2 and counters["auth_failures"] == 2


def test_wrong_client_secret_is_auth_failed(env):
    with pytest.raises(errors.AuthFailed) as exc:
        env[3](client_id=demo.DEMO_CLIENT_ID, client_secret="wrong").ping()
    assert "PIGGY_CLIENT_SECRET" in exc.value.message


def test_concurrent_calls_share_one_token(env):
    sim, make = env[0], env[3]
    piggy = _oauth(make)
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def call():
        try:
            start.wait(5)
            piggy.ping()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert failures == []
    assert sim.state()["counters"]["tokens_issued"] == 1


# -- capabilities --------------------------------------------------------------------------------------------


def _call(provider: Provider, op: str):
    c = provider.find_contact(ContactRef(email=demo.DEMO_CONTACT_EMAIL))
    calls = {
        "StopAutomation": lambda: provider.stop_automation(demo.AUTOMATION_BIRTHDAY_UUID, c),
        "StopAutomationRuns": lambda: provider.stop_automation_runs(["x"]),
        "ListCampaigns": provider.list_campaigns,
        "TriggerCampaign": lambda: provider.trigger_campaign("t", c, []),
        "StopCampaign": lambda: provider.stop_campaign("c", c),
        "ListTags": provider.list_tags,
        "AddTag": lambda: provider.add_tags(c, ["vip"]),
        "RemoveTag": lambda: provider.remove_tags(c, ["vip"]),
        "SetScore": lambda: provider.set_score(c, "vip", 3),
        "ListAudiences": provider.list_audiences,
        "CreateAudience": lambda: provider.create_audience("a", "A"),
        "AddToAudience": lambda: provider.add_to_audience("a", [c]),
        "RemoveFromAudience": lambda: provider.remove_from_audience("a", [c]),
        "OnContactAdded": lambda: provider.contact_feed(NOW, NOW),
        "OnContactChanged": lambda: provider.contact_feed(NOW, NOW),
        "OnContactUnsubscribed": lambda: provider.contact_feed(NOW, NOW),
        "OnContactBounced": lambda: provider.bounce_feed(NOW, NOW),
        "OnMailingInteraction": lambda: provider.interaction_feed("opened", NOW, NOW),
        "ListMailings": lambda: provider.list_mailings(NOW, NOW),
    }
    return calls[op]()


def test_unsupported_operations_raise_not_supported_with_the_reason(piggy):
    ops = [op for op in PiggyProvider.unsupported if op != "GetAutomationFieldsSchema"]
    assert ops
    for op in ops:
        with pytest.raises(errors.NotSupported) as exc:
            _call(piggy, op)
        assert exc.value.message == PiggyProvider.unsupported[op]
        assert exc.value.details == {"operation": FEED_OPERATION.get(op, op)}


def test_every_operation_is_either_supported_or_explained(piggy):
    assert set(PiggyProvider.unsupported) <= set(OPERATIONS)
    for op in OPERATIONS:
        assert piggy.supports(op) == (op not in PiggyProvider.unsupported)
        if not piggy.supports(op):
            assert PiggyProvider.unsupported[op].endswith(".") and "Piggy" in PiggyProvider.unsupported[op]


def test_config_validation_and_env_parsing():
    with pytest.raises(ValueError):
        PiggyConfig()
    with pytest.raises(ValueError):
        PiggyConfig(client_id="x")
    with pytest.raises(ValueError):
        PiggyConfig(api_token="t", body_encoding="xml")
    cfg = _config_from_env({"PIGGY_API_TOKEN": "t", "PIGGY_READ_TIMEOUT": "7.5", "PIGGY_LIST_ALL_AUTOMATIONS": "1",
                                "PIGGY_AUTOMATION_UUIDS": "A=u1; B=u2", "PIGGY_AUTOMATION_FIELDS": "u1=x,y"})
    assert cfg.read_timeout == 7.5 and cfg.list_all_automations is True
    assert cfg.automation_uuids == (("A", "u1"), ("B", "u2")) and cfg.automation_fields == (("u1", ("x", "y")),)
    secret = PiggyConfig(client_id="cid", client_secret="very-secret-value")
    assert "very-secret-value" not in repr(secret) and "cid" in repr(secret)
    assert "very-secret-token" not in repr(PiggyConfig(api_token="very-secret-token"))
    assert parse_pairs("") == ()
    with pytest.raises(ValueError):
        parse_pairs("no-equals-sign")


def _config_from_env(env):
    """The config exactly as the service builds it from the environment (live mode)."""
    from service.config import Settings
    from service.providers.factory import provider_config

    return provider_config(Settings.from_env({"PROVIDER": "piggy", "API_KEYS": "k" * 16, "LEDGER_HASH_KEY": "h" * 32,
                                               "TRIGGER_STATE_SECRET": "t" * 32, **env}))
