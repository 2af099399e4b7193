"""Run the Spotler simulator standalone.

    python -m service.sandbox.spotler --port 8081 --consumer-key K --consumer-secret S \
        [--latency-ms 50 --jitter-ms 20] [--fail-rate 0.1 --fail-status 503] [--tier basic]

The first line on stdout is ``SPOTLER_SIMULATOR_URL=http://127.0.0.1:PORT/integrationservice`` (port 0 picks
a free port), followed by the demo account's ids as ``#`` comment lines.
"""

from __future__ import annotations

import argparse
import sys

from service.sandbox.faults import FaultConfig
from service.sandbox.server import SimulatorServer, serve_pooled
from service.sandbox.spotler import accounts_app
from service.sandbox.spotler.app import BASE_PATH
from service.sandbox.spotler.demo import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, describe


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m service.sandbox.spotler", description="Spotler Mail+ simulator",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8081, help="port to listen on; 0 = a free port")
    p.add_argument("--consumer-key", default=SANDBOX_CONSUMER_KEY,
                   help="OAuth 1.0a consumer key the simulator accepts (SPOTLER_CONSUMER_KEY of the client)")
    p.add_argument("--consumer-secret", default=SANDBOX_CONSUMER_SECRET,
                   help="OAuth 1.0a consumer secret the simulator checks signatures with")
    p.add_argument("--tier", choices=("basic", "automation", "ecommerce"), default="automation",
                   help="Spotler product of the account: on basic the audience calls answer 403")
    p.add_argument("--auth-failure-status", type=int, choices=(401, 403), default=401,
                   help="HTTP status of an answer to bad credentials")
    p.add_argument("--date-format", choices=("epoch_ms", "iso"), default="epoch_ms",
                   help="how dates appear in answers: epoch milliseconds (as observed live) or ISO 8601 (as the "
                        "2022 description documents)")
    p.add_argument("--list-shape", choices=("paged", "array"), default="paged",
                   help="how the event feeds list items: {paging, items} (as documented) or a bare array (as "
                        "observed on integrationservice-1.1.0)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added delay of every answer, in milliseconds")
    p.add_argument("--jitter-ms", type=float, default=0.0,
                   help="random extra delay of every answer, up to this many milliseconds")
    p.add_argument("--fail-rate", type=float, default=0.0,
                   help="share of calls (0 to 1) answered with --fail-status instead")
    p.add_argument("--fail-status", type=int, default=503, help="HTTP status of an injected failure")
    p.add_argument("--retry-after", type=float, default=1.0,
                   help="Retry-After seconds sent with an injected 429 or 503")
    p.add_argument("--hang-rate", type=float, default=0.0,
                   help="share of calls (0 to 1) that hang for --hang-seconds before answering")
    p.add_argument("--hang-seconds", type=float, default=30.0, help="how long an injected hang lasts")
    p.add_argument("--reset-rate", type=float, default=0.0,
                   help="share of calls (0 to 1) whose connection is closed without an answer")
    p.add_argument("--seed", type=int, default=None, help="random seed, for reproducible injected faults")
    p.add_argument("--pooled", type=int, default=0, metavar="PROCESSES",
                   help="benchmarks: serve under gunicorn with this many processes on the one port, keep-alive "
                        "connections (each process has its own state); 0 = werkzeug's server, one process")
    p.add_argument("--accounts", choices=("all", "first"), default="all",
                   help="serve every demo account of SANDBOX_ACCOUNTS (the first with --consumer-key/--consumer-secret) "
                        "or the first alone")
    p.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the process that started this one is gone (sandbox mode uses it)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        faults = FaultConfig(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, fail_rate=args.fail_rate,
                             fail_status=args.fail_status, retry_after=args.retry_after, hang_rate=args.hang_rate,
                             hang_seconds=args.hang_seconds, reset_rate=args.reset_rate, seed=args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = accounts_app({"consumer_key": args.consumer_key, "consumer_secret": args.consumer_secret},
                         all_accounts=args.accounts == "all", first_options={"tier": args.tier, "faults": faults},
                         options={"auth_failure_status": args.auth_failure_status, "date_format": args.date_format,
                                  "list_shape": args.list_shape})

    def ready(url: str) -> None:
        for line in describe(url + BASE_PATH):
            print(line)
        print(f"# control: {url}/__sim__/stats, {url}/__sim__/state, {url}/__sim__/faults, POST {url}/__sim__/reset",
              flush=True)
        print(f"# events: POST {url}/__sim__/signup|bounce|open|click|unsubscribe, {url}/__sim__/clock", flush=True)
        print(f"# accounts (by OAuth consumer key; control calls: header X-Sim-Account: name): "
              f"{', '.join(a.name for a in app.accounts)}", flush=True)

    if args.pooled:
        serve_pooled(app, host=args.host, port=args.port, processes=args.pooled, on_ready=ready)
        return 0
    SimulatorServer(app, host=args.host, port=args.port).serve_foreground(on_ready=ready,
                                                                        exit_with_parent=args.exit_with_parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
