"""Crash recovery: ``kill -9`` one gunicorn worker in the middle of a run of write actions.

    .venv/bin/python -m bench.crash [--calls 400] [--concurrency 16] [--latency-ms 300] [--kill-after 2]

The simulator (bench/simulator.py, no faults, ``--latency-ms`` per upstream request so that calls are in
flight) and the service as the Procfile starts it (2 workers, ``JOB_LEASE_SECONDS=5``). Callers behave like
Power Automate (same Idempotency-Key on every retry; retry on 408/429/5xx and on a broken connection; follow a
202's Location until it stops answering 202; any other 4xx is final). ``--kill-after`` seconds into the run one
worker gets SIGKILL; gunicorn starts a new one.

The service recovers by itself: a repeat of a call the dead worker held gets 503 + Retry-After (never 409) until
a surviving worker's job runner claims the expired job and resumes it (no call that is not safe to repeat was
sent) or settles it (OUTCOME_UNKNOWN; SetScore by read-back). After the run the bench waits (bounded) until
nothing is InProgress, runs ``python -m service.db recover`` (for a service that is down; here it finds
nothing), then the checks of :func:`problems`:

* no job lost: no record is left InProgress, every logical call that got an HTTP answer has exactly one record,
  a 200's jobId is a Completed record;
* no job doubled: no second record, no side effect twice (runs per voucherCode, score increments per tag);
* no 409 REQUEST_IN_PROGRESS, no 500;
* replaying every call that did not end in 200 answers its recorded answer (200, or 409 OUTCOME_UNKNOWN) and
  changes nothing upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter, defaultdict
from typing import Any

import httpx

from bench.processes import API_KEY, PYTHON, ROOT, Stack, clean_env
from bench.report import machine_info, md_table
from bench.faults import Logical, drive, expected_key, ledger_rows, make_call


#: given to the service and to the recover command alike, as a live deployment must (without it the sandbox
#: service and ``python -m service.db`` fall back to different development keys: see bench/RESULTS.md)
LEDGER_KEY = "bench-ledger-hash-key-0123456789abcdef"


def busiest_worker(server) -> int:
    """The worker holding the most client connections (keep-alive connections may all sit on one worker)."""
    port = server.base_url.rsplit(":", 1)[1]
    try:
        out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):  # no iproute2: any worker
        out = ""
    counts = Counter(int(p) for p in re.findall(r"pid=(\d+)", out))
    workers = server.worker_pids()
    return max(workers, key=lambda p: counts.get(p, 0))


def recover(db_path: str) -> str:
    out = subprocess.run([PYTHON, "-m", "service.db", "recover"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=clean_env(DATABASE_URL=f"sqlite:///{db_path}", LEDGER_HASH_KEY=LEDGER_KEY))
    if out.returncode != 0:
        raise RuntimeError(f"service.db recover failed: {out.stderr[-2000:]}")
    return (out.stdout + out.stderr).strip()


def run(calls: int = 400, concurrency: int = 16, latency_ms: float = 300, kill_after: float = 2.0,
        lease: int = 5, stack: Stack | None = None) -> dict:
    own = stack is None
    st = stack or Stack()
    try:
        sim = st.sim(module="bench.simulator", latency_ms=latency_ms, args=["--fault-rate", "0"])
        svc = st.service(upstream_url=sim.url, JOB_LEASE_SECONDS=lease, LOG_LEVEL="WARNING",
                         LEDGER_HASH_KEY=LEDGER_KEY, IN_PROGRESS_WAIT_SECONDS=2)
        db_path = str(svc.log_path.parent / "ledger.db")
        logical = [make_call(i, "crash") for i in range(calls)]
        victim: dict[str, Any] = {}

        async def scenario() -> None:
            async def killer() -> None:
                await asyncio.sleep(kill_after)
                pid = busiest_worker(svc)
                victim.update(pid=pid, at=time.time())
                os.kill(pid, signal.SIGKILL)

            await asyncio.gather(drive(svc.base_url, logical, concurrency, retry_cap=0.5, timeout=30.0), killer())

        t0 = time.perf_counter()
        asyncio.run(scenario())
        elapsed = time.perf_counter() - t0
        # the service resumes or settles what the dead worker held once its lease expired: wait for that
        deadline = time.time() + lease + 60
        while any(r["status"] == "InProgress" for r in ledger_rows(db_path)) and time.time() < deadline:
            time.sleep(0.5)
        report_wait = round(time.time() - victim["at"], 1)
        recovered = recover(db_path)
        rows = ledger_rows(db_path)
        report = analyse(logical, rows)
        report["examples_500"] = [a.get("body") for c in logical for a in c.attempts if a.get("status") == 500][:3]
        if report["examples_500"]:
            report["service_log_errors"] = [line[:2000] for line in svc.log_tail(200_000).splitlines()
                                            if '"ERROR"' in line or "Traceback" in line][:5]
        # replay every call whose final answer was not a 200: nothing must run again
        state_before = httpx.get(sim.root + "/__bench__/state", timeout=30).json()
        replays = Counter()
        with httpx.Client(base_url=svc.base_url, timeout=30) as client:
            for c in logical:
                if not c.ok:
                    r = client.post(c.path, json=c.body, headers={"X-API-Key": API_KEY, "Idempotency-Key": c.key})
                    replays[f"{r.status_code} {r.json().get('code', '') if r.status_code != 200 else ''}".strip()] += 1
        state_after = httpx.get(sim.root + "/__bench__/state", timeout=30).json()
        report["replays"] = dict(replays)
        report["seconds_from_kill_to_all_settled"] = report_wait
        report["replay_changed_upstream"] = _effects(state_before) != _effects(state_after)
        report["duplicate_side_effects"] = _duplicates(logical, state_after)
        report["rows_after_replay"] = len(ledger_rows(db_path))
        report.update(elapsed_s=round(elapsed, 1), killed_pid=victim.get("pid"), recover_output=recovered[-300:],
                      workers_after=svc.worker_pids(),
                      settings={"calls": calls, "concurrency": concurrency, "latency_ms": latency_ms,
                                "kill_after_s": kill_after, "job_lease_seconds": lease})
        return report
    finally:
        if own:
            st.close()


def _effects(state: dict) -> tuple:
    runs = sorted(r["automationContactId"] for r in state["runs"])
    tags = sorted((eid, name, score) for eid, t in state["tags"].items() for name, score in t.items())
    return runs, tags


def _duplicates(calls: list[Logical], state: dict) -> list[dict]:
    vouchers = Counter(r["fields"].get("voucherCode") for r in state["runs"])
    scores = {name: score for t in state["tags"].values() for name, score in t.items()}
    out = []
    for c in calls:
        n = vouchers.get(c.marker, 0) if c.operation == "StartAutomation" else (
            scores.get(c.marker) or 0 if c.operation == "SetScore" else 0)
        if n > 1:
            out.append({"op": c.operation, "marker": c.marker, "applied": n})
    return out


def analyse(calls: list[Logical], rows: list[dict]) -> dict:
    by_key = defaultdict(list)
    for row in rows:
        by_key[row["idempotency_key"]].append(row)
    report: dict[str, Any] = {"logical_calls": len(calls), "final": Counter(), "attempt_statuses": Counter(),
                              "ledger_records": len(rows), "ledger_status": Counter(r["status"] for r in rows),
                              "ledger_result_codes": Counter(r["result_code"] for r in rows if r["status"] != "Completed"),
                              "in_progress_after_recover": sum(1 for r in rows if r["status"] == "InProgress"),
                              "answered_without_record": 0, "duplicate_records": 0, "ok_without_completed_record": 0,
                              "status_500": 0, "status_409_in_progress": 0, "calls_hit_by_kill": 0,
                              "answered_202": 0}
    for c in calls:
        final = c.final
        report["final"][f"{final.get('status')} {final.get('code') or ''}".strip()] += 1
        answered = any(a.get("status") for a in c.attempts)
        recs = by_key.get(expected_key(c), [])
        # the kill hit this call: its connection broke, or its job was resumed or settled by another worker
        # (attempts > 1), or a repeat found it still held by the dead worker (503 REQUEST_IN_PROGRESS / 202)
        if (any(a.get("error") for a in c.attempts) or any(r["attempts"] > 1 for r in recs)
                or any(a.get("status") == 202 or a.get("code") == "REQUEST_IN_PROGRESS" for a in c.attempts)):
            report["calls_hit_by_kill"] += 1
        for a in c.attempts:
            report["attempt_statuses"][str(a.get("status") or a.get("error"))] += 1
            if a.get("status") == 500:
                report["status_500"] += 1
            if a.get("status") == 409 and a.get("code") == "REQUEST_IN_PROGRESS":
                report["status_409_in_progress"] += 1
            if a.get("status") == 202:
                report["answered_202"] += 1
        if answered and not recs:
            report["answered_without_record"] += 1
        if len(recs) > 1:
            report["duplicate_records"] += 1
        if c.ok and (not recs or recs[0]["status"] != "Completed" or recs[0]["id"] != final.get("job_id")):
            report["ok_without_completed_record"] += 1
    return report


def problems(report: dict) -> list[str]:
    out = []
    for name in ("in_progress_after_recover", "answered_without_record", "duplicate_records",
                 "ok_without_completed_record", "status_500", "status_409_in_progress"):
        if report[name]:
            out.append(f"{name}: {report[name]}")
    if report["duplicate_side_effects"]:
        out.append(f"duplicate side effects: {report['duplicate_side_effects'][:5]}")
    if report["replay_changed_upstream"]:
        out.append("replaying unfinished calls changed the upstream state")
    odd = {k: v for k, v in report["replays"].items() if k not in ("200", "409 OUTCOME_UNKNOWN")}
    if odd:
        out.append(f"replays answered {odd} (expected the recorded answer: 200 or 409 OUTCOME_UNKNOWN)")
    if report["rows_after_replay"] != report["ledger_records"]:
        out.append("replays created new ledger records")
    if not report["calls_hit_by_kill"]:
        out.append("the kill hit no call in flight (nothing was tested): raise --latency-ms or --concurrency")
    return out


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [f"{s['calls']} logical calls, {s['concurrency']} callers, upstream latency {s['latency_ms']} ms, "
             f"worker pid {report['killed_pid']} killed with SIGKILL {s['kill_after_s']} s into the run "
             f"(JOB_LEASE_SECONDS={s['job_lease_seconds']}); run took {report['elapsed_s']} s; workers afterwards: "
             f"{report['workers_after']}.", ""]
    lines.append(md_table(["final answer seen by the caller", "logical calls"], sorted(report["final"].items())))
    lines.append("")
    lines.append(md_table(["ledger status after recover", "records"], sorted(report["ledger_status"].items())))
    lines.append("")
    lines.append(md_table(["result code of unfinished records", "records"],
                          sorted((str(k), v) for k, v in report["ledger_result_codes"].items())))
    lines.append("")
    lines.append(md_table(["replay of the calls that did not end in 200", "answers"], sorted(report["replays"].items())))
    lines.append("")
    rows = [[k, report[k]] for k in ("calls_hit_by_kill", "answered_202", "seconds_from_kill_to_all_settled",
                                     "ledger_records", "in_progress_after_recover", "answered_without_record",
                                     "duplicate_records", "ok_without_completed_record", "status_500",
                                     "status_409_in_progress", "replay_changed_upstream", "rows_after_replay")]
    rows.append(["duplicate_side_effects", len(report["duplicate_side_effects"])])
    lines.append(md_table(["check", "value"], rows))
    bad = problems(report)
    lines.append("")
    lines.append("Result: " + ("PASS" if not bad else "FAIL - " + "; ".join(bad)))
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--latency-ms", type=float, default=300)
    p.add_argument("--kill-after", type=float, default=2.0)
    p.add_argument("--json")
    args = p.parse_args()
    report = run(args.calls, args.concurrency, args.latency_ms, args.kill_after)
    report["machine"] = machine_info()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    print(markdown(report))


if __name__ == "__main__":
    main()
