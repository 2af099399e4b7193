"""Faithful HTTP simulators of the upstream APIs (tests, benchmarks, sandbox mode).

Generic parts: :mod:`service.sandbox.server` (run a WSGI app on loopback) and :mod:`service.sandbox.faults`
(latency, errors, hangs and connection resets as WSGI middleware). One package per platform
(``service.sandbox.spotler``, ...), and per Microsoft service (``service.sandbox.entra``,
``service.sandbox.dataverse``; both served over HTTPS on a local CA by ``service.sandbox.microsoft``).
Simulators may use werkzeug, never Flask or Connexion.
"""

from service.sandbox.faults import FaultConfig, FaultInjector
from service.sandbox.server import SimulatorServer

__all__ = ["FaultConfig", "FaultInjector", "SimulatorServer"]
