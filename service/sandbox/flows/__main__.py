"""``python -m service.sandbox.flows --port 8099``: a stand-in for Power Automate that prints what it receives.

It creates one flow and prints its callback URL (``FLOW_CALLBACK_URL=...``: give it to ``POST /hooks`` as
``callbackUrl``), then one line per event that arrives. See docs/triggers.md, "Webhook triggers".
"""

from __future__ import annotations

import argparse
import json
import sys

from service.sandbox.flows.app import FlowsSimulator
from service.sandbox.server import SimulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.sandbox.flows", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    args = parser.parse_args(argv)

    def show(fid: str, record: dict) -> None:
        print(f"flow {fid} received: {json.dumps(record['body'], ensure_ascii=False)}", flush=True)

    sim = FlowsSimulator(on_delivery=show)

    def ready(url: str) -> None:
        flow = sim.create_flow(url, "demo")
        print(f"FLOW_CALLBACK_URL={flow['callbackUrl']}", flush=True)
        sys.stdout.flush()

    SimulatorServer(sim, host=args.host, port=args.port).serve_foreground(on_ready=ready)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
