"""Spotler Mail+ simulator: ``SpotlerSimulator`` (WSGI app with built-in fault injection) and the demo ids.

    sim = SpotlerSimulator(consumer_key="K", consumer_secret="S")
    with SimulatorServer(sim) as url:           # SpotlerConfig(base_url=url + BASE_PATH, ...)
        ...
    running = start_sandbox(consumer_key="K", consumer_secret="S")   # running.url ends in /integrationservice

Standalone: ``python -m service.sandbox.spotler --port 0 --consumer-key K --consumer-secret S``.
"""

from __future__ import annotations

from typing import Any

from service.sandbox.accounts import AccountDispatcher, account_index, build_accounts
from service.sandbox.spotler import demo_second
from service.sandbox.spotler.app import BASE_PATH, SpotlerSimulator
from service.sandbox.spotler.demo import DEMO, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET

__all__ = ["BASE_PATH", "DEMO", "SANDBOX_CONSUMER_KEY", "SANDBOX_CONSUMER_SECRET", "SpotlerSimulator",
           "accounts_app", "start_sandbox"]


def start_sandbox(consumer_key: str = SANDBOX_CONSUMER_KEY, consumer_secret: str = SANDBOX_CONSUMER_SECRET,
                  *, all_accounts: bool = True, **kwargs: Any):
    """Serve seeded simulators on 127.0.0.1 (ephemeral port) in a daemon thread: the first demo account with these
    credentials and ``kwargs`` (tier, faults, ...), and the other demo accounts of ``SANDBOX_ACCOUNTS["spotler"]``
    (unless ``all_accounts=False``; :mod:`service.sandbox.accounts`).

    Returns ``service.sandbox.launch.RunningSimulator`` whose ``url`` is the client's base URL
    (``http://127.0.0.1:NNNN/integrationservice``); ``.simulator`` is the first account's SpotlerSimulator,
    ``.accounts`` every account's.
    """
    from service.sandbox.launch import serve_in_thread

    dispatcher = accounts_app({"consumer_key": consumer_key, "consumer_secret": consumer_secret},
                              all_accounts=all_accounts, first_options=kwargs)
    return serve_in_thread(dispatcher, None, BASE_PATH)


def _build_account(entry: dict[str, Any], first: bool, options: dict[str, Any]) -> tuple[Any, Any]:
    extra = {} if first else {"seed": demo_second.seed, "demo_ids": demo_second.SECOND}
    sim = SpotlerSimulator(entry["consumer_key"], entry["consumer_secret"], **extra, **options)
    return sim, sim


def pick_account(environ: dict, accounts: list) -> int | None:
    """The account a request is for: the one whose consumer key its OAuth ``Authorization`` header names."""
    from oauthlib.oauth1.rfc5849 import utils as oauth_utils

    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("oauth "):
        return None
    try:
        params = dict(oauth_utils.parse_authorization_header(header))
    except ValueError:
        return None
    key = oauth_utils.unescape(params.get("oauth_consumer_key", ""))
    return account_index(accounts, lambda sim: sim.consumer_key == key)


def accounts_app(first: dict[str, Any] | None = None, **kwargs: Any) -> AccountDispatcher:
    """One WSGI app serving every demo account of ``SANDBOX_ACCOUNTS["spotler"]`` (see
    :func:`service.sandbox.accounts.build_accounts` for the arguments); the second one is :mod:`.demo_second`."""
    from service.sandbox.launch import SANDBOX_ACCOUNTS

    return build_accounts(SANDBOX_ACCOUNTS["spotler"], _build_account, pick_account, first, **kwargs)
