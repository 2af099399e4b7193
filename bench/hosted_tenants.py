"""Hosted mode's bounded cost (issue 22, goal 6): a worker's RSS while 10,000 tenants call in turn, and the CPU a
call costs in hosted mode over single mode - both modes in one run.

    .venv/bin/python -m bench.hosted_tenants [--tenants 10000] [--calls 2000] [--rounds 4] [--json PATH]

In process (the app's test client, the same factory as gunicorn's workers), the Spotler simulator as its own
process (so its memory is not counted). Tenants: ``--tenants`` distinct Spotler consumer keys, each calling
``GET /connection`` once in turn (the simulator refuses the unknown keys: every call builds and caches that
account's client, session and caches, then answers 401) - RSS (``VmRSS``) is read every 1,000 tenants; the LRU
(``HOSTED_CLIENTS_MAX``) bounds it. CPU: ``GET /automations`` with the list cached, ``--calls`` calls per mode in
``--rounds`` interleaved rounds, ``time.process_time()`` per call (this process: the app's threads included).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from service.app import create_app
from service.config import Settings
from service.sandbox.launch import SANDBOX_CREDENTIALS, start_process

RSS_TARGET_MB = 120.0
CPU_TARGET_MS = 0.3
API_KEY = "bench-key-0123456789abcdef"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hosted_tenants", description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", default=None)
    parser.add_argument("--redis-url", default="", help="count the per-tenant budgets on this Redis (REDIS_URL); "
                        "default: in the worker's memory")
    args = parser.parse_args(argv)

    sim = start_process("spotler")
    tmp = tempfile.mkdtemp(prefix="bench-hosted-")
    try:
        base = Settings(api_keys=(API_KEY,), list_cache_seconds=3600, upstream_max_retries=0, log_level="WARNING",
                        database_url=f"sqlite:///{tmp}/ledger.db")
        creds = SANDBOX_CREDENTIALS["spotler"]
        key = {"X-API-Key": API_KEY}
        account = {**key, "X-Platform": "spotler", "X-Platform-Key": creds["consumer_key"],
                   "X-Platform-Secret": creds["consumer_secret"]}
        # the tenants first, with the hosted app alone in this process (as in a worker)
        # every guarantee on (budgets, throttle); the 10,000 made-up tenants come from one client, so the
        # refused-credentials throttle - which would rightly stop them - is off for this run
        hosted = create_app(base.with_(tenancy="hosted", sandbox_upstream_urls=(f"spotler={sim.url}",),
                                       refused_credentials_per_minute=0, redis_url=args.redis_url,
                                       tenant_calls_per_minute=1_000_000)).test_client()  # counted, never hit
        with hosted:
            assert hosted.get("/automations", headers=account).status_code == 200
            rss = [(0, round(rss_mb(), 1))]
            started = time.monotonic()
            for i in range(1, args.tenants + 1):
                r = hosted.get("/connection", headers={**key, "X-Platform": "spotler",
                                                      "X-Platform-Key": f"bench-tenant-{i:06d}",
                                                      "X-Platform-Secret": f"bench-secret-{i:06d}"})
                assert r.status_code == 401, r.text
                if i % 1000 == 0:
                    rss.append((i, round(rss_mb(), 1)))
            tenants_s = time.monotonic() - started
            cached = hosted.app.runtime.hosted.cached_accounts()
            single = create_app(base.with_(sandbox_upstream_url=sim.url)).test_client()
            with single:
                for client, headers in ((single, key), (hosted, account)):  # warm-up: the list cached
                    for _ in range(50):
                        assert client.get("/automations", headers=headers).status_code == 200
                cpu = {"single": 0.0, "hosted": 0.0}
                per_round = max(1, args.calls // args.rounds)
                for _ in range(args.rounds):
                    for mode, client, headers in (("single", single, key), ("hosted", hosted, account)):
                        started = time.process_time()
                        for _ in range(per_round):
                            client.get("/automations", headers=headers)
                        cpu[mode] += time.process_time() - started
                calls = per_round * args.rounds
                cpu_ms = {mode: cpu[mode] * 1000 / calls for mode in cpu}
    finally:
        sim.stop()
    extra = cpu_ms["hosted"] - cpu_ms["single"]
    result = {"cpu_ms_per_call": {k: round(v, 3) for k, v in cpu_ms.items()}, "hosted_extra_ms": round(extra, 3),
              "calls_per_mode": calls, "tenants": args.tenants, "tenants_seconds": round(tenants_s, 1),
              "rss_mb": rss, "accounts_cached": cached,
              "ok": max(r for _, r in rss) < RSS_TARGET_MB and extra <= CPU_TARGET_MS}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
