"""Cost per call of the per-tenant budgets (service/actions/budgets.py), in this process and on Redis.

    .venv/bin/python -m bench.budgets [--calls 5000] [--tenants 1000] [--redis-url redis://127.0.0.1:6379/15]

Measures, per call, the wall time and this process's CPU of ``with budgets.admit(tenant): pass`` with both
budgets on (the defaults: 8 at once, 600 per minute; the tenants taken in turn so no budget refuses) and of
``RefusedCredentials.check``: memory first, then Redis (its own key prefix, deleted afterwards; skipped when
Redis does not answer). Redis here is on loopback: a remote one adds its round trips (2 per admit: one Lua script
taking the lease and the moving window together, the release; 1 per check).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

from service.actions.budgets import RefusedCredentials, TenantBudgets, open_store


def _measure(label: str, calls: int, fn) -> dict:
    fn(0)  # warm: scripts loaded, connection open
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        fn(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    row = {"case": label, "calls": calls, "ms_per_call": round(wall * 1000 / calls, 4),
           "cpu_ms_per_call": round(cpu * 1000 / calls, 4)}
    print(f"{label:<34} {row['ms_per_call']:>8.4f} ms/call  {row['cpu_ms_per_call']:>8.4f} ms CPU/call")
    return row


def run(calls: int, tenants: int, redis_url: str) -> list[dict]:
    names = [f"t-{i:062d}" for i in range(tenants)]
    rows = []
    prefix = "bench-budgets-" + uuid.uuid4().hex[:8]
    stores = [("memory", open_store), ("redis", lambda: open_store(redis_url, prefix=prefix))]
    for where, make in stores:
        store = make()
        if where == "redis":
            try:
                store.redis.ping()
            except Exception as exc:  # noqa: BLE001 - any failure: no Redis here
                print(f"redis: skipped ({type(exc).__name__} at {redis_url})")
                continue
        budgets = TenantBudgets(store, max_concurrent=8, per_minute=max(600, calls // tenants + 2))
        throttle = RefusedCredentials(store, per_minute=10)

        def admit(i: int, budgets=budgets) -> None:
            with budgets.admit(names[i % tenants]):
                pass

        def check(i: int, throttle=throttle) -> None:
            throttle.check(names[i % tenants])

        rows.append(_measure(f"{where}: admit()", calls, admit))
        rows.append(_measure(f"{where}: refused.check()", calls, check))
        if where == "redis":
            keys = list(store.redis.scan_iter(match=prefix + ":*"))
            for start in range(0, len(keys), 500):
                store.redis.delete(*keys[start:start + 500])
        store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    rows = run(args.calls, args.tenants, args.redis_url)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
