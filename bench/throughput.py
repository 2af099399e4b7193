"""Throughput: 200 concurrent callers, 100 ms upstream latency, service vs naive baseline vs the simulator alone.

    .venv/bin/python -m bench.throughput [--duration 60] [--concurrency 200] [--latency-ms 100] [--database sqlite]

The simulator (fixed latency), then three phases of ``--duration`` seconds each, in this order:

1. ``simulator alone``: the upstream calls StartAutomation makes, sent directly with our provider from
   ``--concurrency`` threads in this process: the ceiling the simulator (a threaded werkzeug server, one
   Python process) allows on this machine;
2. ``service``: POST /automations/{welcome}/start through the service started as the Procfile starts it
   (gunicorn, 2 uvicorn workers, FLASK_THREADS default 32), a fresh Idempotency-Key per call;
3. ``baseline``: the naive proxy (bench/baseline_proxy.py; gunicorn gthread, 2 workers x 32 threads).

Per phase: actions/s, errors (transport errors and non-2xx), p50/p99, peak RSS per worker (VmRSS/VmHWM sampled
every 0.5 s, workers re-discovered as gunicorn recycles them), and CPU seconds per action of each process group
(service or baseline incl. workers, simulator, load generator) - where the time goes. ``--database postgres``
puts the service's ledger in a fresh PostgreSQL database (BENCH_POSTGRES_URL, default the local server).
The simulator runs as ``--sim-processes`` gunicorn processes on one port with keep-alive connections, so that
it is not the bottleneck (one werkzeug process was: its GIL ceiling); "cores used" per process group says which
one saturates. Targets (issue #15): service >= 1.0 x baseline actions/s with the CPU saturated; 0 errors;
<= 120 MB RSS per worker at the end of the run (issue #8: >= 0.8 x, 150 MB peak).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time

from bench.load import closed_loop, threaded_loop
from bench.processes import (
    RssSampler,
    Stack,
    children,
    connections_per_worker,
    rss_mb,
    temp_postgres_database,
    worker_pids,
)
from bench.report import machine_info, md_table, report
from bench.overhead import CONTACTS, WELCOME, provider_for, start_call


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime (children reaped by the process: recycled gunicorn workers)
            total += sum(int(x) for x in fields[11:15]) / tick
    return total


def tree(pid: int) -> list[int]:
    out = [pid]
    for child in children(pid):
        out += tree(child)
    return out


class CpuMeter:
    """CPU seconds used by process groups between start() and stop(), with workers re-discovered (a worker
    that exits takes its CPU to the master's cutime/cstime, which is counted)."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups  # name -> root pid (os.getpid() for this process)
        self.used: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        out = {}
        for name, root in self.groups.items():
            if root == os.getpid():
                t = os.times()
                out[name] = t.user + t.system
            elif name == "server":  # the master and its workers, not a sandbox simulator the master started
                out[name] = cpu_seconds([root, *worker_pids(root)])
            else:
                out[name] = cpu_seconds(tree(root))
        return out

    def __enter__(self) -> CpuMeter:
        self._start = self._sample()
        return self

    def __exit__(self, *exc) -> None:
        end = self._sample()
        self.used = {k: round(end[k] - self._start[k], 2) for k in end}


def phase_load(server, args) -> tuple:
    port = server.base_url.rsplit(":", 1)[1]
    seen: dict = {}

    def sample() -> None:
        time.sleep(min(10.0, args.duration / 2))
        with contextlib.suppress(Exception):
            seen.update(connections_per_worker(port))

    sampler_thread = threading.Thread(target=sample, daemon=True)
    with RssSampler(server) as rss, CpuMeter({"server": server.master_pid, "simulator": args.sim_pid,
                                              "load generator": os.getpid()}) as cpu:
        sampler_thread.start()
        res = closed_loop(start_call(), concurrency=args.concurrency, base_url=server.base_url,
                          duration=args.duration, timeout=60.0, ramp_s=2.0)
        end_rss = {str(pid): round(rss_mb(pid) or 0.0, 1) for pid in server.worker_pids()}
    sampler_thread.join(5)
    return res, rss, cpu, seen, end_rss


def run(args: argparse.Namespace) -> dict:
    out: dict = {"machine": machine_info(), "settings": vars(args).copy(), "phases": {}}
    with Stack() as st:
        env = {}
        if args.database == "postgres" and args.postgres_url:
            env["DATABASE_URL"] = args.postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
        elif args.database == "postgres":
            env["DATABASE_URL"] = st.enter_context(temp_postgres_database())
        sim = st.sim(latency_ms=args.latency_ms, jitter_ms=0, pooled=args.sim_processes)
        args.sim_pid = sim.pid
        service = st.service(upstream_url=sim.url, **env)
        baseline = st.baseline(upstream_url=sim.url)
        floor = st.baseline(upstream_url=sim.url, floor=True) if args.floor else None

        # warm-up (not measured)
        for server in (service, baseline, floor):
            if server is not None:
                closed_loop(start_call(), concurrency=16, base_url=server.base_url, total=200)

        # 1. the simulator alone, with our client, the upstream calls of one StartAutomation by externalId
        provider = provider_for(sim.url, pool_maxsize=args.concurrency)

        def direct(n: int) -> None:
            res = provider.client.trigger_automation(WELCOME, CONTACTS[n % len(CONTACTS)])
            assert res["result"] == "OK", res

        with CpuMeter({"simulator": sim.pid, "load generator": os.getpid()}) as cpu:
            res = threaded_loop(direct, concurrency=args.concurrency, duration=args.duration)
        out["phases"]["simulator alone (direct client)"] = {**res.summary(), "cpu_s": cpu.used}
        provider.close()

        for name, server in (("service", service), ("baseline", baseline), ("floor", floor)):
            if server is None:
                continue
            res, rss, cpu, conns, end_rss = phase_load(server, args)
            out["phases"][name] = {**res.summary(), "cpu_s": cpu.used, "rss_peak_mb": {
                str(pid): round(mb, 1) for pid, mb in rss.peaks.items()}, "max_rss_mb": round(rss.max_mb, 1),
                "rss_end_mb": end_rss, "max_rss_end_mb": max(end_rss.values(), default=0.0),
                "workers_seen": len(rss.peaks), "connections_per_worker": conns}
    return out


def markdown(out: dict) -> str:
    s = out["settings"]
    p = out["phases"]
    rows = []
    for name, ph in p.items():
        rows.append([name, ph["rate"], ph["ok"], ph["failed"], ph["p50_ms"], ph["p99_ms"],
                     ph.get("max_rss_end_mb"), ph.get("max_rss_mb"), ph.get("workers_seen"),
                     ph.get("connections_per_worker")])
    t1 = md_table(["phase", "actions/s", "ok", "errors", "p50 ms", "p99 ms", "RSS/worker at end MB",
                   "peak RSS/worker MB", "worker pids seen", "connections per worker pid"], rows)
    cpu_rows = []
    for name, ph in p.items():
        ok = max(1, ph["ok"])
        groups = ("server", "simulator", "load generator")
        used = {k: ph["cpu_s"].get(k, 0) for k in groups}
        cores = {k: used[k] / s["duration"] for k in groups}
        busiest = max(groups, key=lambda k: cores[k])
        cpu_rows.append([name] + [round(used[k] / ok * 1000, 2) for k in groups]
                        + [" / ".join(f"{cores[k]:.2f}" for k in groups), f"{sum(cores.values()):.2f}", busiest])
    t2 = md_table(["phase", "server CPU ms/action", "simulator CPU ms/action", "load generator CPU ms/action",
                   "cores used (server / simulator / load gen.)", "cores used, all", "busiest process group"],
                  cpu_rows)
    svc, base, alone = p["service"], p["baseline"], p["simulator alone (direct client)"]
    ratio = svc["rate"] / base["rate"] if base["rate"] else 0
    checks = [
        ["service / baseline actions/s", round(ratio, 3), ">= 1.0", "PASS" if ratio >= 1.0 else "FAIL"],
        ["service / simulator alone", round(svc["rate"] / alone["rate"], 3) if alone["rate"] else None, "-", "-"],
        ["baseline / simulator alone", round(base["rate"] / alone["rate"], 3) if alone["rate"] else None, "-", "-"],
        *([["floor / baseline actions/s (the proxy + validation, idempotency, a ledger write, a log line; "
            "bench/floor_proxy.py)", round(p["floor"]["rate"] / base["rate"], 3) if base["rate"] else None, "-",
            "(information)"]] if "floor" in p else []),
        ["service errors", svc["failed"], "0", "PASS" if svc["failed"] == 0 else "FAIL"],
        ["service RSS per worker at the end MB", svc["max_rss_end_mb"], "<= 120",
         "PASS" if svc["max_rss_end_mb"] <= 120 else "FAIL"],
        ["service peak RSS per worker MB", svc["max_rss_mb"], "-", "-"],
    ]
    t3 = md_table(["check", "value", "target", "result"], checks)
    head = (f"{s['concurrency']} concurrent callers, {s['duration']} s per phase, upstream latency "
            f"{s['latency_ms']} ms, simulator: {s['sim_processes'] or 'stock (1 werkzeug process)'}"
            f"{' gunicorn processes, keep-alive' if s['sim_processes'] else ''}, ledger on {s['database']}.")
    return f"{head}\n\n{t1}\n\nCPU per action (all processes share the machine's {out['machine']['nproc']} cores):\n\n" \
           f"{t2}\n\n{t3}\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--latency-ms", type=float, default=100)
    p.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--postgres-url", default="",
                   help="with --database postgres: use this database as it is (default: a fresh database created "
                        "through BENCH_POSTGRES_URL and dropped afterwards)")
    p.add_argument("--sim-processes", type=int, default=3,
                   help="simulator processes on one port (gunicorn, keep-alive; 0 = the stock werkzeug simulator, "
                        "one process: then the simulator is the bottleneck)")
    p.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure the floor (bench/floor_proxy.py): what the required features cost at the least")
    p.add_argument("--json")
    args = p.parse_args()
    report(args, run, markdown)


if __name__ == "__main__":
    main()
