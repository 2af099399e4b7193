"""The relay end to end over real sockets, on SQLite and PostgreSQL: a flow subscribes (POST /hooks), our own
UpsertContact changes the platform simulator's state, the simulator fires its signed webhook to the service, the
service delivers it to the Power Automate callback simulator - once, also when the platform repeats it; two
flows share one upstream webhook; DELETE on the Location stops deliveries and the last one removes the
platform's webhook."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.sandbox.piggy import demo as piggy_demo
from service.sandbox.spoki import demo as spoki_demo
from tests.webhooks.conftest import count, running_service, start_platform, wait_for

CREATED = {"spoki": "contact.created", "piggy": "contact_created"}


@pytest.fixture(scope="module")
def spoki_sim():
    running = start_platform("spoki")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def piggy_sim():
    running = start_platform("piggy")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def spoki_service(db, spoki_sim):
    with running_service("spoki", db, spoki_sim) as service:
        yield service


@pytest.fixture(scope="module")
def piggy_service(db, piggy_sim):
    with running_service("piggy", db, piggy_sim) as service:
        yield service


def new_contact(client, platform: str) -> str:
    """Create a contact through our own UpsertContact; its externalId."""
    if platform == "spoki":
        body = {"contact": {"email": f"c{uuid.uuid4().hex[:8]}@example.it"},
                "fields": {"phone": f"+39333{uuid.uuid4().int % 10**7:07d}"}}
    else:
        body = {"contact": {"email": f"member-{uuid.uuid4().hex[:8]}@example.com"}}
    r = client("PUT", "/contacts", body)
    assert r.status_code == 200 and r.json()["contact"]["created"] is True, r.text
    return r.json()["contact"]["externalId"]


def external_id(platform: str, data: dict) -> str:
    return str(data["id"]) if platform == "spoki" else data["contact"]["uuid"]


@pytest.mark.parametrize("platform", ["spoki", "piggy"])
def test_an_event_reaches_the_flow_once_also_when_the_platform_repeats_it(spoki_service, piggy_service, platform,
                                                                         flows, api):
    service = {"spoki": spoki_service, "piggy": piggy_service}[platform]
    client = api(service)
    flow = flows.new()
    r = client.subscribe(CREATED[platform], flow)
    assert r.status_code == 201, r.text
    assert r.headers["Location"].startswith(service.base + "/hooks/hook_") and "?t=" in r.headers["Location"]
    assert r.json() == {"id": r.json()["id"], "event": CREATED[platform], "status": "active"}

    created = new_contact(client, platform)
    got = wait_for(lambda: flows.got(flow), "the delivery to the flow")
    body = got[0]["body"]
    assert set(body) == {"eventId", "event", "platform", "occurredAt", "data"}
    assert (body["event"], body["platform"], external_id(platform, body["data"])) == \
        (CREATED[platform], platform, created)
    assert body["eventId"].startswith("evt_") and got[0]["webhookId"] == body["eventId"]

    # the platform sends the very same webhook again (it missed our answer): answered 200, not delivered again
    sender = service.sim.simulator.webhooks.sender
    assert sender.redeliver(1) == 1
    repeat = wait_for(lambda: [s for s in sender.sent() if s.get("repeat_of") is not None and s["status"]],
                      "the platform's repeat to be answered")
    assert repeat[-1]["status"] == 200
    assert count(service.db, "webhook_deliveries", event_id=body["eventId"]) == 1
    assert count(service.db, "webhook_deliveries", event_id=body["eventId"], status="delivered") == 1
    assert len(flows.got(flow)) == 1


def test_two_flows_share_one_upstream_webhook_and_delete_stops_deliveries(spoki_service, spoki_sim, flows, api):
    service, sim = spoki_service, spoki_sim.simulator
    client = api(service)
    first, second = flows.new(), flows.new()
    created_before = sim.counters["webhooks_created"]
    with ThreadPoolExecutor(2) as pool:  # both at once: one webhook at the platform all the same
        r1, r2 = pool.map(lambda f: client.subscribe("contact.updated", f), (first, second))
    assert (r1.status_code, r2.status_code) == (201, 201)
    hooks = [h for h in sim.webhooks.hooks.values() if h["event"] == "contact.updated"]
    assert len(hooks) == 1 and sim.counters["webhooks_created"] == created_before + 1

    def change(name: str) -> None:
        r = client("PUT", "/contacts", {"contact": {"externalId": str(spoki_demo.CONTACT_GIULIA_ID)},
                                        "fields": {"first_name": f"{name} {uuid.uuid4().hex[:6]}"}})
        assert r.status_code == 200, r.text

    change("Giulia A")
    a = wait_for(lambda: flows.got(first), "the first flow's delivery")
    b = wait_for(lambda: flows.got(second), "the second flow's delivery")
    assert a[0]["body"]["eventId"] == b[0]["body"]["eventId"]  # one event, two deliveries
    assert a[0]["body"]["data"]["first_name"].startswith("Giulia A")

    assert client.unsubscribe(r1.headers["Location"]).status_code == 200
    assert len([h for h in sim.webhooks.hooks.values() if h["event"] == "contact.updated"]) == 1  # still used
    change("Giulia B")
    wait_for(lambda: len(flows.got(second)) == 2, "the second flow's next delivery")
    first_id = r1.json()["id"]
    assert count(service.db, "webhook_deliveries", subscription_id=first_id) == 1
    assert len(flows.got(first)) == 1

    assert client.unsubscribe(r2.headers["Location"]).status_code == 200
    assert [h for h in sim.webhooks.hooks.values() if h["event"] == "contact.updated"] == []  # the last flow went
    assert sim.counters["webhooks_deleted"] >= 1
    assert client.unsubscribe(r2.headers["Location"]).status_code == 200  # a repeat is fine
    sent = len(sim.webhooks.sender.sent())
    change("Giulia C")
    assert sim.webhooks.sender.pending() == 0 and len(sim.webhooks.sender.sent()) == sent  # nothing fired
    assert len(flows.got(second)) == 2


def test_piggy_contact_updated_watches_the_union_of_the_flows_attributes(piggy_service, piggy_sim, flows, api):
    service, sim = piggy_service, piggy_sim.simulator
    client = api(service)
    names, cities = flows.new(), flows.new()
    r1 = client.subscribe("contact_updated", names, attributes="firstname;lastname")
    r2 = client.subscribe("contact_updated", cities, attributes="zipcode")
    assert (r1.status_code, r2.status_code) == (201, 201), (r1.text, r2.text)
    assert r1.json()["filter"] == {"attributes": "firstname;lastname"}
    subs = [s for s in sim.webhooks.subs.values() if s["event_type"] == "contact_updated"]
    assert len(subs) == 1 and subs[0]["attributes"] == ["firstname", "lastname", "zipcode"]

    r = client("POST", "/contacts/fields", {"contact": {"email": piggy_demo.DEMO_CONTACT_EMAIL},
                                            "field": "zipcode", "value": f"35{uuid.uuid4().int % 100:02d}AB"})
    assert r.status_code == 200, r.text
    got = wait_for(lambda: flows.got(cities), "the zipcode change")
    assert got[0]["body"]["data"]["changed_attributes"] == ["zipcode"]
    assert count(service.db, "webhook_deliveries", subscription_id=r1.json()["id"]) == 0  # not its attribute

    assert client.unsubscribe(r2.headers["Location"]).status_code == 200
    subs = [s for s in sim.webhooks.subs.values() if s["event_type"] == "contact_updated"]
    assert subs[0]["attributes"] == ["firstname", "lastname"]  # narrowed to what is still watched
    assert client("POST", "/hooks", {"event": "contact_updated", "callbackUrl": flows.new()["callbackUrl"],
                                     "filter": {"tag": "vip"}}).status_code == 400
