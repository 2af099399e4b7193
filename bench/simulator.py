"""The Spotler simulator with a MIX of faults, as its own process, for bench/faults.py and bench/crash.py.

    python -m bench.simulator --port 0 --consumer-key K --consumer-secret S --fault-rate 0.2 \
        [--latency-ms 5] [--hang-seconds 2.5] [--retry-after 1] [--seed 8]

The stock simulator injects one kind of fault at a time (one ``FaultConfig``). Here, each upstream request
independently gets a fault with probability ``--fault-rate``; the kind is drawn uniformly from:

=================  ==========================================================  ====================
kind               what the caller sees                                        side effect applied?
=================  ==========================================================  ====================
``status_429``     429 with ``Retry-After``                                    no
``status_503``     503 with ``Retry-After``                                    no
``status_500``     500                                                         no
``hang_fail``      nothing for ``--hang-seconds`` (past our read timeout), 503 no
``hang_proceed``   nothing for ``--hang-seconds``, then the request IS handled  yes (after give-up)
``reset_before``   connection reset before the request is handled              no
``reset_after``    the request IS handled, then the connection is reset        yes (answer lost)
=================  ==========================================================  ====================

Each kind is the simulator's own ``FaultInjector`` (service/sandbox/faults.py) configured with rate 1 for that
kind, wrapped around the same simulator instance. ``GET /__bench__/faults`` lists every injected fault
(method, path, kind, the trigger's ``voucherCode`` / tag names from the body, so that a benchmark can tell which
logical call an "after" fault hit); ``GET /__bench__/state`` returns the automation runs (with their fields)
and every contact's tags and scores. The stock control endpoints (``/__sim__/stats``, ``/__sim__/reset``) work
as usual. Faults apply only to ``/integrationservice`` paths.
"""

from __future__ import annotations

import argparse
import json
import random
import threading

from service.sandbox.faults import FaultConfig, FaultInjector, peek_body
from service.sandbox.server import SimulatorServer
from service.sandbox.spotler.app import BASE_PATH, SpotlerSimulator
from service.sandbox.spotler.demo import describe

KINDS = ("status_429", "status_503", "status_500", "hang_fail", "hang_proceed", "reset_before", "reset_after")
AFTER_KINDS = ("hang_proceed", "reset_after")  # the upstream applied the request; the caller cannot know


class FaultMix:
    def __init__(self, sim: SpotlerSimulator, rate: float, *, hang_seconds: float, retry_after: float,
                 seed: int | None, kinds: tuple[str, ...] = KINDS) -> None:
        self.sim = sim
        self.rate = rate
        self.kinds = kinds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.log: list[dict] = []
        configs = {
            "status_429": FaultConfig(fail_rate=1, fail_status=429, retry_after=retry_after),
            "status_503": FaultConfig(fail_rate=1, fail_status=503, retry_after=retry_after),
            "status_500": FaultConfig(fail_rate=1, fail_status=500, retry_after=None),
            "hang_fail": FaultConfig(hang_rate=1, hang_seconds=hang_seconds, hang_then="fail"),
            "hang_proceed": FaultConfig(hang_rate=1, hang_seconds=hang_seconds, hang_then="proceed"),
            "reset_before": FaultConfig(reset_rate=1, reset_phase="before"),
            "reset_after": FaultConfig(reset_rate=1, reset_phase="after"),
        }
        # sim (not sim._wsgi): the stock injector (latency) runs inside, as for any request
        self.injectors = {k: FaultInjector(sim, cfg) for k, cfg in configs.items()}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/__bench__/faults":
            with self._lock:
                return _json(start_response, {"rate": self.rate, "faults": list(self.log)})
        if path == "/__bench__/state":
            return _json(start_response, self.state())
        if not path.startswith(BASE_PATH) or self.rate <= 0:
            return self.sim(environ, start_response)
        with self._lock:
            kind = self._rng.choice(self.kinds) if self._rng.random() < self.rate else None
        if kind is None:
            return self.sim(environ, start_response)
        body = peek_body(environ)
        with self._lock:
            self.log.append({"kind": kind, "method": environ.get("REQUEST_METHOD"), "path": path[len(BASE_PATH):],
                             "marker": _marker(body)})
        return self.injectors[kind](environ, start_response)

    def state(self) -> dict:
        with self.sim.lock:
            runs = [{"automationContactId": r["automationContactId"], "externalContactId": r["externalContactId"],
                     "status": r["status"], "fields": {f["name"]: f.get("value") for f in r.get("fields") or []}}
                    for r in self.sim.runs.values()]
            tags = {eid: dict(t) for eid, t in self.sim.contact_tags.items()}
            props = {eid: {k: v for k, v in c["properties"].items() if isinstance(v, (str, int, float))}
                     for eid, c in self.sim.contacts.items()}
        return {"runs": runs, "tags": tags, "properties": props}


def _marker(body: bytes):
    """What identifies the logical call in an upstream request body (voucherCode, tag names, property values)."""
    try:
        doc = json.loads(body or b"null")
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    for f in doc.get("automationFields") or []:
        if isinstance(f, dict) and f.get("name") == "voucherCode":
            return f.get("value")
    if doc.get("tag"):
        return doc["tag"]
    if isinstance(doc.get("tags"), list):
        return ",".join(map(str, doc["tags"]))
    props = (doc.get("contact") or {}).get("properties") if isinstance(doc.get("contact"), dict) else None
    if isinstance(props, dict):
        return json.dumps(props, sort_keys=True)
    return None


def _json(start_response, payload) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.simulator", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--consumer-key", required=True)
    p.add_argument("--consumer-secret", required=True)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--fault-rate", type=float, default=0.2)
    p.add_argument("--hang-seconds", type=float, default=2.5)
    p.add_argument("--retry-after", type=float, default=1.0)
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS))
    p.add_argument("--seed", type=int, default=8)
    args = p.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        p.error(f"unknown kinds: {sorted(unknown)}")
    sim = SpotlerSimulator(args.consumer_key, args.consumer_secret,
                           faults=FaultConfig(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms))
    app = FaultMix(sim, args.fault_rate, hang_seconds=args.hang_seconds, retry_after=args.retry_after,
                   seed=args.seed, kinds=kinds)

    def ready(url: str) -> None:
        for line in describe(url + BASE_PATH):
            print(line)
        print(f"# fault mix {args.fault_rate:.0%} of {', '.join(kinds)}; log at {url}/__bench__/faults", flush=True)

    SimulatorServer(app, host=args.host, port=args.port).serve_foreground(on_ready=ready)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
