"""The relay's rules, piece by piece: allowed callback hosts, what a callback's answer means, the retry schedule
and Retry-After, filters, signature details, the settings, retention on a moved clock, and the migration."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from service.actions.storage import create_engine
from service.actions.webhooks import SINGLE_SCOPE, build_relay, relay_settings
from service.actions.webhooks.callbacks import CallbackAnswer, CallbackRefused, HostPolicy
from service.actions.webhooks.delivery import DONE, ORPHAN, REFUSED, RETRY, classify
from service.actions.webhooks.deps import RelaySettings
from service.actions.webhooks.inbound import passes
from service.actions.webhooks.model import ORPHANED
from service.actions.webhooks.subscriptions import end, normalise_filter
from service.config import ConfigError, Settings
from service.providers.factory import build_provider, webhook_manager
from service.providers.piggy.webhooks import EVENTS as PIGGY_EVENTS
from service.providers.spoki.webhooks import SpokiWebhookFormat
from service.providers.webhooks import Inbound, SignatureError, hmac_hex
from tests.webhooks.conftest import count, start_platform


def test_only_allowed_hosts_pass():
    policy = HostPolicy()
    assert policy.check("https://prod-27.westeurope.logic.azure.com:443/workflows/1/triggers/manual/paths/invoke"
                        "?api-version=2016-06-01&sig=x") == ("prod-27.westeurope.logic.azure.com",
                                                             "/workflows/1/triggers/manual/paths/invoke")
    assert policy.allows("prod-1.usgovvirginia.logic.azure.us") and policy.allows("x.chinaeast2.logic.azure.cn")
    for url in ("https://logic.azure.com/x", "https://evil-logic.azure.com/x", "https://x.logic.azure.com.evil.cn/",
                "http://prod-1.logic.azure.com/x", "ftp://prod-1.logic.azure.com/x", "https://127.0.0.1/x",
                "https://u:p@prod-1.logic.azure.com/x", "", "https://prod-1.logic.azure.com:99999/x", "x" * 5000):
        with pytest.raises(CallbackRefused):
            policy.check(url)
    loopback = HostPolicy(("*.logic.azure.com", "127.0.0.1", "localhost"))
    assert loopback.check("http://127.0.0.1:8099/workflows/demo")[0] == "127.0.0.1"


@pytest.mark.parametrize("answer, outcome", [
    (CallbackAnswer(202), DONE), (CallbackAnswer(200), DONE),
    (CallbackAnswer(400, code="WorkflowTriggerIsNotEnabled"), ORPHAN), (CallbackAnswer(404), ORPHAN),
    (CallbackAnswer(410), ORPHAN), (CallbackAnswer(401), ORPHAN),
    (CallbackAnswer(500), RETRY), (CallbackAnswer(503), RETRY), (CallbackAnswer(429), RETRY),
    (CallbackAnswer(408), RETRY), (CallbackAnswer(0, error="ConnectTimeout"), RETRY), (CallbackAnswer(302), RETRY),
    (CallbackAnswer(400, code="InvalidTemplate"), REFUSED), (CallbackAnswer(403), REFUSED),
    (CallbackAnswer(0, code="CALLBACK_NOT_ALLOWED"), REFUSED),
])
def test_what_a_callback_answer_means(answer, outcome):
    assert classify(answer) == outcome


def test_the_retry_schedule_and_retry_after():
    rs = RelaySettings(retry_schedule=(5, 300))
    assert 5 <= rs.retry_delay(1, None) <= 5.5 and 300 <= rs.retry_delay(2, None) <= 330
    assert rs.retry_delay(3, None) is None  # given up after the schedule
    assert 60 <= rs.retry_delay(1, 60) <= 66  # a longer Retry-After wins ...
    assert rs.retry_delay(2, 1) >= 300  # ... a shorter one does not shorten the schedule
    assert rs.retry_delay(1, 10**9) <= 86400 * 1.1  # capped at a day
    assert RelaySettings().retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)


def test_filters_are_normalised_and_applied():
    updated = next(e for e in PIGGY_EVENTS if e.name == "contact_updated")
    assert normalise_filter(updated, {"attributes": " lastname;firstname;;lastname "}) == \
        {"attributes": ["firstname", "lastname"]}
    assert normalise_filter(updated, {"attributes": ""}) == {} == normalise_filter(updated, None)
    event = Inbound("contact_updated", {}, changed=("zipcode",))
    assert passes({"attributes": ["zipcode", "city"]}, event) and not passes({"attributes": ["firstname"]}, event)
    assert passes({"attributes": ["firstname"]}, Inbound("contact_updated", {}))  # Piggy did not say: deliver
    assert passes({"tag": "VIP"}, Inbound("contact_tag.created", {}, tags=("vip", "12")))
    assert not passes({"tag": "gold"}, Inbound("contact_tag.created", {}, tags=("vip",)))


def test_spoki_signatures_accept_any_listed_v2_within_the_window():
    fmt = SpokiWebhookFormat()
    body, now = b'{"event":"contact.created"}', time.time()
    t = str(int(now))
    good = hmac_hex("whsec_a", t.encode() + b"." + body)
    fmt.verify({"X-Spoki-Signature": f"t={t},v2=deadbeef,v2={good}"}, body, ("whsec_a",), now)  # rotation
    fmt.verify({"X-Spoki-Signature": f"t={t},v2={good.upper()}"}, body, ("whsec_b", "whsec_a"), now + 299)
    for headers, secrets, at in (({"X-Spoki-Signature": f"t={t},v2={good}"}, ("whsec_a",), now + 301),
                                 ({"X-Spoki-Signature": f"t={t},v2={good}"}, (), now),
                                 ({"X-Spoki-Signature": f"t=soon,v2={good}"}, ("whsec_a",), now)):
        with pytest.raises(SignatureError):
            fmt.verify(headers, body, secrets, at)


def test_settings_of_the_relay():
    s = Settings.from_env({"WEBHOOK_RETRY_SCHEDULE": "1, 2.5", "CALLBACK_ALLOWED_HOSTS": "*.logic.azure.com",
                           "WEBHOOK_PUBLIC_URL": "https://actions.example.com/", "WEBHOOK_CALLBACK_TIMEOUT": "10"})
    assert (s.webhook_retry_schedule, s.webhook_public_url) == ((1.0, 2.5), "https://actions.example.com")
    sandbox = relay_settings(s.with_(provider="spoki"))
    assert sandbox.allowed_hosts == ("*.logic.azure.com", "127.0.0.1", "localhost")  # sandbox: the simulator
    live = relay_settings(s.with_(provider="spoki", platform_env={"SPOKI_API_KEY": "k"}))
    assert live.allowed_hosts == ("*.logic.azure.com",) and live.public_url == "https://actions.example.com"
    assert relay_settings(Settings(public_host="actions.example.com")).public_url == "https://actions.example.com"
    for env in ({"WEBHOOK_RETRY_SCHEDULE": "5,soon"}, {"WEBHOOK_RETRY_SCHEDULE": "0"},
                {"CALLBACK_ALLOWED_HOSTS": "https://x"}, {"WEBHOOK_PUBLIC_URL": "ftp://x"}):
        with pytest.raises(ConfigError) as exc:
            Settings.from_env(env)
        assert next(iter(env)) in str(exc.value)


def test_ended_subscriptions_go_after_seven_days(sqlite_url, flows):
    """Orphans (and deleted ones) are kept for the record, then removed; the clock is moved, not waited for."""
    from service.actions.storage import upgrade
    from service.actions.webhooks.worker import RelayWorker

    upgrade(sqlite_url)
    sim = start_platform("spoki")
    engine = create_engine(sqlite_url)
    settings = Settings(provider="spoki", database_url=sqlite_url, sandbox_upstream_url=sim.url)
    provider = build_provider(settings, sandbox_url=sim.url)
    relay = build_relay(settings, engine, lambda: webhook_manager(relay.deps.format, provider))
    try:
        sub, _ = relay.subscribe(scope=SINGLE_SCOPE, caller=None, event="contact.created", filter_=None,
                                 callback_url=flows.new()["callbackUrl"], inbound_base="http://127.0.0.1:9")
        assert end(relay.deps, sub.id, ORPHANED, reason="test") is not None
        later = relay.deps.now() + timedelta(days=6)
        RelayWorker(dataclasses.replace(relay.deps, clock=lambda: later)).maintenance()
        assert count(sqlite_url, "webhook_subscriptions", id=sub.id) == 1
        later += timedelta(days=2)
        RelayWorker(dataclasses.replace(relay.deps, clock=lambda: later)).maintenance()
        assert count(sqlite_url, "webhook_subscriptions", id=sub.id) == 0
    finally:
        provider.close()
        engine.dispose()
        sim.stop()


def test_the_migration_creates_what_the_model_declares(db_url):
    """0005_webhooks and service/actions/webhooks/model.py agree (columns, types, indexes), on both backends."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from service.actions.ledger import Base

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    ours = [d for d in diff if "webhook_" in repr(d)]
    assert ours == []
    with create_engine(db_url).connect() as conn:
        assert {"webhook_upstreams", "webhook_subscriptions", "webhook_events", "webhook_deliveries"} <= \
            set(sa.inspect(conn).get_table_names())
