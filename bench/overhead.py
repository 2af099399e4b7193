"""Overhead of StartAutomation through the service against the same upstream calls made directly.

    .venv/bin/python -m bench.overhead [--latency-ms 50] [--calls-c1 300] [--calls-c32 2000]

The Spotler simulator runs as its own process with a fixed latency (no jitter), keep-alive connections
(``--sim-processes``). Measured, at concurrency 1 and 32:

* ``service``: POST /automations/{welcome}/start through the service started as the Procfile starts it
  (gunicorn, 2 uvicorn workers), fresh Idempotency-Key per call, contacts by externalId (5 demo contacts);
* ``direct``: the upstream calls the service makes for that action, with our provider/client in this process
  (threads): the trigger alone (1 call), or ``find_contact`` + ``start_automation`` (2 calls) when the service
  made two upstream calls per action (counted by the simulator);
* ``baseline``: the naive Flask + requests proxy (bench/baseline_proxy.py, gunicorn gthread 2 x 32) that only
  forwards the trigger.

Concurrency 32 runs twice: callers joining over 1 s ("ramp") and all 32 connections opened at once ("at once").
Targets (issue #15, every row): service p50 <= direct p50 x 1.1; service p99 <= direct p99 x 1.25.
"""

from __future__ import annotations

import argparse
import threading
import uuid

from bench.load import closed_loop, threaded_loop
from bench.processes import API_KEY, Stack, connections_per_worker
from bench.report import machine_info, md_table, report
from service.providers.base import ContactRef
from service.providers.spotler import SpotlerConfig, SpotlerProvider
from service.sandbox.launch import SANDBOX_CREDENTIALS
from service.sandbox.spotler import DEMO

WELCOME = DEMO.automations["welcome"]  # no participation limit
CONTACTS = [DEMO.contacts[k] for k in ("jan", "piet", "anna", "shared_a", "shared_b")]


def start_call(path_prefix: str = ""):
    async def call(conn, n):
        return await conn.request("POST", f"{path_prefix}/automations/{WELCOME}/start",
                                  json_body={"contact": {"externalId": CONTACTS[n % len(CONTACTS)]}},
                                  headers={"X-API-Key": API_KEY, "Idempotency-Key": uuid.uuid4().hex})
    return call


def provider_for(url: str, pool_maxsize: int = 32) -> SpotlerProvider:
    c = SANDBOX_CREDENTIALS["spotler"]
    return SpotlerProvider(SpotlerConfig(base_url=url, consumer_key=c["consumer_key"],
                                         consumer_secret=c["consumer_secret"], pool_maxsize=pool_maxsize))


def upstream_requests(sim) -> int:
    return sum(n for route, n in sim.stats()["requests"].items() if not route.startswith("GET /automation/list")
               and "properties" not in route)


#: issue #15 targets at concurrency 32, as ratios to the direct call measured in the same run
P50_FACTOR = 1.1
P99_FACTOR = 1.25


def run(args: argparse.Namespace) -> dict:
    out: dict = {"machine": machine_info(), "latency_ms": args.latency_ms, "rows": []}
    with Stack() as st:
        sim = st.sim(latency_ms=args.latency_ms, jitter_ms=0, pooled=args.sim_processes)
        service = st.service(upstream_url=sim.url)
        baseline = st.baseline(upstream_url=sim.url)
        floor = st.baseline(upstream_url=sim.url, floor=True) if args.floor else None
        provider = provider_for(sim.url)

        def direct_full(n: int) -> None:
            contact = provider.find_contact(ContactRef(external_id=CONTACTS[n % len(CONTACTS)]))
            res = provider.start_automation(WELCOME, contact, [])
            assert res.result == "OK", res

        def direct_trigger(n: int) -> None:
            res = provider.client.trigger_automation(WELCOME, CONTACTS[n % len(CONTACTS)])
            assert res["result"] == "OK", res

        # warm-up: pools, caches (automation list, properties), first-request imports in every worker
        for _ in range(2):
            closed_loop(start_call(), concurrency=8, base_url=service.base_url, total=64)
        closed_loop(start_call(), concurrency=8, base_url=baseline.base_url, total=32)
        if floor is not None:
            closed_loop(start_call(), concurrency=8, base_url=floor.base_url, total=32)
        threaded_loop(direct_full, concurrency=8, total=32)

        plan = [(1, args.calls_c1, 1.0, "ramp"), (32, args.calls_c32, 1.0, "ramp")]
        if not args.no_burst:
            plan.append((32, args.calls_c32, 0.0, "at once"))
        for conc, calls, ramp_s, opening in plan:
            before = upstream_requests(sim)
            spread: dict = {}
            sampler = threading.Timer(ramp_s + 1.0, lambda into=spread: into.update(
                connections_per_worker(service.base_url.rsplit(":", 1)[1])))
            sampler.start()
            svc = closed_loop(start_call(), concurrency=conc, base_url=service.base_url, total=calls, ramp_s=ramp_s)
            sampler.join(10)
            per_action = (upstream_requests(sim) - before) / max(1, svc.ok)
            # the direct variant that makes as many upstream calls per action as the service did
            if per_action > 1.5:
                direct = threaded_loop(direct_full, concurrency=conc, total=calls)
                compared = "direct_2_calls"
            else:
                direct = threaded_loop(direct_trigger, concurrency=conc, total=calls)
                compared = "direct_trigger"
            base = closed_loop(start_call(), concurrency=conc, base_url=baseline.base_url, total=calls,
                               ramp_s=ramp_s)
            row = {
                "concurrency": conc, "calls": calls, "connections_opened": opening,
                "upstream_calls_per_action": round(per_action, 2),
                "service": svc.summary(), compared: direct.summary(), "baseline": base.summary(),
                "compared_with": compared,
                "connections_per_worker": sorted(spread.values(), reverse=True),
            }
            if floor is not None:
                row["floor"] = closed_loop(start_call(), concurrency=conc, base_url=floor.base_url, total=calls,
                                           ramp_s=ramp_s).summary()
            d50, d99 = direct.summary()["p50_ms"], direct.summary()["p99_ms"]
            s50, s99 = svc.summary()["p50_ms"], svc.summary()["p99_ms"]
            row["p50_target_ms"] = round(d50 * P50_FACTOR, 2)
            row["p99_target_ms"] = round(d99 * P99_FACTOR, 2)
            row["p50_ok"] = s50 <= row["p50_target_ms"]
            row["p99_ok"] = s99 <= row["p99_target_ms"]
            out["rows"].append(row)
    return out


def markdown(out: dict) -> str:
    rows = []
    for r in out["rows"]:
        for name in ("service", r["compared_with"], "baseline", *(["floor"] if "floor" in r else [])):
            s = r[name]
            rows.append([r["concurrency"], r.get("connections_opened", "ramp"), name, s["ok"], s["failed"],
                         s["p50_ms"], s["p99_ms"], s["rate"]])
    t1 = md_table(["conc.", "connections", "path", "ok", "failed", "p50 ms", "p99 ms", "calls/s"], rows)
    checks = []
    for r in out["rows"]:
        d = r[r["compared_with"]]
        s, b = r["service"], r["baseline"]
        checks.append([r["concurrency"], r.get("connections_opened", "ramp"), r["upstream_calls_per_action"],
                       r["compared_with"],
                       round(s["p50_ms"] / d["p50_ms"], 3), round(s["p99_ms"] / d["p99_ms"], 3),
                       f'{s["p50_ms"]} <= {r["p50_target_ms"]} (x{P50_FACTOR}): {"PASS" if r["p50_ok"] else "FAIL"}',
                       f'{s["p99_ms"]} <= {r["p99_target_ms"]} (x{P99_FACTOR}): {"PASS" if r["p99_ok"] else "FAIL"}',
                       round(s["p50_ms"] / b["p50_ms"], 3), round(s["p99_ms"] / b["p99_ms"], 3)])
    spread = [[r["concurrency"], r.get("connections_opened", "ramp"),
               " / ".join(map(str, r.get("connections_per_worker") or [])) or "-"] for r in out["rows"]]
    t3 = md_table(["conc.", "connections", "service connections per worker (1 s in)"], spread)
    floors = [[r["concurrency"], r.get("connections_opened", "ramp"),
               round(r["baseline"]["p50_ms"] / r[r["compared_with"]]["p50_ms"], 3),
               round(r["baseline"]["p99_ms"] / r[r["compared_with"]]["p99_ms"], 3),
               round(r["floor"]["p50_ms"] / r[r["compared_with"]]["p50_ms"], 3),
               round(r["floor"]["p99_ms"] / r[r["compared_with"]]["p99_ms"], 3)] for r in out["rows"] if "floor" in r]
    if floors:
        t3 += "\n\nThe same ratios for the naive proxy and the floor (bench/floor_proxy.py), as information:\n\n" + md_table(
            ["conc.", "connections", "naive proxy p50 / direct", "naive proxy p99 / direct", "floor p50 / direct",
             "floor p99 / direct"], floors)
    t2 = md_table(["conc.", "connections", "upstream calls/action", "direct variant", "p50 ratio", "p99 ratio",
                   "p50 target", "p99 target", "p50 vs baseline", "p99 vs baseline"], checks)
    return f"Upstream latency {out['latency_ms']} ms (fixed).\n\n{t1}\n\n{t2}\n\n{t3}\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latency-ms", type=float, default=50)
    p.add_argument("--calls-c1", type=int, default=300)
    p.add_argument("--calls-c32", type=int, default=2000)
    p.add_argument("--sim-processes", type=int, default=1,
                   help="simulator under gunicorn with keep-alive, this many processes (1 keeps one request "
                        "count); 0 = the stock werkzeug simulator (a new connection per request)")
    p.add_argument("--no-burst", action="store_true",
                   help="skip the third run at concurrency 32 whose connections all open at once")
    p.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure the floor (bench/floor_proxy.py): the proxy plus the required features")
    p.add_argument("--json", help="also write the raw results to this file")
    args = p.parse_args()
    report(args, run, markdown)


if __name__ == "__main__":
    main()
