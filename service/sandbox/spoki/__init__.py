"""Simulator of the Spoki REST API v1 and its Start Automation webhook.

    sim, app = build(api_key="K")               # the simulator and its fault-injecting WSGI wrapper
    with SimulatorServer(app) as url:           # http://127.0.0.1:NNNN -> SpokiConfig(base_url=url, ...)
        ...
    running = start_sandbox(api_key="K")        # sandbox mode: background thread, running.url / running.stop()

Standalone: ``python -m service.sandbox.spoki --port 0 --api-key K``.
"""

from __future__ import annotations

from typing import Any

from service.sandbox.faults import FaultConfig, FaultInjector
from service.sandbox.spoki import demo
from service.sandbox.spoki.app import SpokiSimulator, create_app

__all__ = ["SpokiSimulator", "build", "create_app", "demo", "start_sandbox"]

FAULT_ERROR_BODY = {"detail": "Simulated upstream failure."}


def build(*, api_key: str | None = None, faults: FaultConfig | None = None,
          **kwargs: Any) -> tuple[SpokiSimulator, FaultInjector]:
    """A simulator (``api_key`` is accepted in addition to the demo key) and its FaultInjector wrapper."""
    if api_key is not None and "api_keys" not in kwargs:
        kwargs["api_keys"] = (api_key, demo.DEMO_API_KEY)
    sim = create_app(**kwargs)
    return sim, FaultInjector(sim, faults, stats_provider=sim.state, error_body=FAULT_ERROR_BODY)


def start_sandbox(api_key: str | None = None, **kwargs: Any):
    """Serve a seeded simulator on 127.0.0.1 (ephemeral port) in a daemon thread."""
    from service.sandbox.launch import serve_in_thread

    sim, app = build(api_key=api_key, **kwargs)
    return serve_in_thread(app, sim)
