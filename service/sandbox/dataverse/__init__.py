"""Simulator of the Dataverse Web API: contacts, leads and accounts by id, notes (annotations).

    entra = EntraSimulator()
    dataverse, app = build(entra.verify)            # the simulator and its fault-injecting WSGI wrapper
    SimulatorServer(app, ssl_context=tls.server_context()).start()

Sandbox mode runs it together with the Entra ID simulator (``service.sandbox.microsoft``).
"""

from __future__ import annotations

from typing import Any

from service.sandbox.dataverse import demo
from service.sandbox.dataverse.app import API, ERROR_BODY, DataverseSimulator
from service.sandbox.faults import FaultConfig, FaultInjector

__all__ = ["API", "DataverseSimulator", "build", "demo"]


def build(verify_token, *, faults: FaultConfig | None = None,
          **kwargs: Any) -> tuple[DataverseSimulator, FaultInjector]:
    """A seeded simulator and its FaultInjector wrapper (429 + Retry-After, 503, resets; Dataverse error body)."""
    sim = DataverseSimulator(verify_token, **kwargs)
    return sim, FaultInjector(sim, faults, stats_provider=sim.state, error_body=ERROR_BODY)
