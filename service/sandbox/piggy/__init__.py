"""Simulator of the Piggy (Leat) OAuth client API v3.

    sim, app = build(token="T")                 # the simulator and its fault-injecting WSGI wrapper
    with SimulatorServer(app) as url:           # http://127.0.0.1:NNNN -> PiggyConfig(base_url=url, ...)
        ...
    running = start_sandbox(token="T")          # sandbox mode: background thread, running.url / running.stop()

Standalone: ``python -m service.sandbox.piggy --port 0 --token T``.
"""

from __future__ import annotations

from typing import Any

from service.sandbox.accounts import AccountDispatcher, account_index, build_accounts
from service.sandbox.faults import FaultConfig, FaultInjector
from service.sandbox.piggy import demo, demo_second
from service.sandbox.piggy.app import FakeClock, PiggySimulator, create_app

__all__ = ["FakeClock", "PiggySimulator", "build", "accounts_app", "create_app", "demo", "start_sandbox"]

FAULT_ERROR_BODY = {"status_code": 503, "code": 503, "message": "Simulated upstream failure."}


def build(*, token: str | None = None, faults: FaultConfig | None = None,
          **kwargs: Any) -> tuple[PiggySimulator, FaultInjector]:
    """A simulator (``token`` is accepted in addition to the demo token) and its FaultInjector wrapper."""
    if token is not None and "tokens" not in kwargs:
        kwargs["tokens"] = (token, demo.DEMO_TOKEN)
    sim = create_app(**kwargs)
    return sim, FaultInjector(sim, faults, stats_provider=sim.state, error_body=FAULT_ERROR_BODY)


def start_sandbox(token: str | None = None, *, all_accounts: bool = True, **kwargs: Any):
    """Serve seeded simulators on 127.0.0.1 (ephemeral port) in a daemon thread: the first demo account (accepting
    ``token`` too) with ``kwargs``, and the other demo accounts of ``SANDBOX_ACCOUNTS["piggy"]`` (unless
    ``all_accounts=False``; :mod:`service.sandbox.accounts`). ``.simulator`` is the first account's."""
    from service.sandbox.launch import serve_in_thread

    return serve_in_thread(accounts_app({"token": token}, all_accounts=all_accounts, first_options=kwargs))


def _build_account(entry: dict[str, Any], first: bool, options: dict[str, Any]) -> tuple[Any, Any]:
    if first:  # as before: this token and the demo token
        return build(token=entry["token"], **options)
    return build(tokens=(entry["token"],), demo_data=demo_second, **options)


def pick_account(environ: dict, accounts: list) -> int | None:
    """The account a request is for: the one that accepts its Bearer token (personal, or issued by it)."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not token:
        return None
    return account_index(accounts, lambda sim: token in sim.personal_tokens or token in sim.issued_tokens)


def accounts_app(first: dict[str, Any] | None = None, **kwargs: Any) -> AccountDispatcher:
    """One WSGI app serving every demo account of ``SANDBOX_ACCOUNTS["piggy"]`` (see
    :func:`service.sandbox.accounts.build_accounts` for the arguments); the second one is :mod:`.demo_second`.
    ``POST /oauth/token`` carries no token: it reaches the first account (or the one ``X-Sim-Account`` names)."""
    from service.sandbox.launch import SANDBOX_ACCOUNTS

    return build_accounts(SANDBOX_ACCOUNTS["piggy"], _build_account, pick_account, first, **kwargs)
