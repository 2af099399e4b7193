"""Spotler Mail+ simulator: ``SpotlerSimulator`` (WSGI app with built-in fault injection) and the demo ids.

    sim = SpotlerSimulator(consumer_key="K", consumer_secret="S")
    with SimulatorServer(sim) as url:           # SpotlerConfig(base_url=url + BASE_PATH, ...)
        ...
    running = start_sandbox(consumer_key="K", consumer_secret="S")   # running.url ends in /integrationservice

Standalone: ``python -m service.sandbox.spotler --port 0 --consumer-key K --consumer-secret S``.
"""

from __future__ import annotations

from typing import Any

from service.sandbox.spotler.app import BASE_PATH, SpotlerSimulator
from service.sandbox.spotler.demo import DEMO, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

__all__ = ["BASE_PATH", "DEMO", "SANDBOX_CONSUMER_KEY", "SANDBOX_CONSUMER_SECRET", "SpotlerSimulator",
           "start_sandbox"]


def start_sandbox(consumer_key: str = SANDBOX_CONSUMER_KEY, consumer_secret: str = SANDBOX_CONSUMER_SECRET,
                  **kwargs: Any):
    """Serve a seeded simulator on 127.0.0.1 (ephemeral port) in a daemon thread.

    Returns ``service.sandbox.launch.RunningSimulator`` whose ``url`` is the client's base URL
    (``http://127.0.0.1:NNNN/integrationservice``); ``.simulator`` is the SpotlerSimulator.
    """
    from service.sandbox.launch import serve_in_thread

    sim = SpotlerSimulator(consumer_key, consumer_secret, **kwargs)
    return serve_in_thread(sim, sim, BASE_PATH)
