"""Hosted mode's half of the runtime (``TENANCY=hosted``, issue 22): the deps of each connection's account.

:class:`HostedAccounts` is held by :class:`service.runtime.Runtime` and builds, for a
:class:`~service.actions.connection.Connection`, the same deps single mode hands out (:mod:`service.actions.deps`)
with ``tenant`` set: a provider for that account (``service.providers.factory.build_provider_for``), its own
dropdown and feed caches. They are kept in a bounded LRU (``HOSTED_CLIENTS_MAX``) keyed by a keyed hash of ALL the
credentials: a right key with a wrong secret never reuses the client of the right one. An evicted account's
provider is dropped, not closed (a call may still be using it); its session and threads go with the last
reference.

Sandbox hosted mode: every platform's simulator (``SANDBOX_UPSTREAM_URLS`` from the gunicorn master, else one
started in this process per platform on first use).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cachetools

from service.actions.connection import Connection
from service.actions.problems import ActionError
from service.actions.connection import KEY_PARAMETER
from service.actions.tenancy import CredentialBox, CredentialStore, TenantKeys
from service.cache import TTLCache

if TYPE_CHECKING:  # pragma: no cover - typing only
    from service.actions.deps import Platform, TriggerDeps, WriteDeps

log = logging.getLogger(__name__)

#: dropdown and feed entries one account keeps (a few lists per account; the service-wide caches keep 10,000)
ACCOUNT_CACHE_ENTRIES = 256


@dataclass
class _Account:
    platform: Platform
    writes: dict[bool, WriteDeps] = field(default_factory=dict)
    triggers: TriggerDeps | None = None


class HostedAccounts:
    def __init__(self, runtime: Any) -> None:  # service.runtime.Runtime (not imported: it imports this module)
        s = runtime.settings
        self.runtime = runtime
        self.settings = s
        self.keys = TenantKeys(s.tenant_hash_key.encode())
        self.box = CredentialBox(s.credentials_keys)
        self._accounts: cachetools.LRUCache = cachetools.LRUCache(maxsize=s.hosted_clients_max)
        self._lock = threading.Lock()
        self._sandboxes: dict[str, Any] = {}
        self._store: CredentialStore | None = None
        self._relays: dict[str, Any] = {}

    def tenant(self, connection: Connection) -> str:
        return self.keys.tenant(connection)

    def job_token(self, job_id: str) -> str:
        """The secret a 202's Location carries (``/jobs/<job id>.<token>/result``): Power Platform may poll it
        without the connection's headers (tenancy.md section 2), and then the token alone opens the job's result."""
        return self.keys.job_token(job_id)

    # -- the deps of a connection ----------------------------------------------------------------------------
    def _account(self, connection: Connection) -> _Account:
        digest = self.keys.credentials_digest(connection)
        with self._lock:
            account = self._accounts.get(digest)
        if account is not None:
            return account
        provider = self._build_provider(connection)
        from service.actions.deps import Platform

        s = self.settings
        fresh = _Account(Platform(provider=provider, tenant=self.keys.tenant(connection),
                                  cache=TTLCache(s.list_cache_seconds, max_entries=ACCOUNT_CACHE_ENTRIES)))
        with self._lock:
            account = self._accounts.setdefault(digest, fresh)
        return account

    def _build_provider(self, connection: Connection):
        from service.providers.factory import build_provider_for

        try:
            return build_provider_for(self.settings, connection.platform, connection.key, connection.secret,
                                      sandbox_url=self.upstream_url(connection.platform))
        except ValueError:  # the platform's config refuses the value (its message names no credential)
            raise ActionError(400, "PLATFORM_CREDENTIALS_INVALID",
                              f"Check '{KEY_PARAMETER[connection.platform]}' in the connection: the "
                              f"{connection.platform} account's credentials have a format the platform does not use.",
                              parameter=KEY_PARAMETER[connection.platform]) from None

    def platform(self, connection: Connection) -> Platform:
        return self._account(connection).platform

    def writes(self, connection: Connection, timeline: bool) -> WriteDeps:
        account = self._account(connection)
        deps = account.writes.get(timeline)
        if deps is None:
            from service.actions.deps import TimelineDeps, WriteDeps

            rt = self.runtime
            deps = account.writes[timeline] = WriteDeps(
                account.platform, TimelineDeps(rt.microsoft, rt.ledger) if timeline else None)
        return deps

    def triggers(self, connection: Connection) -> TriggerDeps:
        account = self._account(connection)
        deps = account.triggers
        if deps is None:
            from service.actions.deps import TriggerDeps, TriggerSettings

            codec, store = self.runtime.triggers
            s = self.settings
            deps = account.triggers = TriggerDeps(
                platform=account.platform, codec=codec, store=store,
                feeds=TTLCache(s.trigger_feed_cache_seconds, max_entries=ACCOUNT_CACHE_ENTRIES),
                settings=TriggerSettings(provider_name=connection.platform, batch_size=s.trigger_batch_size,
                                         page_size=s.trigger_page_size, max_pages=s.trigger_max_pages,
                                         poll_seconds=s.trigger_poll_seconds,
                                         overlap_seconds=s.trigger_overlap_seconds))
        return deps

    def cached_accounts(self) -> int:
        with self._lock:
            return len(self._accounts)

    # -- credentials kept for work without a request (polling triggers, webhook syncs) -------------------------
    @property
    def credentials(self) -> CredentialStore:
        if self._store is None:
            engine = self.runtime.ledger.engine
            with self._lock:
                if self._store is None:
                    self._store = CredentialStore(engine, self.box, self.keys)
        return self._store

    # -- sandbox ---------------------------------------------------------------------------------------------
    def upstream_url(self, platform: str) -> str | None:
        """Sandbox: the simulator of ``platform`` (shared process, else one started in this process)."""
        if not self.settings.sandbox:
            return None
        shared = self.settings.sandbox_urls.get(platform)
        if shared:
            return shared
        with self._lock:
            running = self._sandboxes.get(platform)
            if running is None:
                from service.sandbox.launch import start_in_process

                running = self._sandboxes[platform] = start_in_process(platform)
                log.info("sandbox simulator started in this process", extra={"platform": platform,
                                                                             "url": running.url})
            return running.url

    # -- webhook triggers (Piggy, Spoki) ------------------------------------------------------------------------
    def relay(self, platform: str):
        """The webhook relay of ``platform`` (every tenant's subscriptions), its worker started; None for a
        platform without webhooks."""
        from service.providers.factory import has_webhooks

        if not has_webhooks(platform) or self.runtime._closed:
            return None
        with self._lock:
            relay = self._relays.get(platform)
        if relay is None:
            from service.actions.webhooks import build_hosted_relay

            engine = self.runtime.ledger.engine
            with self._lock:
                relay = self._relays.get(platform)
                if relay is None:
                    relay = build_hosted_relay(self.settings, engine, platform, TenantManagers(self, platform))
                    self._relays[platform] = relay.start()
        return relay

    def close(self) -> None:
        with self._lock:
            sandboxes, self._sandboxes = list(self._sandboxes.values()), {}
            relays, self._relays = list(self._relays.values()), {}
            self._accounts.clear()
        for relay in relays:
            relay.close()
        for running in sandboxes:
            running.stop()


class TenantManagers:
    """Hosted mode's :class:`~service.providers.webhooks.ManagerSource`: the webhook-management API of a tenant's
    account (a relay scope is a tenant), built from the tenant's stored, sealed credentials - the syncs and the
    daily reconcile run without a request."""

    def __init__(self, accounts: HostedAccounts, platform: str) -> None:
        self.accounts = accounts
        self.platform = platform
        self._format = None

    def manager(self, scope: str):
        from service.providers import errors as perr
        from service.providers.factory import webhook_format, webhook_manager

        connection = self.accounts.credentials.load(scope)
        if connection is None or connection.platform != self.platform:
            raise perr.AuthFailed("No platform account is stored for this connection: make any call with it again.")
        if self._format is None:
            self._format = webhook_format(self.accounts.settings, self.platform)
        return webhook_manager(self._format, self.accounts.platform(connection).provider)
