"""Exactly once through the whole stack, on SQLite and on PostgreSQL: concurrent and sequential repeats of one
logical StartAutomation cause one trigger at the Spotler simulator (counted there), and every repeat gets the
first attempt's answer."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from service.sandbox.spotler import DEMO
from tests.conftest import API_KEY

WELCOME = DEMO.automations["welcome"]


def test_concurrent_and_sequential_repeats_trigger_once(make_client, settings, empty_db_url, spotler_sim, sim):
    client = make_client(settings.with_(database_url=empty_db_url, sandbox_upstream_url=spotler_sim.url))
    headers = {"X-API-Key": API_KEY, "Idempotency-Key": uuid.uuid4().hex}
    body = {"contact": {"email": DEMO.emails["jan"]}, "fieldsText": "voucherCode=ONCE"}
    sim.faults.configure(latency_ms=150)  # keep the first call in flight while the others arrive
    try:
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: client.post(f"/automations/{WELCOME}/start", json=body,
                                                          headers=headers), range(20)))
    finally:
        sim.faults.configure(latency_ms=0)
    ok = [a for a in answers if a.status_code == 200]
    # the repeats waited for the first attempt and got its answer: never a 409 (Power Automate does not retry it)
    assert len(ok) == 20, [a.text for a in answers]
    assert len({a.text for a in ok}) == 1  # every success is the same answer
    for _ in range(20):
        again = client.post(f"/automations/{WELCOME}/start", json=body, headers=headers)
        assert again.status_code == 200 and again.json() == ok[0].json()
        assert again.headers["idempotent-replayed"] == "true"
    assert sim.stats()["triggers"] == 1
    changed = client.post(f"/automations/{WELCOME}/start", json={**body, "fieldsText": "voucherCode=OTHER"},
                          headers=headers)
    assert changed.status_code == 422 and changed.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    jobs = client.get("/jobs", params={"operation": "StartAutomation"}, headers={"X-API-Key": API_KEY}).json()
    assert [j["jobId"] for j in jobs["value"]] == [ok[0].json()["jobId"]]  # one record for the logical call
