"""Hosted mode's webhook triggers over real sockets: two Piggy accounts of one deployment each get their own
upstream webhook (made with the tenant's stored, sealed credentials: the relay's ManagerSource), each flow receives
only its own account's events, and the DELETE on a Location that comes without the connection's headers works."""

from __future__ import annotations

import uuid

import pytest
import requests

from service.sandbox.launch import SANDBOX_ACCOUNTS
from tests.servers import serve_app
from tests.webhooks.conftest import count, relay_settings, start_platform, wait_for

A = {"X-Platform": "piggy", "X-Platform-Key": SANDBOX_ACCOUNTS["piggy"][0]["token"]}
B = {"X-Platform": "piggy", "X-Platform-Key": SANDBOX_ACCOUNTS["piggy"][1]["token"]}


@pytest.fixture(scope="module")
def piggy():
    running = start_platform("piggy")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def service(piggy, sqlite_db):
    settings = relay_settings("piggy", sqlite_db, piggy.url).with_(
        tenancy="hosted", api_keys=(), sandbox_upstream_url="", sandbox_upstream_urls=(f"piggy={piggy.url}",))
    with serve_app(settings) as (base, app):
        yield base


def _events(sim) -> list[str]:
    return [h["event_type"] for h in sim.webhooks.subs.values()]


def _call(base: str, method: str, path: str, headers: dict, body=None) -> requests.Response:
    return requests.request(method, base + path, json=body, headers=headers, timeout=30)


def test_each_tenant_gets_its_own_upstream_webhook_and_only_its_own_events(service, piggy, flows, sqlite_db):
    sims = {name: piggy.accounts[SANDBOX_ACCOUNTS["piggy"][i]["name"]] for i, name in ((0, "a"), (1, "b"))}
    flow_a, flow_b = flows.new(), flows.new()
    sub_a = _call(service, "POST", "/hooks", A, {"event": "contact_created", "callbackUrl": flow_a["callbackUrl"]})
    sub_b = _call(service, "POST", "/hooks", B, {"event": "contact_created", "callbackUrl": flow_b["callbackUrl"]})
    assert (sub_a.status_code, sub_b.status_code) == (201, 201), sub_a.text + sub_b.text
    assert count(sqlite_db, "webhook_upstreams") == 2 and count(sqlite_db, "tenant_credentials") == 2
    for name in ("a", "b"):
        assert _events(sims[name]) == ["contact_created"]

    email = f"only-b-{uuid.uuid4().hex[:6]}@example.com"
    assert _call(service, "PUT", "/contacts", B, {"contact": {"email": email}}).status_code == 200
    got = wait_for(lambda: flows.got(flow_b), "B's delivery")
    assert got[0]["body"]["data"]["contact"]["email"] == email
    assert flows.got(flow_a) == []  # never another tenant's event

    # Power Automate's DELETE may come without the connection's headers: the Location's token suffices
    assert requests.delete(sub_a.headers["Location"], timeout=30).status_code == 200
    wait_for(lambda: not _events(sims["a"]), "A's upstream webhook removed")
    assert _events(sims["b"]) == ["contact_created"]
    assert requests.delete(sub_b.headers["Location"], headers=B, timeout=30).status_code == 200
    wait_for(lambda: not _events(sims["b"]), "B's upstream webhook removed")


def test_the_reconcile_command_covers_every_tenant_with_its_stored_credentials(service, piggy, flows, sqlite_db):
    """``python -m service.relay reconcile`` in hosted mode: a webhook someone deleted in one tenant's Piggy account
    is made again there, with that tenant's sealed credentials (no request brings them)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    sim_a = piggy.accounts[SANDBOX_ACCOUNTS["piggy"][0]["name"]]
    sub = _call(service, "POST", "/hooks", A, {"event": "contact_created", "callbackUrl": flows.new()["callbackUrl"]})
    assert sub.status_code == 201, sub.text
    [gone] = list(sim_a.webhooks.subs)
    del sim_a.webhooks.subs[gone]  # removed in Piggy's dashboard
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOKI_", "PIGGY_", "SPOTLER_"))}
    env.update(TENANCY="hosted", DATABASE_URL=sqlite_db, SANDBOX_UPSTREAM_URLS=f"piggy={piggy.url}",
               LOG_LEVEL="WARNING", ENV_FILE=os.devnull)
    out = subprocess.run([sys.executable, "-m", "service.relay", "reconcile"], cwd=Path(__file__).parents[2],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == 0 and result["reconciled"] >= 1
    assert _events(sim_a) == ["contact_created"] and gone not in sim_a.webhooks.subs
    assert requests.delete(sub.headers["Location"], headers=A, timeout=30).status_code == 200
