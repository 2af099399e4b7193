"""Reconciliation (Spoki, SQLite): someone deletes our webhook in the platform, or changes its URL and switches it
off - ``python -m service.relay reconcile`` (the worker does the same daily) puts it back, and events flow again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.webhooks.conftest import running_service, start_platform, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spoki_sim():
    running = start_platform("spoki")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def service(sqlite_db, spoki_sim):
    with running_service("spoki", sqlite_db, spoki_sim) as svc:
        yield svc


def relay_command(service, command: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOKI_", "PIGGY_", "SPOTLER_"))}
    env.update(PROVIDER="spoki", DATABASE_URL=service.db, SANDBOX_UPSTREAM_URL=service.sim.url, LOG_LEVEL="WARNING",
               ENV_FILE=os.devnull)
    out = subprocess.run([sys.executable, "-m", "service.relay", command], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_reconcile_recreates_a_deleted_webhook_and_fixes_a_changed_one(service, spoki_sim, flows, api):
    client = api(service)
    created_flow, updated_flow = flows.new(), flows.new()
    assert client.subscribe("contact.created", created_flow).status_code == 201
    assert client.subscribe("contact.updated", updated_flow).status_code == 201
    hooks = spoki_sim.simulator.webhooks.hooks
    created = next(h for h in hooks.values() if h["event"] == "contact.created")
    updated = next(h for h in hooks.values() if h["event"] == "contact.updated")
    ours = updated["url"]
    del hooks[created["id"]]  # someone removed it in Spoki's dashboard ...
    updated.update(url="https://elsewhere.example/hook", is_active=False)  # ... and redirected the other

    assert relay_command(service, "reconcile") == {"reconciled": 2, "failed": 0}
    again = [h for h in hooks.values() if h["event"] == "contact.created"]
    assert len(again) == 1 and again[0]["id"] != created["id"] and again[0]["url"] == created["url"]
    assert (updated["url"], updated["is_active"]) == (ours, True)

    phone = f"+39348{uuid.uuid4().int % 10**7:07d}"
    r = client("PUT", "/contacts", {"contact": {"email": "r@example.it"}, "fields": {"phone": phone}})
    assert r.status_code == 200, r.text
    got = wait_for(lambda: flows.got(created_flow), "an event through the recreated webhook (its new secret)")
    assert got[0]["body"]["data"]["phone"] == phone
    status = relay_command(service, "status")
    assert status["subscriptions"]["active"] >= 2 and status["upstreamWebhooks"]["total"] >= 2
