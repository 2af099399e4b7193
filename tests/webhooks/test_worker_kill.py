"""A delivery worker killed with SIGKILL in the middle of a delivery (its callback had the request, no answer
came back): once its claim's lease ends, another worker process delivers the event, and the row ends delivered
once - on SQLite and PostgreSQL.

Honest about the window: the flow did see the first request (Power Automate would have started a run for it),
so the event reached it twice, with the same ``eventId``. That is the at-least-once promise; a crash between a
2xx and the row being marked delivered repeats the same way. The test proves the repeat carries the same id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.actions.storage import create_engine, ensure_schema
from service.actions.webhooks import SINGLE_SCOPE, build_relay, inbound
from service.providers.factory import build_provider, webhook_manager
from service.providers.webhooks import hmac_hex
from tests.webhooks.conftest import relay_settings, start_platform, wait_for

ROOT = Path(__file__).resolve().parents[2]
CALLBACK_TIMEOUT = 1.0  # the lease of a claim is connect (1 s) + read (1 s) + 2 s


@pytest.fixture(scope="module")
def spoki_sim():
    running = start_platform("spoki")
    yield running
    running.stop()


def worker(db: str, sim_url: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOKI_", "PIGGY_", "SPOTLER_"))}
    env.update(PROVIDER="spoki", DATABASE_URL=db, SANDBOX_UPSTREAM_URL=sim_url, ENV_FILE=os.devnull,
               WEBHOOK_CALLBACK_TIMEOUT=str(CALLBACK_TIMEOUT), WEBHOOK_RETRY_SCHEDULE="0.2,0.4", LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "service.relay", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def delivery(engine) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, attempts, lease_owner FROM webhook_deliveries")).first()
    return dict(row._mapping) if row else None


def test_a_worker_killed_mid_delivery_is_replaced_and_the_event_delivered_once(db, spoki_sim, flows):
    settings = relay_settings("spoki", db, spoki_sim.url, webhook_callback_timeout=CALLBACK_TIMEOUT)
    engine = create_engine(db, pool_size=2)
    ensure_schema(engine)
    provider = build_provider(settings, sandbox_url=spoki_sim.url)
    # this process subscribes and takes the webhook in, with the relay's own code; it runs no worker
    relay = build_relay(settings, engine, lambda: webhook_manager(relay.deps.format, provider))
    flow = flows.new(["hang", 202])
    sub, _ = relay.subscribe(scope=SINGLE_SCOPE, caller=None, event="contact.deleted",
                             callback_url=flow["callbackUrl"], filter_=None, inbound_base="http://127.0.0.1:9")
    hook = next(h for h in spoki_sim.simulator.webhooks.hooks.values() if h["event"] == "contact.deleted")
    body = json.dumps({"version": 2, "event": "contact.deleted", "event_uuid": os.urandom(8).hex(),
                       "timestamp": time.time(), "data": {"id": 77}}).encode()
    t = str(int(time.time()))
    headers = {"X-Spoki-Signature": f"t={t},v2={hmac_hex(hook['secret'], t.encode() + b'.' + body)}"}
    assert inbound.receive(relay.deps, hook["url"].rsplit("/", 1)[1], headers, body).deliveries == 1

    victim = worker(db, spoki_sim.url)
    survivor = None
    try:
        wait_for(lambda: flows.got(flow), "the first worker's request at the callback", timeout=30)
        assert delivery(engine)["lease_owner"].endswith(f":{victim.pid}")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        survivor = worker(db, spoki_sim.url)
        done = wait_for(lambda: (delivery(engine) or {}).get("status") == "delivered" and delivery(engine),
                        "the other worker's delivery", timeout=30)
        assert done["attempts"] == 2 and done["lease_owner"] is None
        got = flows.got(flow)
        assert [g["answer"] for g in got] == ["hang", 202]
        assert got[0]["body"]["eventId"] == got[1]["body"]["eventId"]  # the repeat is recognisable
    finally:
        flows.sim.release(flow["id"])
        for proc in (victim, survivor):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
        relay.unsubscribe(sub.id, sub.token, scope=SINGLE_SCOPE)
        relay.close()
        provider.close()
        engine.dispose()
