"""Service CPU per call (issue #15, goals 2 and 5): StartAutomation vs the naive proxy, dropdowns, trigger polls.

    .venv/bin/python -m bench.cpu [--calls 600] [--rounds 4] [--concurrency 4] [--latency-ms 5] [--json PATH]
                                  [--baseline-tree PATH]

The Spotler simulator runs as its own process (fixed latency, keep-alive connections: ``--pooled``); the service is started as the Procfile starts it
(gunicorn, 2 workers, SQLite ledger; validation, the ledger write before the upstream call, idempotency and the
JSON access log all on, as always), the naive proxy (bench/baseline_proxy.py) under gunicorn. For every case the
CPU time (user + system, from ``/proc/<pid>/stat``) of the server's processes - the gunicorn master and its
workers, not the sandbox simulators the master starts - is read before and after ``--calls`` calls from ``--concurrency`` keep-alive callers,
after a warm-up; the difference divided by the calls is the CPU per call. StartAutomation is measured on the
service, the naive proxy and the floor (bench/floor_proxy.py) in ``--rounds`` interleaved rounds of
``calls / rounds`` calls each, so that a change of the shared machine's speed during the run falls on all three.

``--baseline-tree PATH`` starts the same service from another checkout too (e.g. ``git worktree add
/tmp/base main``; this venv runs both) and measures it in the same interleaved rounds, every case: a change's
CPU cost per call is then ``this tree / baseline tree``, on the same machine at the same moment.

Cases:

* ``StartAutomation`` through the service, fresh Idempotency-Key per call, contacts by externalId; and the same
  call through the naive proxy (goal 2: service <= 1.3 x proxy);
* dropdowns with the upstream list cached (the service caches lists ``LIST_CACHE_SECONDS``): ListAutomations
  (``GET /automations``), ListMailings (``GET /mailings``), ListTags (``GET /tags``);
* trigger polls with nothing new: each caller makes the first call of the trigger, then polls the Location of
  the last answer again and again (202 each time: nothing happens upstream), for OnContactAdded,
  OnContactBounced, OnMailingInteraction (two feeds) and OnContactUnsubscribed. Goal 5: <= 2 ms each.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.load import closed_loop
from bench.processes import API_KEY, Stack
from bench.report import machine_info, md_table, report
from bench.overhead import start_call
from bench.throughput import cpu_seconds

HEADERS = {"X-API-Key": API_KEY}
START_TARGET = 1.3  # service CPU per StartAutomation <= 1.3 x the naive proxy's
LIGHT_TARGET_MS = 2.0  # dropdowns and quiet trigger polls
BASELINE_TREE = "(baseline tree)"
FLOOR_ALL = "StartAutomation (floor, all ledger guarantees)"
#: issue 25: CPU per StartAutomation <= 1.4 x the floor's at 4 callers, <= 1.6 x at 32
FLOOR_TARGETS = {4: 1.4, 32: 1.6}

DROPDOWNS = {"ListAutomations": "/automations", "ListMailings": "/mailings", "ListTags": "/tags"}
TRIGGERS = {"OnContactAdded": "/triggers/contacts/added", "OnContactBounced": "/triggers/contacts/bounced",
            "OnMailingInteraction": "/triggers/mailings/interactions",
            "OnContactUnsubscribed": "/triggers/contacts/unsubscribed"}


def get_call(path: str):
    async def call(conn, n):
        resp = await conn.request("GET", path, headers=HEADERS)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
        return resp
    return call


def _relative(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def poll_call(path: str):
    """Each connection keeps its own trigger state: the first call, then the Location of the last answer."""
    states: dict[int, str] = {}

    async def call(conn, n):
        key = id(conn)
        if key not in states:
            first = await conn.request("GET", path, headers=HEADERS)
            assert first.status_code == 202, (path, first.status_code, first.text[:300])
            states[key] = _relative(first.headers["location"])
        resp = await conn.request("GET", states[key], headers=HEADERS)
        assert resp.status_code == 202, (path, resp.status_code, resp.text[:300])
        states[key] = _relative(resp.headers["location"])
        return resp
    return call


def measure(server, call, args, calls: int | None = None) -> dict:
    calls = calls or args.calls
    def pids() -> list[int]:  # the master and its workers (re-discovered), not the sandbox simulators it started
        return [server.master_pid, *server.worker_pids()]

    before = cpu_seconds(pids())
    t0 = time.perf_counter()
    res = closed_loop(call, concurrency=args.concurrency, base_url=server.base_url, total=calls, ramp_s=0,
                      timeout=60)
    wall = time.perf_counter() - t0
    used = cpu_seconds(pids()) - before
    ok = max(1, res.ok)
    return {"calls": calls, "ok": res.ok, "failed": res.failed, "cpu_s": round(used, 3),
            "cpu_ms_per_call": round(used / ok * 1000, 3), "wall_s": round(wall, 2),
            "p50_ms": res.summary()["p50_ms"]}


def combine(parts: list[dict]) -> dict:
    """One row from several rounds: CPU and calls summed, the median of the rounds' p50s."""
    ok = max(1, sum(p["ok"] for p in parts))
    cpu = sum(p["cpu_s"] for p in parts)
    p50s = sorted(p["p50_ms"] for p in parts)
    return {"calls": sum(p["calls"] for p in parts), "ok": sum(p["ok"] for p in parts),
            "failed": sum(p["failed"] for p in parts), "cpu_s": round(cpu, 3),
            "cpu_ms_per_call": round(cpu / ok * 1000, 3), "wall_s": round(sum(p["wall_s"] for p in parts), 2),
            "p50_ms": p50s[len(p50s) // 2], "rounds_cpu_ms_per_call": [p["cpu_ms_per_call"] for p in parts]}


def run(args: argparse.Namespace) -> dict:
    out: dict = {"machine": machine_info(), "settings": {k: v for k, v in vars(args).items()}, "rows": {}}
    with Stack() as st:
        sim = st.sim(latency_ms=args.latency_ms, jitter_ms=0, pooled=args.sim_processes)
        service = st.service(upstream_url=sim.url)
        other = st.service(upstream_url=sim.url, tree=Path(args.baseline_tree).resolve()) \
            if args.baseline_tree else None
        baseline = st.baseline(upstream_url=sim.url)
        floor = st.baseline(upstream_url=sim.url, floor=True)
        floor_all = st.baseline(upstream_url=sim.url, floor="all") if args.floor_all else None
        warm = max(100, args.concurrency * 20)

        # warm-up: imports, pools, the ledger's schema, every cache (lists are cached LIST_CACHE_SECONDS)
        closed_loop(start_call(), concurrency=args.concurrency, base_url=service.base_url, total=warm, ramp_s=0)
        if other is not None:
            closed_loop(start_call(), concurrency=args.concurrency, base_url=other.base_url, total=warm, ramp_s=0)
        closed_loop(start_call(), concurrency=args.concurrency, base_url=baseline.base_url, total=warm, ramp_s=0)
        closed_loop(start_call(), concurrency=args.concurrency, base_url=floor.base_url, total=warm, ramp_s=0)
        if floor_all is not None:
            closed_loop(start_call(), concurrency=args.concurrency, base_url=floor_all.base_url, total=warm,
                        ramp_s=0)
        # interleaved rounds (service, proxy, floor, service, ...): a drift of the shared machine's speed
        # during the run falls on all three alike, so their ratios hold
        servers = {"StartAutomation (service)": service, "StartAutomation (naive proxy)": baseline,
                   "StartAutomation (floor)": floor}
        if floor_all is not None:
            servers[FLOOR_ALL] = floor_all
        if other is not None:
            servers[f"StartAutomation {BASELINE_TREE}"] = other
        per_round = max(1, args.calls // args.rounds)
        rounds: dict[str, list[dict]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, server in servers.items():
                rounds[name].append(measure(server, start_call(), args, calls=per_round))
        for name, parts in rounds.items():
            out["rows"][name] = combine(parts)
        if args.start_only:
            return out
        trees = {"": service} if other is None else {"": service, f" {BASELINE_TREE}": other}
        cases = [(name, lambda path=path: get_call(path)) for name, path in DROPDOWNS.items()]
        cases += [(f"{name} poll, nothing new", lambda path=path: poll_call(path)) for name, path in TRIGGERS.items()]
        for name, make in cases:
            for server in trees.values():
                closed_loop(make(), concurrency=args.concurrency, base_url=server.base_url, total=warm, ramp_s=0)
            parts: dict[str, list[dict]] = {suffix: [] for suffix in trees}
            for _ in range(args.rounds if other is not None else 1):  # interleaved when there are two trees
                for suffix, server in trees.items():
                    parts[suffix].append(measure(server, make(), args,
                                                 calls=per_round if other is not None else args.calls))
            for suffix, got in parts.items():
                out["rows"][name + suffix] = combine(got) if len(got) > 1 else got[0]
    return out


def markdown(out: dict) -> str:
    rows = out["rows"]
    table = [[name, r["ok"], r["failed"], r["cpu_ms_per_call"], r["p50_ms"]] for name, r in rows.items()]
    t1 = md_table(["call", "ok", "failed", "service CPU ms/call", "p50 ms"], table)
    svc = rows["StartAutomation (service)"]["cpu_ms_per_call"]
    base = rows["StartAutomation (naive proxy)"]["cpu_ms_per_call"]
    ratio = svc / base if base else float("inf")
    checks = [["StartAutomation: service / naive proxy CPU", f"{svc} / {base} = {ratio:.2f}", f"<= {START_TARGET}",
               "PASS" if ratio <= START_TARGET else "FAIL"]]
    if "StartAutomation (floor)" in rows:
        low = rows["StartAutomation (floor)"]["cpu_ms_per_call"]
        checks.append(["StartAutomation: floor / naive proxy CPU (what validation, idempotency, a ledger write "
                       "and a log line cost at the least; bench/floor_proxy.py)",
                       f"{low} / {base} = {low / base if base else float('inf'):.2f}", "-", "(information)"])
        target = FLOOR_TARGETS.get(out["settings"]["concurrency"])
        ratio = svc / low if low else float("inf")
        checks.append(["StartAutomation: service / floor CPU", f"{svc} / {low} = {ratio:.2f}",
                       f"<= {target}" if target else "-",
                       ("PASS" if ratio <= target else "FAIL") if target else "(information)"])
    if FLOOR_ALL in rows:
        low = rows[FLOOR_ALL]["cpu_ms_per_call"]
        target = FLOOR_TARGETS.get(out["settings"]["concurrency"])
        ratio = svc / low if low else float("inf")
        checks.append(["StartAutomation: floor with all ledger guarantees / plain floor CPU",
                       f"{low} / {rows['StartAutomation (floor)']['cpu_ms_per_call']}", "-", "(information)"])
        checks.append(["StartAutomation: service / floor with all ledger guarantees CPU", f"{svc} / {low} = {ratio:.2f}",
                       f"<= {target}" if target else "-",
                       ("PASS" if ratio <= target else "FAIL") if target else "(information)"])
    for name, r in rows.items():
        if name.startswith("StartAutomation") or name.endswith(BASELINE_TREE):
            continue
        v = r["cpu_ms_per_call"]
        checks.append([f"{name}: service CPU ms", v, f"<= {LIGHT_TARGET_MS}", "PASS" if v <= LIGHT_TARGET_MS else "FAIL"])
    for name, r in rows.items():  # this tree against the baseline tree, case by case
        if name.endswith(BASELINE_TREE):
            mine = rows.get(name.replace(f" {BASELINE_TREE}", "") if not name.startswith("StartAutomation")
                            else "StartAutomation (service)")
            if mine:
                v, b = mine["cpu_ms_per_call"], r["cpu_ms_per_call"]
                checks.append([f"{name.replace(BASELINE_TREE, '').strip()}: this tree / baseline tree CPU",
                               f"{v} / {b} = {v / b if b else float('inf'):.3f}", "<= 1 (no CPU cost)",
                               "(information)"])
    t2 = md_table(["check", "value", "target", "result"], checks)
    s = out["settings"]
    return (f"{s['calls']} calls per case, {s['concurrency']} keep-alive callers, upstream latency "
            f"{s['latency_ms']} ms, {out['machine']['nproc']} cores ({out['machine']['date']}).\n\n{t1}\n\n{t2}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=600)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--rounds", type=int, default=4,
                   help="StartAutomation: service, proxy and floor measured in this many interleaved rounds")
    p.add_argument("--latency-ms", type=float, default=5)
    p.add_argument("--sim-processes", type=int, default=1,
                   help="simulator processes (gunicorn, keep-alive); 0 = the stock werkzeug simulator")
    p.add_argument("--start-only", action="store_true", help="only StartAutomation (service and proxy)")
    p.add_argument("--baseline-tree", help="another checkout whose service is measured in the same rounds")
    p.add_argument("--floor-all", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure the floor with every guarantee of the service's ledger (bench/floor_proxy.py "
                        "FLOOR_GUARANTEES=all) beside the plain floor")
    p.add_argument("--json")
    args = p.parse_args()
    report(args, run, markdown)


if __name__ == "__main__":
    main()
