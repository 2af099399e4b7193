"""The benchmarks' floor with every ledger guarantee (bench/floor_proxy.py, ``FLOOR_GUARANTEES=all``) does what it
claims to cost: the record sealed, masked and fenced, the unsafe mark before the call, replays from the seal."""

from __future__ import annotations

import importlib
import json
import sqlite3

import pytest

from service.sandbox.launch import start_in_process
from service.sandbox.spotler import DEMO


@pytest.fixture
def floor(tmp_path, monkeypatch):
    running = start_in_process("spotler")
    monkeypatch.setenv("BASELINE_UPSTREAM_URL", running.url)
    monkeypatch.setenv("FLOOR_DB", str(tmp_path / "floor.db"))
    monkeypatch.setenv("FLOOR_GUARANTEES", "all")
    import bench.baseline_proxy
    import bench.floor_proxy

    importlib.reload(bench.baseline_proxy)  # the upstream URL is read at import
    module = importlib.reload(bench.floor_proxy)
    try:
        yield module
    finally:
        running.stop()
        monkeypatch.delenv("FLOOR_GUARANTEES")
        importlib.reload(bench.floor_proxy)


def test_the_floor_with_every_guarantee_seals_masks_fences_and_replays(floor, tmp_path):
    client = floor.app.test_client()
    body = {"contact": {"email": "ann.floor@example.com"}, "fields": {"voucher": "SECRET-1"}}
    path = f"/automations/{DEMO.automations['welcome']}/start"
    first = client.post(path, json=body, headers={"Idempotency-Key": "floor-1"})
    assert first.status_code < 500, first.get_data(as_text=True)
    replay = client.post(path, json=body, headers={"Idempotency-Key": "floor-1"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json() == first.get_json()

    conn = sqlite3.connect(tmp_path / "floor.db")
    conn.row_factory = sqlite3.Row
    [row] = conn.execute("SELECT * FROM jobs").fetchall()
    stored = json.dumps(dict(row))
    assert "ann.floor" not in stored and "SECRET-1" not in stored and row["email_masked"] == "a***@example.com"
    assert row["status"] == "Completed" and row["payload"] is None and row["lease_expires"] is None
    assert json.loads(row["unsafe_call"]) == {"call": "trigger_automation"}
    assert floor.unseal(row["id"], row["answer"]) == first.get_json()
