"""Deliveries to the Power Automate callback simulator over real sockets (Spoki, SQLite): a failure is retried
and then delivered once; a gone flow orphans its subscription; a schedule that runs out gives up; a callback
host that is not allowed is refused and never contacted, not even through a redirect."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.webhooks.conftest import count, running_service, start_platform, wait_for


@pytest.fixture(scope="module")
def spoki_sim():
    running = start_platform("spoki")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def service(sqlite_db, spoki_sim):
    with running_service("spoki", sqlite_db, spoki_sim) as svc:
        yield svc


def new_contact(client) -> None:
    r = client("PUT", "/contacts", {"contact": {"email": f"d{uuid.uuid4().hex[:8]}@example.it"},
                                    "fields": {"phone": f"+39347{uuid.uuid4().int % 10**7:07d}"}})
    assert r.status_code == 200, r.text


def delivery_of(service, sub_id: str) -> dict:
    import sqlalchemy as sa

    from service.actions.storage import create_engine

    engine = create_engine(service.db, pool_size=1)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT status, attempts, last_status FROM webhook_deliveries WHERE "
                                       "subscription_id = :s ORDER BY id DESC"), {"s": sub_id}).first()
            sub = conn.execute(sa.text("SELECT status FROM webhook_subscriptions WHERE id = :s"), {"s": sub_id}).first()
    finally:
        engine.dispose()
    return {"delivery": dict(row._mapping) if row else None, "subscription": sub.status if sub else None}


def deliveries_counted(service) -> dict[str, float]:
    """GET /metrics: the webhook deliveries by outcome."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(service.base + "/metrics", timeout=10).text
    return {s.labels["outcome"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "marketing_actions_webhook_deliveries_total"}


def test_a_failed_delivery_is_retried_and_then_delivered_once(service, flows, api):
    client = api(service)
    before = deliveries_counted(service)
    flow = flows.new([500, 202])
    sub = client.subscribe("contact.created", flow).json()["id"]
    new_contact(client)
    wait_for(lambda: (delivery_of(service, sub)["delivery"] or {}).get("status") == "delivered", "the delivery")
    got = flows.got(flow)
    assert [g["answer"] for g in got] == [500, 202]
    assert got[0]["body"]["eventId"] == got[1]["body"]["eventId"]
    assert delivery_of(service, sub)["delivery"] == {"status": "delivered", "attempts": 2, "last_status": 202}
    after = deliveries_counted(service)  # each attempt counted by its outcome in /metrics
    assert after.get("retry", 0) - before.get("retry", 0) >= 1
    assert after.get("delivered", 0) - before.get("delivered", 0) >= 1


@pytest.mark.parametrize("answer, status", [(404, 404), ("WorkflowTriggerIsNotEnabled", 400), (410, 410),
                                            ("DirectApiInvalidAuthorizationSignature", 401)])
def test_a_flow_that_is_gone_orphans_its_subscription(service, spoki_sim, flows, api, answer, status):
    client = api(service)
    flow = flows.new([answer])
    sub = client.subscribe("contact.created", flow).json()["id"]
    new_contact(client)
    wait_for(lambda: delivery_of(service, sub)["subscription"] == "orphaned", "the orphaned subscription")
    assert delivery_of(service, sub)["delivery"] == {"status": "failed", "attempts": 1, "last_status": status}
    # its last flow gone, the platform's webhook goes too: nothing more is sent anywhere
    hooks = spoki_sim.simulator.webhooks.hooks.values()
    wait_for(lambda: not [h for h in hooks if h["event"] == "contact.created"], "the upstream webhook removed")
    new_contact(client)
    assert count(service.db, "webhook_deliveries", subscription_id=sub) == 1
    assert len(flows.got(flow)) == 1


def test_a_delivery_is_given_up_when_the_schedule_runs_out(service, flows, api):
    client = api(service)
    flow = flows.new([503, 503, 503, 202])  # RETRIES allows 3 attempts in all
    sub = client.subscribe("contact.created", flow).json()["id"]
    new_contact(client)
    # the delivery is marked failed, then (a second transaction) the subscription orphaned: wait for both
    wait_for(lambda: delivery_of(service, sub)["subscription"] == "orphaned", "giving up")
    assert delivery_of(service, sub) == {"delivery": {"status": "failed", "attempts": 3, "last_status": 503},
                                         "subscription": "orphaned"}  # it never accepted anything
    assert [g["answer"] for g in flows.got(flow)] == [503, 503, 503]


@pytest.fixture
def listener():
    """A socket on 127.0.0.2 (loopback, but not an allowed callback host) that would queue any connection."""
    sock = socket.socket()
    sock.bind(("127.0.0.2", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def connections(sock: socket.socket) -> int:
    n = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return n
        conn.close()
        n += 1


@pytest.mark.parametrize("template", ["http://127.0.0.2:{port}/workflows/x/triggers/manual/paths/invoke?sig=s",
                                      "https://127.0.0.2:{port}/workflows/x",
                                      "https://prod-01.westeurope.logic.azure.com.evil.example:{port}/x",
                                      "http://prod-01.westeurope.logic.azure.com:{port}/x",
                                      "https://user:pw@localhost:{port}/x"])
def test_a_callback_host_that_is_not_allowed_is_refused_and_never_contacted(service, listener, api, template):
    client = api(service)
    url = template.format(port=listener.getsockname()[1])
    r = client("POST", "/hooks", {"event": "contact.created", "callbackUrl": url})
    assert r.status_code == 400 and r.json()["code"] == "CALLBACK_URL_NOT_ALLOWED", r.text
    assert r.json()["field"] == "callbackUrl" and "sig=" not in r.text
    assert count(service.db, "webhook_subscriptions", callback_hint="127.0.0.2/workflows/x") == 0
    assert connections(listener) == 0


def test_a_redirect_is_never_followed(service, listener, flows, api):
    client = api(service)
    target = f"http://127.0.0.2:{listener.getsockname()[1]}/elsewhere"
    flow = flows.new([{"status": 302, "location": target}, 202])
    sub = client.subscribe("contact.created", flow).json()["id"]
    new_contact(client)
    wait_for(lambda: (delivery_of(service, sub)["delivery"] or {}).get("status") == "delivered", "the delivery")
    assert [g["answer"] for g in flows.got(flow)] == [{"status": 302, "location": target}, 202]
    assert connections(listener) == 0
