"""Resilience under upstream faults: 1,000 mixed write actions while the simulator injects 20 % faults.

    .venv/bin/python -m bench.faults [--calls 1000] [--concurrency 16] [--fault-rate 0.2]

Setup: the fault-mixing simulator (bench/simulator.py: 429 + Retry-After, 503 + Retry-After, 500, hangs past our
read timeout that then fail or proceed, connection resets before or after the request is handled) as its own
process; the service started as the Procfile starts it (2 workers) with ``UPSTREAM_READ_TIMEOUT=1``.

Caller: like Power Automate - one Idempotency-Key per logical call, the same key on every retry; retries on
408/429/5xx and on broken connections, up to 8 retries, waiting ``Retry-After`` capped at ``--retry-cap`` s.
Actions (round robin): StartAutomation (welcome, a unique ``voucherCode`` per logical call), SetScore
(``increase`` by 1 on a tag unique to the call: the final score counts the upstream applications), AddTag (a
unique tag) and SetContactField (``city``).

Checks (:func:`problems`): no 500 ever; every transient problem is a 503/504 with Retry-After and a problem+json
body; every final answer is a success, a problem, or - for a call that is not safe to repeat whose answer was lost
- 409 OUTCOME_UNKNOWN; the ledger (read directly from its SQLite file) holds exactly one record per logical call,
none InProgress, Completed with the answered jobId for every success; the simulator shows NO duplicate side
effect, including where a fault happened AFTER the upstream applied the request (``hang_proceed`` /
``reset_after``): a trigger whose answer was lost ends OUTCOME_UNKNOWN and is never sent again; a score increase
whose answer was lost is settled by reading the score back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.load import RawConnection, TransportError
from bench.processes import API_KEY, Server, Simulator, Stack
from bench.report import machine_info, md_table
from service.actions.idempotency import derive_key
from service.api.security import caller_for_api_key
from service.sandbox.spotler import DEMO

WELCOME = DEMO.automations["welcome"]
CONTACTS = [DEMO.contacts[k] for k in ("jan", "piet", "anna", "shared_a", "shared_b")]
OPERATIONS = ("StartAutomation", "SetScore", "AddTag", "SetContactField")
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
MAX_RETRIES = 8  # Power Automate's default retry policy: up to 8 retries


@dataclass
class Logical:
    index: int
    operation: str
    path: str
    body: dict
    marker: str
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: list[dict] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.attempts[-1] if self.attempts else {"status": None}

    @property
    def ok(self) -> bool:
        return 200 <= (self.final.get("status") or 0) < 300


def make_call(i: int, run: str) -> Logical:
    op = OPERATIONS[i % len(OPERATIONS)]
    contact = {"externalId": CONTACTS[(i // len(OPERATIONS)) % len(CONTACTS)]}
    marker = f"{run}-{i}"
    if op == "StartAutomation":
        return Logical(i, op, f"/automations/{WELCOME}/start",
                       {"contact": contact, "fields": {"voucherCode": f"v-{marker}"}}, f"v-{marker}")
    if op == "SetScore":
        return Logical(i, op, "/contacts/scores",
                       {"contact": contact, "tag": f"s-{marker}", "score": 1, "mode": "increase"}, f"s-{marker}")
    if op == "AddTag":
        return Logical(i, op, "/contacts/tags", {"contact": contact, "tags": [f"t-{marker}"]}, f"t-{marker}")
    return Logical(i, op, "/contacts/fields", {"contact": contact, "field": "city", "value": f"c-{marker}"},
                   f"c-{marker}")


async def drive(base_url: str, calls: list[Logical], concurrency: int, retry_cap: float, timeout: float) -> None:
    queue: asyncio.Queue[Logical] = asyncio.Queue()
    for c in calls:
        queue.put_nowait(c)

    async def caller() -> None:
        conn = RawConnection(base_url, timeout)
        try:
            while not queue.empty():
                call = queue.get_nowait()
                for _attempt in range(1 + MAX_RETRIES):
                    t0 = time.perf_counter()
                    try:
                        r = await conn.request("POST", call.path, json_body=call.body,
                                               headers={"X-API-Key": API_KEY, "Idempotency-Key": call.key})
                    except TransportError as exc:
                        call.attempts.append({"status": None, "error": str(exc),
                                              "ms": (time.perf_counter() - t0) * 1000})
                        await asyncio.sleep(0.05)
                        continue
                    rec: dict[str, Any] = {"status": r.status_code, "ms": (time.perf_counter() - t0) * 1000,
                                           "retry_after": r.headers.get("retry-after"),
                                           "content_type": r.headers.get("content-type", ""),
                                           "replayed": r.headers.get("idempotent-replayed") == "true"}
                    try:
                        doc = r.json()
                    except ValueError:
                        doc = None
                    rec["code"] = doc.get("code") if isinstance(doc, dict) else None
                    rec["job_id"] = doc.get("jobId") if isinstance(doc, dict) else None
                    if r.status_code >= 500 and r.status_code not in (503, 504):
                        rec["body"] = r.text[:500]
                    call.attempts.append(rec)
                    if r.status_code == 202 and r.headers.get("location"):
                        # the asynchronous pattern: poll the Location until it stops answering 202
                        path = "/" + r.headers["location"].split("://", 1)[1].split("/", 1)[1]
                        for _poll in range(600):
                            await asyncio.sleep(min(float(r.headers.get("retry-after") or 1), retry_cap))
                            try:
                                r = await conn.request("GET", path, headers={"X-API-Key": API_KEY})
                            except TransportError:
                                continue
                            if r.status_code != 202:
                                break
                        doc = r.json()
                        call.attempts.append({"status": r.status_code, "ms": 0.0, "polled": True,
                                              "retry_after": r.headers.get("retry-after"),
                                              "content_type": r.headers.get("content-type", ""),
                                              "code": doc.get("code") if isinstance(doc, dict) else None,
                                              "job_id": doc.get("jobId") if isinstance(doc, dict) else None})
                    if r.status_code not in RETRY_STATUSES:
                        break
                    try:
                        wait = float(rec["retry_after"] or 0)
                    except ValueError:
                        wait = 0.0
                    await asyncio.sleep(min(max(wait, 0.05), retry_cap))
        finally:
            await conn.close()

    await asyncio.gather(*(caller() for _ in range(concurrency)))


def ledger_rows(db_path: str) -> list[dict]:
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(
            "SELECT id, idempotency_key, operation, status, attempts, result_code, http_status FROM job_ledger")]


def expected_key(call: Logical) -> str:
    return derive_key(call.operation, {"Idempotency-Key": call.key}, None, caller_for_api_key(API_KEY))


def analyse(calls: list[Logical], rows: list[dict], state: dict, fault_log: list[dict]) -> dict:
    by_key = defaultdict(list)
    for row in rows:
        by_key[row["idempotency_key"]].append(row)
    after_markers = Counter(f["marker"] for f in fault_log if f["kind"] in ("hang_proceed", "reset_after")
                            and f["method"] in ("POST", "PUT") and f["marker"])
    runs_per_voucher = Counter(r["fields"].get("voucherCode") for r in state["runs"])
    scores: dict[str, Any] = {}
    tags_present: set[str] = set()
    for tags in state["tags"].values():
        for name, score in tags.items():
            scores[name] = score
            tags_present.add(name)

    report: dict[str, Any] = {
        "logical_calls": len(calls), "attempts": sum(len(c.attempts) for c in calls),
        "final": Counter(), "attempt_statuses": Counter(), "per_operation": defaultdict(Counter),
        "status_500": 0, "transient_without_retry_after": 0, "problem_not_json": 0, "no_final_answer": 0,
        "ledger_records": len(rows), "ledger_missing": 0, "ledger_duplicates": 0, "ledger_in_progress": 0,
        "ledger_job_mismatch": 0, "ledger_not_completed_for_success": 0,
        "duplicates": [], "duplicates_by_op": Counter(), "missing_effect": [],
        "outcome_unknown_by_op": Counter(), "outcome_unknown_applied": Counter(),
        "after_fault_calls_answered_ok_by_op": Counter(), "status_409_in_progress": 0,
        "faults_injected": Counter(f["kind"] for f in fault_log),
        "after_faults_on_writes": sum(after_markers.values()),
    }
    for c in calls:
        final = c.final
        status = final.get("status")
        report["final"][str(status) + (f" {final.get('code')}" if final.get("code") and status != 200 else "")] += 1
        report["per_operation"][c.operation]["ok" if c.ok else f"{status} {final.get('code')}"] += 1
        for a in c.attempts:
            report["attempt_statuses"][str(a.get("status") or a.get("error"))] += 1
            s = a.get("status")
            if s == 500:
                report["status_500"] += 1
            if s in (503, 504) and not a.get("retry_after"):
                report["transient_without_retry_after"] += 1
            if s and s >= 400 and not a.get("content_type", "").startswith("application/problem+json"):
                report["problem_not_json"] += 1
        if status is None:
            report["no_final_answer"] += 1
        recs = by_key.get(expected_key(c), [])
        if not recs:
            report["ledger_missing"] += 1
        if len(recs) > 1:
            report["ledger_duplicates"] += 1
        for rec in recs:
            if rec["status"] == "InProgress":
                report["ledger_in_progress"] += 1
        if c.ok and recs:
            if recs[0]["status"] != "Completed":
                report["ledger_not_completed_for_success"] += 1
            if final.get("job_id") and final["job_id"] != recs[0]["id"]:
                report["ledger_job_mismatch"] += 1
        for a in c.attempts:
            if a.get("status") == 409 and a.get("code") == "REQUEST_IN_PROGRESS":
                report["status_409_in_progress"] += 1
        # side effects
        applied = None
        if c.operation == "StartAutomation":
            applied = runs_per_voucher.get(c.marker, 0)
        elif c.operation == "SetScore":
            applied = scores.get(c.marker) or 0
        elif c.operation == "AddTag":
            applied = 1 if c.marker in tags_present else 0
        if final.get("code") == "OUTCOME_UNKNOWN":
            report["outcome_unknown_by_op"][c.operation] += 1
            if applied:
                report["outcome_unknown_applied"][c.operation] += 1
        if c.ok and after_markers.get(c.marker):
            report["after_fault_calls_answered_ok_by_op"][c.operation] += 1
        if applied is not None:
            if applied > 1:  # no allowance: a lost answer must never lead to a second application
                report["duplicates"].append({"op": c.operation, "marker": c.marker, "applied": applied,
                                             "after_faults": after_markers.get(c.marker, 0), "final": status})
                report["duplicates_by_op"][c.operation] += 1
            if c.ok and applied == 0:
                report["missing_effect"].append({"op": c.operation, "marker": c.marker})
    report["keys_in_ledger_not_called"] = len(set(by_key) - {expected_key(c) for c in calls})
    return report


def problems(report: dict) -> list[str]:
    """What violates issue #8's fault rules (empty list = all good)."""
    out = []
    for name in ("status_500", "transient_without_retry_after", "problem_not_json", "no_final_answer",
                 "ledger_missing", "ledger_duplicates", "ledger_in_progress", "ledger_job_mismatch",
                 "ledger_not_completed_for_success", "keys_in_ledger_not_called"):
        if report[name]:
            out.append(f"{name}: {report[name]}")
    if report["duplicates"]:
        out.append(f"duplicate side effects: {report['duplicates'][:5]}")
    if report["status_409_in_progress"]:
        out.append(f"409 REQUEST_IN_PROGRESS answers (Power Automate does not retry them): "
                   f"{report['status_409_in_progress']}")
    if report["missing_effect"]:
        out.append(f"success without side effect: {report['missing_effect'][:5]}")
    for answer in report["final"]:
        status = int(answer.split()[0]) if answer.split()[0].isdigit() else 0
        if status >= 500 or status == 0 or (status >= 400 and answer != "409 OUTCOME_UNKNOWN"):
            out.append(f"final answer {answer}")
    return out


def run(calls: int = 1000, concurrency: int = 16, fault_rate: float = 0.2, retry_cap: float = 0.2,
        hang_seconds: float = 2.5, read_timeout: float = 1.0, seed: int = 8,
        stack: Stack | None = None) -> dict:
    own = stack is None
    st = stack or Stack()
    try:
        sim: Simulator = st.sim(module="bench.simulator", latency_ms=2,
                                args=["--fault-rate", str(fault_rate), "--hang-seconds", str(hang_seconds),
                                      "--seed", str(seed)])
        svc: Server = st.service(upstream_url=sim.url, UPSTREAM_READ_TIMEOUT=read_timeout, LOG_LEVEL="WARNING")
        db_path = str(svc.log_path.parent / "ledger.db")
        run_id = uuid.uuid4().hex[:6]
        logical = [make_call(i, run_id) for i in range(calls)]
        t0 = time.perf_counter()
        asyncio.run(drive(svc.base_url, logical, concurrency, retry_cap, timeout=30.0))
        elapsed = time.perf_counter() - t0
        time.sleep(hang_seconds + 0.5)  # let hung upstream requests that "proceed" land before reading the state
        state = httpx.get(sim.root + "/__bench__/state", timeout=30).json()
        fault_log = httpx.get(sim.root + "/__bench__/faults", timeout=30).json()["faults"]
        report = analyse(logical, ledger_rows(db_path), state, fault_log)
        report["elapsed_s"] = round(elapsed, 1)
        report["settings"] = {"calls": calls, "concurrency": concurrency, "fault_rate": fault_rate,
                              "retry_cap_s": retry_cap, "hang_seconds": hang_seconds, "read_timeout_s": read_timeout}
        return report
    finally:
        if own:
            st.close()


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [f"{s['calls']} logical calls, {s['concurrency']} concurrent callers, {s['fault_rate']:.0%} upstream "
             f"faults, {report['attempts']} HTTP attempts in {report['elapsed_s']} s.", ""]
    lines.append(md_table(["fault injected upstream", "count"], sorted(report["faults_injected"].items())))
    lines.append("")
    lines.append(md_table(["final answer", "logical calls"], sorted(report["final"].items())))
    lines.append("")
    lines.append(md_table(["status of an attempt", "count"], sorted(report["attempt_statuses"].items())))
    lines.append("")
    rows = [[k, report[k] if not isinstance(report[k], list) else len(report[k])] for k in (
        "status_500", "transient_without_retry_after", "problem_not_json", "status_409_in_progress",
        "ledger_records", "ledger_missing", "ledger_duplicates", "ledger_in_progress", "ledger_job_mismatch",
        "ledger_not_completed_for_success", "after_faults_on_writes", "duplicates", "missing_effect")]
    lines.append(md_table(["check", "value"], rows))
    lines.append("")
    lines.append("Calls ending 409 OUTCOME_UNKNOWN (not safe to repeat, answer lost; never sent again) by operation: "
                 + (", ".join(f"{op} {n} (of which the platform had applied {report['outcome_unknown_applied'][op]})"
                              for op, n in sorted(report["outcome_unknown_by_op"].items())) or "none") + ".")
    lines.append("Calls hit by an AFTER-apply fault on a write that still ended 200 (retried when safe, settled by "
                 "read-back for SetScore): " + (", ".join(
                     f"{op} {n}" for op, n in sorted(report["after_fault_calls_answered_ok_by_op"].items()))
                     or "none") + ".")
    bad = problems(report)
    lines.append("")
    lines.append("Result: " + ("PASS" if not bad else "FAIL - " + "; ".join(bad)))
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--fault-rate", type=float, default=0.2)
    p.add_argument("--retry-cap", type=float, default=0.2, help="max seconds a caller waits for Retry-After")
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--json")
    args = p.parse_args()
    report = run(args.calls, args.concurrency, args.fault_rate, args.retry_cap, seed=args.seed)
    report["machine"] = machine_info()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    print(markdown(report))


if __name__ == "__main__":
    main()
