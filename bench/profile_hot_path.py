"""Where the CPU time of StartAutomation goes: cProfile (per-thread CPU clock) over in-process calls.

    .venv/bin/python -m bench.profile_hot_path [--calls 500] [--top 35] [--out /tmp/hot.pstats]

The simulator runs as its own process (no latency), so its CPU is not in the profile. The app is built by
``create_app()`` with production settings (response validation off, SQLite ledger in a temp dir) and driven
through Connexion's test client, so the whole stack runs: ASGI middleware (request context, security,
validation), the thread bridge (service/api/wsgi_bridge.py), Flask, the handler, the ledger, the Spotler client. Every thread gets
its own ``cProfile.Profile(time.thread_time)`` (installed with ``threading.setprofile``), so the numbers are
CPU seconds, not waiting time; the profiles are merged at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict


from bench.processes import Stack
from service.api.connexion_patches import install_bridge
from service.app import create_app
from service.config import Settings
from service.sandbox.spotler import DEMO

WELCOME = DEMO.automations["welcome"]
CONTACTS = [DEMO.contacts[k] for k in ("jan", "piet", "anna", "shared_a", "shared_b")]
KEY = "profile-key-0123456789abcdef"

_GROUPS = (("service/", "service (ours)"), ("connexion", "connexion"), ("starlette", "starlette"),
           ("a2wsgi", "a2wsgi"), ("flask", "flask"), ("werkzeug", "werkzeug"), ("jsonschema", "jsonschema"),
           ("sqlalchemy", "sqlalchemy"), ("sqlite3", "sqlite3"), ("requests_oauthlib", "requests-oauthlib"),
           ("oauthlib", "oauthlib"), ("urllib3", "urllib3"), ("requests", "requests"), ("http/client", "http.client"),
           ("marshmallow", "marshmallow"), ("cryptography", "cryptography"), ("httpx", "httpx (test client)"),
           ("anyio", "anyio (test client)"), ("asyncio", "asyncio"), ("json", "json"), ("logging", "logging"),
           ("socket", "socket"), ("email", "email"))


def _group(filename: str) -> str:
    f = filename.replace("\\", "/")
    for needle, name in _GROUPS:
        if needle in f:
            return name
    return "builtins" if filename.startswith("<") or filename == "~" else "other stdlib"


def profile(calls: int, threads: int) -> tuple[pstats.Stats, float, int]:
    profiles: list[cProfile.Profile] = []

    def start_profiling(*_args):
        prof = cProfile.Profile(time.thread_time)
        profiles.append(prof)
        sys.setprofile(None)
        prof.enable()

    with Stack() as st:
        sim = st.sim(latency_ms=0)
        settings = Settings(api_keys=(KEY,), database_url=f"sqlite:///{tempfile.mkdtemp()}/ledger.db",
                            sandbox_upstream_url=sim.url, log_level="INFO")
        app = create_app(settings)
        logging.getLogger("httpx").setLevel(logging.WARNING)

        def one(client, n: int) -> None:
            r = client.post(f"/automations/{WELCOME}/start",
                            json={"contact": {"externalId": CONTACTS[n % len(CONTACTS)]}},
                            headers={"X-API-Key": KEY, "Idempotency-Key": uuid.uuid4().hex})
            assert r.status_code == 200, r.text

        def run_callers(client, count: int) -> None:
            counter = iter(range(count))
            lock = threading.Lock()

            def caller() -> None:
                while True:
                    with lock:
                        n = next(counter, None)
                    if n is None:
                        return
                    one(client, n)

            workers = [threading.Thread(target=caller) for _ in range(threads)]
            for t in workers:
                t.start()
            for t in workers:
                t.join(600)

        # one client for both phases: leaving a test client's block runs the app's lifespan shutdown, which
        # stops the runtime (its job runner then answers every new call 503 REQUEST_IN_PROGRESS, as a stopping
        # worker does)
        with app.test_client() as client:
            run_callers(client, max(20, threads * 5))  # warm-up, not profiled: lazy provider, ledger, caches
            # fresh thread bridge (what create_app installs), so that its pool threads start under the profiler
            install_bridge(app, settings)
            threading.setprofile(start_profiling)
            try:
                t0 = time.perf_counter()
                run_callers(client, calls)
                elapsed = time.perf_counter() - t0
                for prof in profiles:  # freeze the numbers before shutdown work is recorded
                    prof.create_stats()
            finally:
                threading.setprofile(None)
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        try:
            stats.add(prof)
        except (TypeError, ValueError):  # a profiler that never saw a call
            pass
    return stats, elapsed, len(profiles)


def by_group(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        totals[_group(filename)] += max(tt, 0.0)
    return sorted(totals.items(), key=lambda kv: -kv[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--threads", type=int, default=4, help="concurrent callers (test-client threads)")
    p.add_argument("--top", type=int, default=35)
    p.add_argument("--out", help="write the merged pstats file here (snakeviz, pstats)")
    args = p.parse_args()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # the service's JSON logs (still written)
        stats, elapsed, n_profiles = profile(args.calls, args.threads)
    if args.out:
        stats.dump_stats(args.out)
    # blocking waits still pending when the stats are frozen (epoll, queue.get) come out negative: no CPU, dropped
    total = sum(max(tt, 0.0) for (_cc, _nc, tt, _ct, _c) in stats.stats.values())
    print(f"{args.calls} StartAutomation calls, {args.threads} callers, {elapsed:.1f} s wall, "
          f"{total:.2f} CPU s profiled in {n_profiles} threads = {total / args.calls * 1000:.2f} ms CPU per call "
          "(includes the test client's own cost; excludes the simulator)\n")
    print("CPU (own time) by package:")
    for name, tt in by_group(stats):
        if tt / total >= 0.005:
            print(f"  {name:24s} {tt:7.2f} s  {tt / total * 100:5.1f} %  {tt / args.calls * 1000:6.3f} ms/call")
    buf = io.StringIO()
    stats.stream = buf
    stats.sort_stats("tottime").print_stats(args.top)
    print("\nTop functions by own CPU time:")
    print("\n".join(buf.getvalue().splitlines()[6:]))
    buf = io.StringIO()
    stats.stream = buf
    stats.sort_stats("cumulative").print_stats(r"/service/", args.top)
    print("\nOur functions by cumulative CPU time:")
    print("\n".join(buf.getvalue().splitlines()[6:]))


if __name__ == "__main__":
    main()
