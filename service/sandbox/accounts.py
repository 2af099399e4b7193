"""Several demo accounts per platform simulator, on one port: a small WSGI dispatcher routes each request to the
simulator instance of the account its credentials name, as the real platform tells accounts apart by their keys.

    running = start_in_process("spotler")          # every account of SANDBOX_ACCOUNTS["spotler"]
    running.simulator                               # the first account's simulator (as before)
    running.accounts["Second shop"]                 # another account's

How an account is named: Spotler by ``oauth_consumer_key`` in the OAuth 1.0a ``Authorization`` header, Piggy by
the Bearer token (a personal access token, or one the account issued through ``/oauth/token``), Spoki by the
``X-Spoki-Api-Key`` header (its Start Automation webhooks ``/wh/ap/<uuid>/`` by the webhook's uuid). A request
whose credentials name no account goes to the first account, whose simulator answers it with the platform's real
refusal (401). The control calls (``/__sim__/...``) reach the first account unless ``X-Sim-Account`` names
another one (its name or its index in the table).

The accounts and their credentials are the well-known, non-secret table ``SANDBOX_ACCOUNTS`` in
:mod:`service.sandbox.launch`; the first account of each platform is the historical demo account, unchanged. This
module is generic: each platform package says how to build an account's simulator and how a request names its
account (``accounts_app`` in ``service.sandbox.<platform>``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Account", "AccountDispatcher", "account_index", "build_accounts"]

CONTROL_PREFIX = "/__sim__/"
ACCOUNT_HEADER = "HTTP_X_SIM_ACCOUNT"


@dataclass
class Account:
    """One demo account as served: its table entry, its simulator (to inspect in tests) and its WSGI app."""

    name: str
    credentials: dict[str, str]
    simulator: Any
    app: Callable


class AccountDispatcher:
    """WSGI app: ``pick(environ, accounts)`` names the index of the account a request is for (None: the first)."""

    def __init__(self, accounts: Sequence[Account], pick: Callable[[dict, Sequence[Account]], int | None]) -> None:
        if not accounts:
            raise ValueError("at least one account")
        self.accounts = list(accounts)
        self.pick = pick

    @property
    def first(self) -> Account:
        return self.accounts[0]

    def account_for(self, environ: dict) -> Account:
        if environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX) and environ.get(ACCOUNT_HEADER):
            wanted = environ[ACCOUNT_HEADER].strip()
            for i, account in enumerate(self.accounts):
                if wanted in (account.name, str(i)):
                    return account
        index = self.pick(environ, self.accounts)
        return self.accounts[index or 0]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return self.account_for(environ).app(environ, start_response)


def account_index(accounts: Sequence[Account], test: Callable[[Any], bool]) -> int | None:
    """The index of the first account whose simulator passes ``test`` (for a platform's ``pick``)."""
    return next((i for i, a in enumerate(accounts) if test(a.simulator)), None)


#: ``build(entry, first, options) -> (simulator, wsgi_app)``: one account's simulator (``first``: the historical one)
Builder = Callable[[dict[str, Any], bool, dict[str, Any]], tuple[Any, Callable]]


def build_accounts(entries: Sequence[dict[str, Any]], build: Builder,
                   pick: Callable[[dict, Sequence[Account]], int | None], first: dict[str, Any] | None = None, *,
                   all_accounts: bool = True, first_options: dict[str, Any] | None = None,
                   options: dict[str, Any] | None = None) -> AccountDispatcher:
    """The dispatcher over the simulators of a platform's accounts (``entries``: its ``SANDBOX_ACCOUNTS`` rows).

    ``first`` replaces the first account's credentials; ``first_options`` are the simulator options of the first
    account only (tier, faults, ...), ``options`` those of every account (e.g. Spoki's ``page_size``).
    ``all_accounts=False`` serves the first account alone."""
    rows = [dict(entry) for entry in entries]
    if first:
        rows[0] = {"name": rows[0]["name"], **first}
    if not all_accounts:
        rows = rows[:1]
    built = []
    for i, entry in enumerate(rows):
        opts = {**(options or {}), **((first_options or {}) if i == 0 else {})}
        sim, app = build(entry, i == 0, opts)
        creds = {k: v for k, v in entry.items() if k != "name"}
        built.append(Account(name=entry["name"], credentials=creds, simulator=sim, app=app))
    return AccountDispatcher(built, pick)
