"""Inbound webhooks over real sockets (SQLite): the signature is checked on the raw bytes; a forged, stale or
missing one is a 401 and nothing is stored; the right one is stored and answered 200; the route token is the only
way in; bodies are capped."""

from __future__ import annotations

import json
import time

import pytest
import requests

from service.providers.webhooks import hmac_hex
from service.sandbox.piggy.webhooks import php_json
from tests.webhooks.conftest import count, running_service, start_platform


@pytest.fixture(scope="module")
def sims():
    running = {p: start_platform(p) for p in ("spoki", "piggy")}
    yield running
    for r in running.values():
        r.stop()


@pytest.fixture(scope="module")
def services(sqlite_db, sims):
    with running_service("spoki", sqlite_db, sims["spoki"]) as spoki, \
            running_service("piggy", sqlite_db, sims["piggy"]) as piggy:
        yield {"spoki": spoki, "piggy": piggy}


def spoki_body(event_uuid: str) -> bytes:
    return json.dumps({"version": 2, "event": "contact.deleted", "event_uuid": event_uuid,
                       "timestamp": time.time(), "data": {"id": 4242}}).encode()


def spoki_headers(secret: str, body: bytes, t: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if t is None else t)
    return {"X-Spoki-Signature": f"t={stamp},v2={hmac_hex(secret, stamp.encode() + b'.' + body)}",
            "X-SPOKI-ACCOUNT": "whoever-claims-to-be-it"}


def test_spoki_forged_stale_or_missing_signatures_store_nothing(services, sims, flows, api):
    service, sim = services["spoki"], sims["spoki"].simulator
    api(service).subscribe("contact.deleted", flows.new())
    hook = next(h for h in sim.webhooks.hooks.values() if h["event"] == "contact.deleted")
    url, secret = hook["url"], hook["secret"]
    body = spoki_body("7d9e1c2a-0000-4000-8000-000000000001")
    forged = {
        "no header": {},
        "wrong secret": spoki_headers("whsec_not-the-secret", body),
        "signature of another body": spoki_headers(secret, body + b" "),
        "stale timestamp": spoki_headers(secret, body, t=int(time.time()) - 301),
        "from the future": spoki_headers(secret, body, t=int(time.time()) + 301),
        "malformed": {"X-Spoki-Signature": "v2=abc"},
        "deprecated V1 hash": {"X-SPOKI-HASH": "pbkdf2_sha256$..."},
    }
    for what, headers in forged.items():
        r = requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=10)
        assert r.status_code == 401 and r.json()["code"] == "WEBHOOK_SIGNATURE_INVALID", (what, r.text)
    assert count(service.db, "webhook_events", platform="spoki", event="contact.deleted") == 0
    good = requests.post(url, data=body, headers={"Content-Type": "application/json",
                                                  **spoki_headers(secret, body)}, timeout=10)
    assert good.status_code == 200 and good.json() == {"received": True, "duplicate": False}
    again = requests.post(url, data=body, headers={"Content-Type": "application/json",
                                                   **spoki_headers(secret, body)}, timeout=10)
    assert again.json() == {"received": True, "duplicate": True}  # the same event_uuid
    assert count(service.db, "webhook_events", platform="spoki", event="contact.deleted") == 1


def test_piggy_signature_is_checked_on_the_raw_bytes(services, sims, flows, api):
    service, sim = services["piggy"], sims["piggy"].simulator
    api(service).subscribe("voucher_redeemed", flows.new())
    sub = next(s for s in sim.webhooks.subs.values() if s["event_type"] == "voucher_redeemed")
    assert sub["secret"]  # we registered our own secret
    body = php_json({"type": "voucher_redeemed", "data": {"voucher": {"code": "A/B-1", "name": "Café"}}})
    assert b"\\/" in body and b"\\u00e9" in body  # escaped like PHP: re-serialising would change the bytes
    reserialised = json.dumps(json.loads(body)).encode()
    for headers in ({}, {"Signature": "0" * 64}, {"Signature": hmac_hex(sub["secret"], reserialised)},
                    {"Signature": hmac_hex("another secret", body)}):
        r = requests.post(sub["url"], data=body, headers=headers, timeout=10)
        assert r.status_code == 401, (headers, r.text)
    assert count(service.db, "webhook_events", platform="piggy", event="voucher_redeemed") == 0
    r = requests.post(sub["url"], data=body, headers={"signature": hmac_hex(sub["secret"], body).upper()},
                      timeout=10)
    assert r.status_code == 200, r.text
    assert count(service.db, "webhook_events", platform="piggy", event="voucher_redeemed") == 1


def test_only_the_route_token_finds_a_webhook_and_bodies_are_capped(services, sims, flows, api):
    service, sim = services["spoki"], sims["spoki"].simulator
    api(service).subscribe("message.inbound", flows.new())
    hook = next(h for h in sim.webhooks.hooks.values() if h["event"] == "message.inbound")
    body = spoki_body("7d9e1c2a-0000-4000-8000-000000000002")
    headers = {"Content-Type": "application/json", **spoki_headers(hook["secret"], body)}
    unknown = hook["url"].rsplit("/", 1)[0] + "/" + "A" * 43
    r = requests.post(unknown, data=body, headers=headers, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "WEBHOOK_NOT_FOUND"
    # the other platform's service does not know Spoki's token either (a route belongs to one platform)
    other = services["piggy"].base + "/hooks/inbound/" + hook["url"].rsplit("/", 1)[1]
    assert requests.post(other, data=body, headers=headers, timeout=10).status_code == 404
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    r = requests.post(hook["url"], data=big, headers={"Content-Type": "application/json",
                                                      **spoki_headers(hook["secret"], big)}, timeout=10)
    assert r.status_code == 413
    assert count(service.db, "webhook_events", platform="spoki", event="message.inbound") == 0


def test_no_secret_reaches_the_log_or_the_database_in_clear(services, sims, flows, api, caplog):
    """The callback's signature, the route token, the Location's token and the webhook secret are nowhere in
    the log lines of a whole subscription's life, and not in clear in the database."""
    import logging

    import sqlalchemy as sa

    from service.actions.storage import create_engine
    from tests.webhooks.conftest import wait_for

    caplog.set_level(logging.DEBUG)
    service, sim = services["spoki"], sims["spoki"].simulator
    client = api(service)
    flow = flows.new()
    r = client.subscribe("contact_list.created", flow)
    hook = next(h for h in sim.webhooks.hooks.values() if h["event"] == "contact_list.created")
    body = json.dumps({"version": 2, "event": "contact_list.created", "event_uuid": "5e1f", "timestamp": time.time(),
                       "data": {"contact": {"id": 1, "email": "hidden.person@example.it"}}}).encode()
    requests.post(hook["url"], data=body, headers=spoki_headers(hook["secret"], body), timeout=10)
    wait_for(lambda: flows.got(flow), "the delivery")
    client.unsubscribe(r.headers["Location"])
    secrets = {"callback signature": flow["callbackUrl"].rsplit("sig=", 1)[1],
               "route token": hook["url"].rsplit("/", 1)[1],
               "location token": r.headers["Location"].rsplit("t=", 1)[1], "webhook secret": hook["secret"],
               "personal data": "hidden.person"}
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)  # messages and their extras
    assert "/hooks/inbound/***" in logged
    engine = create_engine(service.db, pool_size=1)
    try:
        with engine.connect() as conn:
            dump = " ".join(str(tuple(row)) for t in ("webhook_upstreams", "webhook_subscriptions", "webhook_events",
                                                      "webhook_deliveries")
                            for row in conn.execute(sa.text(f"SELECT * FROM {t}")))
    finally:
        engine.dispose()
    for what, value in secrets.items():
        assert value not in logged, f"the {what} is in the log"
        assert value not in dump, f"the {what} is in the database in clear"
