"""kill -9 of a gunicorn worker in the middle of a run of write actions: after the lease and the recovery
command nothing is InProgress, every answered call has exactly one record, a 200's jobId is Completed, no side
effect happened twice and replaying the interrupted calls changes nothing (bench/crash.py at CI size)."""

from __future__ import annotations

from bench import crash


def test_worker_killed_mid_run_leaves_a_consistent_ledger():
    report = crash.run(calls=160, concurrency=16, latency_ms=300, kill_after=1.5, lease=5)
    assert crash.problems(report) == [], crash.markdown(report)
    assert report["in_progress_after_recover"] == 0
    assert report["calls_hit_by_kill"] >= 1
    assert report["killed_pid"] not in report["workers_after"]  # gunicorn replaced the worker
