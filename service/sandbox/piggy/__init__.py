"""Simulator of the Piggy (Leat) OAuth client API v3.

    sim, app = build(token="T")                 # the simulator and its fault-injecting WSGI wrapper
    with SimulatorServer(app) as url:           # http://127.0.0.1:NNNN -> PiggyConfig(base_url=url, ...)
        ...
    running = start_sandbox(token="T")          # sandbox mode: background thread, running.url / running.stop()

Standalone: ``python -m service.sandbox.piggy --port 0 --token T``.
"""

from __future__ import annotations

from typing import Any

from service.sandbox.faults import FaultConfig, FaultInjector
from service.sandbox.piggy import demo
from service.sandbox.piggy.app import FakeClock, PiggySimulator, create_app

__all__ = ["FakeClock", "PiggySimulator", "build", "create_app", "demo", "start_sandbox"]

FAULT_ERROR_BODY = {"status_code": 503, "code": 503, "message": "Simulated upstream failure."}


def build(*, token: str | None = None, faults: FaultConfig | None = None,
          **kwargs: Any) -> tuple[PiggySimulator, FaultInjector]:
    """A simulator (``token`` is accepted in addition to the demo token) and its FaultInjector wrapper."""
    if token is not None and "tokens" not in kwargs:
        kwargs["tokens"] = (token, demo.DEMO_TOKEN)
    sim = create_app(**kwargs)
    return sim, FaultInjector(sim, faults, stats_provider=sim.state, error_body=FAULT_ERROR_BODY)


def start_sandbox(token: str | None = None, **kwargs: Any):
    """Serve a seeded simulator on 127.0.0.1 (ephemeral port) in a daemon thread."""
    from service.sandbox.launch import serve_in_thread

    sim, app = build(token=token, **kwargs)
    return serve_in_thread(app, sim)
