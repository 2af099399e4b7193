"""Subscribing and ending (SQLite, real sockets): a repeated subscription is the same one; the Location's token is
the key to its DELETE; a subscription the platform cannot take is not kept; the dropdown and the typed outputs;
Spotler points to its polling triggers."""

from __future__ import annotations

import pytest
import requests

from service.sandbox.piggy import demo as piggy_demo
from tests.api.support import assert_problem
from tests.conftest import API_KEY
from tests.webhooks.conftest import count, running_service, start_platform


@pytest.fixture(scope="module")
def sims():
    running = {p: start_platform(p) for p in ("spoki", "piggy")}
    yield running
    for r in running.values():
        r.stop()


@pytest.fixture(scope="module")
def spoki(sqlite_db, sims):
    with running_service("spoki", sqlite_db, sims["spoki"]) as svc:
        yield svc


@pytest.fixture(scope="module")
def piggy(sqlite_db, sims):
    with running_service("piggy", sqlite_db, sims["piggy"]) as svc:
        yield svc


def test_a_repeated_subscription_is_the_same_one(spoki, flows, api):
    client = api(spoki)
    flow = flows.new()
    first = client.subscribe("contact_list.created", flow)
    again = client.subscribe("contact_list.created", flow)  # Power Automate retrying its registration
    assert first.status_code == again.status_code == 201
    assert first.headers["Location"] == again.headers["Location"]
    assert count(spoki.db, "webhook_subscriptions", id=first.json()["id"], status="active") == 1
    other = client.subscribe("contact_list.deleted", flow)  # same callback, another event: another one
    assert other.json()["id"] != first.json()["id"]


def test_only_the_location_token_ends_a_subscription(spoki, flows, api):
    client = api(spoki)
    r = client.subscribe("contact.deleted", flows.new())
    sub, location = r.json()["id"], r.headers["Location"]
    base = location.split("?", 1)[0]
    for url in (base, base + "?t=wrong", base.replace(sub, sub[:-1] + ("X" if sub[-1] != "X" else "Y")) + "?" + location.split("?", 1)[1]):
        d = requests.delete(url, timeout=10)
        assert d.status_code == 200 and d.json()["status"] == "deleted"  # reveals nothing
    assert count(spoki.db, "webhook_subscriptions", id=sub, status="active") == 1
    assert requests.delete(location, timeout=10).json() == {"id": sub, "status": "deleted"}
    assert count(spoki.db, "webhook_subscriptions", id=sub, status="deleted") == 1
    assert requests.delete(location, headers={"X-API-Key": API_KEY}, timeout=10).status_code == 200


def test_a_subscription_the_platform_cannot_take_is_not_kept(spoki, piggy, sims, flows, api):
    client = api(spoki)
    sims["spoki"].simulator.throttle(5, retry_after=30)  # Spoki answers 429 (longer than we wait) to the webhook's creation
    r = client.subscribe("message.outbound", flows.new())
    assert r.status_code == 503 and r.headers["Retry-After"] == "30", r.text
    assert count(spoki.db, "webhook_subscriptions", event="message.outbound", status="active") == 0
    sims["spoki"].simulator.throttle(0)
    assert client.subscribe("message.outbound", flows.new()).status_code == 201  # Power Automate's retry
    bad = api(piggy).subscribe("contact_updated", flows.new(), attributes="no_such_attribute")
    assert_problem(bad, 400, bad.json()["code"])
    assert "no_such_attribute" in bad.json()["detail"]
    assert count(piggy.db, "webhook_subscriptions", event="contact_updated", status="active") == 0
    assert not [s for s in sims["piggy"].simulator.webhooks.subs.values() if s["event_type"] == "contact_updated"]


def test_bad_subscriptions_are_400s(spoki, flows, api):
    client = api(spoki)
    url = flows.new()["callbackUrl"]
    assert_problem(client("POST", "/hooks", {"event": "contact_created", "callbackUrl": url}), 400, "UNKNOWN_EVENT")
    assert_problem(client("POST", "/hooks", {"event": "contact.created", "callbackUrl": url,
                                             "filter": {"tag": "vip"}}), 400, "FILTER_NOT_SUPPORTED")
    assert_problem(client("POST", "/hooks", {"event": "contact.created"}), 400, "VALIDATION_FAILED")
    ok = client.subscribe("contact_tag.created", flows.new(), tag="VIP")
    assert ok.status_code == 201 and ok.json()["filter"] == {"tag": "VIP"}


def test_the_event_dropdown_and_the_typed_outputs(spoki, piggy, api):
    events = api(piggy)("GET", "/hooks/events").json()["value"]
    assert len(events) == 13 and {"name": "contact_updated", "label": "Contact updated", "filter": "attributes",
                                  "description": events[1]["description"]} in events
    schema = api(piggy)("GET", "/hooks/events/voucher_redeemed/schema").json()["schema"]
    assert set(schema["properties"]) == {"eventId", "event", "platform", "occurredAt", "data"}
    voucher = schema["properties"]["data"]["properties"]["voucher"]["properties"]
    assert voucher["code"]["x-ms-summary"] == "Voucher code"
    spoki_events = {e["name"] for e in api(spoki)("GET", "/hooks/events").json()["value"]}
    assert {"contact.created", "contact_tag.created", "message.inbound", "message.outbound"} <= spoki_events
    assert_problem(api(spoki)("GET", "/hooks/events/nope/schema"), 400, "UNKNOWN_EVENT")
    assert piggy_demo.DEMO_WEBHOOK_SECRET  # the account secret the simulator signs with when asked


def test_spotler_has_no_webhooks_and_says_which_triggers_to_use(client, auth):
    r = client.post("/hooks", json={"event": "x", "callbackUrl": "https://prod-1.westeurope.logic.azure.com/w"},
                    headers=auth)
    body = assert_problem(r, 400, "NOT_SUPPORTED_BY_PLATFORM")
    assert "When a new contact is added" in body["detail"]
    assert_problem(client.get("/hooks/events", headers=auth), 400, "NOT_SUPPORTED_BY_PLATFORM")
    assert client.delete("/hooks/hook_x?t=y").status_code == 200
