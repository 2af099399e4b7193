"""Simulator of Microsoft Entra ID (OpenID discovery, JWKS with key rotation, token endpoint, RS256 tokens).

    sim = EntraSimulator()
    server = SimulatorServer(sim, ssl_context=local_ca().server_context()).start()   # msal needs https
    token = sim.user_token()        # what the connector sends after the sandbox maker signed in

Sandbox mode runs it together with the Dataverse simulator (``service.sandbox.microsoft``). Print a sandbox
user token for the running sandbox: ``python -m service.sandbox.entra token``.
"""

from __future__ import annotations

from service.sandbox.entra import demo
from service.sandbox.entra.app import AppRegistration, EntraError, EntraSimulator

__all__ = ["AppRegistration", "EntraError", "EntraSimulator", "demo"]
