"""Simulator of the Spoki REST API v1 and its Start Automation webhook.

    sim, app = build(api_key="K")               # the simulator and its fault-injecting WSGI wrapper
    with SimulatorServer(app) as url:           # http://127.0.0.1:NNNN -> SpokiConfig(base_url=url, ...)
        ...
    running = start_sandbox(api_key="K")        # sandbox mode: background thread, running.url / running.stop()

Standalone: ``python -m service.sandbox.spoki --port 0 --api-key K``.
"""

from __future__ import annotations

from typing import Any

from service.sandbox.accounts import AccountDispatcher, account_index, build_accounts
from service.sandbox.faults import FaultConfig, FaultInjector
from service.sandbox.spoki import demo, demo_second
from service.sandbox.spoki.app import SpokiSimulator, create_app

__all__ = ["SpokiSimulator", "accounts_app", "build", "create_app", "demo", "start_sandbox"]

FAULT_ERROR_BODY = {"detail": "Simulated upstream failure."}


def build(*, api_key: str | None = None, faults: FaultConfig | None = None,
          **kwargs: Any) -> tuple[SpokiSimulator, FaultInjector]:
    """A simulator (``api_key`` is accepted in addition to the demo key) and its FaultInjector wrapper."""
    if api_key is not None and "api_keys" not in kwargs:
        kwargs["api_keys"] = (api_key, demo.DEMO_API_KEY)
    sim = create_app(**kwargs)
    return sim, FaultInjector(sim, faults, stats_provider=sim.state, error_body=FAULT_ERROR_BODY)


def start_sandbox(api_key: str | None = None, *, all_accounts: bool = True, **kwargs: Any):
    """Serve seeded simulators on 127.0.0.1 (ephemeral port) in a daemon thread: the first demo account (accepting
    ``api_key`` too) with ``kwargs``, and the other demo accounts of ``SANDBOX_ACCOUNTS["spoki"]`` (unless
    ``all_accounts=False``; :mod:`service.sandbox.accounts`). ``.simulator`` is the first account's."""
    from service.sandbox.launch import serve_in_thread

    return serve_in_thread(accounts_app({"api_key": api_key}, all_accounts=all_accounts, first_options=kwargs))


def _build_account(entry: dict[str, Any], first: bool, options: dict[str, Any]) -> tuple[Any, Any]:
    if first:  # as before: this key and the demo key
        return build(api_key=entry["api_key"], **options)
    return build(api_keys=(entry["api_key"],), demo_data=demo_second, **options)


def pick_account(environ: dict, accounts: list) -> int | None:
    """The account a request is for: the one that accepts its ``X-Spoki-Api-Key``; a Start Automation webhook
    (``/wh/ap/<uuid>/``, no key) the one with that webhook."""
    key = environ.get("HTTP_X_SPOKI_API_KEY")
    if key:
        return account_index(accounts, lambda sim: key in sim.api_keys)
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/wh/ap/"):
        return None
    wuuid = path[len("/wh/ap/"):].strip("/")

    def owns(sim: Any) -> bool:
        with sim.lock:
            return any(w.get("uuid") == wuuid for a in sim.automations.values() for w in a.get("webhook_set", []))

    return account_index(accounts, owns)


def accounts_app(first: dict[str, Any] | None = None, **kwargs: Any) -> AccountDispatcher:
    """One WSGI app serving every demo account of ``SANDBOX_ACCOUNTS["spoki"]`` (see
    :func:`service.sandbox.accounts.build_accounts` for the arguments); the second one is :mod:`.demo_second`."""
    from service.sandbox.launch import SANDBOX_ACCOUNTS

    return build_accounts(SANDBOX_ACCOUNTS["spoki"], _build_account, pick_account, first, **kwargs)
