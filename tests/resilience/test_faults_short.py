"""Upstream faults (429/503/500, hangs, resets before and after the side effect) while mixed write actions run,
retried the way Power Automate retries: no 500, transient problems carry Retry-After, one ledger record per
logical call, no unexplained duplicate side effect. The service runs as the Procfile starts it (bench/faults.py
at CI size)."""

from __future__ import annotations

from bench import faults


def test_mixed_writes_survive_upstream_faults():
    report = faults.run(calls=120, concurrency=12, fault_rate=0.2, retry_cap=0.2)
    assert faults.problems(report) == [], faults.markdown(report)
    # the run really exercised the faults and every operation
    assert len(report["faults_injected"]) >= 4, report["faults_injected"]
    assert any(k.startswith(("503", "504")) for k in report["attempt_statuses"]), report["attempt_statuses"]
    assert set(report["per_operation"]) == set(faults.OPERATIONS)
    assert report["ledger_records"] == report["logical_calls"] == 120
