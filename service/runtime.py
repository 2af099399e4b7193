"""The per-process runtime: settings plus the lazily built provider, ledger, job runner and list cache - and the
ONE place that builds what each call uses (:mod:`service.actions.deps`): ``platform_for``, ``writes_for``,
``triggers_for``.

One ``Runtime`` per app. Nothing here touches the network or the database until first use (after the
gunicorn fork), so importing ``service.asgi`` stays free of I/O. Code serving a request reaches it one way:
:func:`current_runtime` (the request middleware sets it); ``app.runtime`` is the app factory's handle for tests
and tooling.

Single mode builds each deps object once and hands the same one to every call (``connection`` is None).
Hosted mode (``TENANCY=hosted``, issue 22): for a :class:`~service.actions.deps.Connection`, the deps come from
:class:`service.hosted.HostedAccounts` (``runtime.hosted``): a provider built for that account and caches of its
own, kept in a bounded LRU keyed by a hash of all the credentials, with ``tenant`` set on the deps.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import TYPE_CHECKING

from service.cache import TTLCache
from service.config import Settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from service.actions.deps import Connection, Platform, TriggerDeps, WriteDeps

log = logging.getLogger(__name__)

#: the Runtime of the app serving the current request (set by the request middleware)
runtime_var: contextvars.ContextVar["Runtime"] = contextvars.ContextVar("runtime")


def current_runtime() -> "Runtime":
    return runtime_var.get()


def _no_connection() -> Exception:
    """Hosted mode asked for the deps of no account: the 401 that names the connection parameter to fill in."""
    from service.actions.tenancy import missing_platform

    return missing_platform()


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache = TTLCache(settings.list_cache_seconds)
        #: trigger feed reads shared by polls of the same window (service.actions.triggers)
        self.feed_cache = TTLCache(settings.trigger_feed_cache_seconds)
        self._lock = threading.Lock()
        self._provider = None
        self._ledger = None
        self._triggers = None  # (StateCodec, TriggerStore) of the polling triggers
        self._runner = None
        self._operations = None
        self._sandbox = None  # in-process simulator, when no shared one is configured
        self._microsoft = None
        self._platform: Platform | None = None
        self._writes: dict[bool, WriteDeps] = {}  # by: with the timeline
        self._trigger_deps: TriggerDeps | None = None
        self._webhooks = None
        self._hosted = None  # service.hosted.HostedAccounts (TENANCY=hosted)
        self._budgets = None
        self._closed = False

    # -- the deps of a call (service.actions.deps) -------------------------------------------------------------
    def platform_for(self, connection: Connection | None = None) -> Platform:
        """The platform account of a call: the service's own in single mode, the connection's in hosted mode."""
        if connection is not None or self.settings.hosted:
            if connection is None or not self.settings.hosted:
                raise _no_connection() if connection is None else RuntimeError("a connection in single mode")
            return self.hosted.platform(connection)
        provider = self.provider
        platform = self._platform
        if platform is None or platform.provider is not provider:
            from service.actions.deps import Platform

            platform = self._platform = Platform(provider=provider, cache=self.cache)
        return platform

    def writes_for(self, connection: Connection | None = None, *, timeline: bool = False) -> WriteDeps:
        """A write action's deps; with ``timeline`` (the call has ``regarding``) the Dataverse write-back's
        too (the Microsoft clients are built on first use)."""
        if connection is not None and self.settings.hosted:
            return self.hosted.writes(connection, timeline)
        platform = self.platform_for(connection)
        deps = self._writes.get(timeline)
        if deps is None or deps.platform is not platform:
            from service.actions.deps import TimelineDeps, WriteDeps

            deps = WriteDeps(platform, TimelineDeps(self.microsoft, self.ledger) if timeline else None)
            self._writes[timeline] = deps
        return deps

    def triggers_for(self, connection: Connection | None = None) -> TriggerDeps:
        """A polling trigger's deps (the state store shares the ledger's database)."""
        if connection is not None and self.settings.hosted:
            return self.hosted.triggers(connection)
        platform = self.platform_for(connection)
        deps = self._trigger_deps
        if deps is None or deps.platform is not platform:
            from service.actions.deps import TriggerDeps, TriggerSettings

            codec, store = self.triggers
            s = self.settings
            deps = self._trigger_deps = TriggerDeps(
                platform=platform, feeds=self.feed_cache, codec=codec, store=store,
                settings=TriggerSettings(provider_name=s.provider, batch_size=s.trigger_batch_size,
                                         page_size=s.trigger_page_size, max_pages=s.trigger_max_pages,
                                         poll_seconds=s.trigger_poll_seconds,
                                         overlap_seconds=s.trigger_overlap_seconds))
        return deps

    @property
    def hosted(self):
        """Hosted mode: the accounts of the connections (service.hosted.HostedAccounts); None in single mode."""
        if self._hosted is None and self.settings.hosted:
            with self._lock:
                if self._hosted is None:
                    from service.hosted import HostedAccounts

                    self._hosted = HostedAccounts(self)
        return self._hosted

    # -- upstream -------------------------------------------------------------------------------------------
    @property
    def upstream_url(self) -> str | None:
        """Sandbox only: the simulator's base URL (shared process, else one started in this process)."""
        if not self.settings.sandbox:
            return None
        if self.settings.sandbox_upstream_url:
            return self.settings.sandbox_upstream_url
        with self._lock:
            if self._sandbox is None:
                from service.sandbox.launch import start_in_process

                self._sandbox = start_in_process(self.settings.provider)
                log.info("sandbox simulator started in this process", extra={"url": self._sandbox.url})
            return self._sandbox.url

    def sandbox_contacts(self) -> list[dict[str, str]]:
        """Sandbox only: the contacts of the simulator's demo account."""
        from service.sandbox.launch import demo_contacts

        return demo_contacts(self.settings.provider)

    def sandbox_accounts(self) -> list[dict]:
        """Hosted sandbox only: every demo account of the three platform simulators, with its credentials."""
        from service.sandbox.launch import sandbox_accounts

        return sandbox_accounts()

    @property
    def provider(self):
        if self._provider is None:
            url = self.upstream_url
            with self._lock:
                if self._provider is None:
                    from service.providers.factory import build_provider

                    self._provider = build_provider(self.settings, sandbox_url=url)
        return self._provider

    @property
    def ledger(self):
        if self._ledger is None:
            with self._lock:
                if self._ledger is None:
                    from service.actions.ledger import Ledger
                    from service.actions.storage import ensure_schema

                    box = None
                    if self.settings.hosted:
                        from service.actions.tenancy import CredentialBox

                        box = CredentialBox(self.settings.credentials_keys)
                    ledger = Ledger.from_url(self.settings.effective_database_url,
                                             lease_seconds=self.settings.job_lease_seconds,
                                             email_hash_key=self.settings.ledger_hash_key.encode(),
                                             credentials_box=box)
                    try:
                        # never a missing table at run time: SQLite migrates itself, PostgreSQL under a lock
                        # (or refuses, AUTO_MIGRATE=false, with one line saying what to run)
                        revision = ensure_schema(ledger.engine, auto_migrate=self.settings.auto_migrate)
                    except BaseException:
                        ledger.close()
                        raise
                    log.info("ledger database ready", extra={"schemaRevision": revision})
                    self._ledger = ledger
        return self._ledger

    @property
    def triggers(self):
        """``(StateCodec, TriggerStore)`` of the polling triggers (the store shares the ledger's database)."""
        if self._triggers is None:
            ledger = self.ledger
            with self._lock:
                if self._triggers is None:
                    from service.actions.triggers.state import StateCodec
                    from service.actions.triggers.store import TriggerStore

                    codec = StateCodec(self.settings.trigger_state_secrets, self.settings.ledger_hash_key.encode())
                    self._triggers = (codec, TriggerStore(ledger.engine))
        return self._triggers

    @property
    def microsoft(self):
        """Entra ID token validation, msal and the Dataverse client (``service.microsoft.factory``)."""
        if self._microsoft is None:
            with self._lock:
                if self._microsoft is None:
                    from service.microsoft.factory import build_microsoft

                    self._microsoft = build_microsoft(self.settings)
        return self._microsoft

    @property
    def operations(self):
        """The write actions by operationId (service.actions.operations), bound to this runtime."""
        if self._operations is None:
            from service.actions.operations import Operations

            self._operations = Operations(self)
        return self._operations

    @property
    def runner(self):
        """This process's job runner (started on first use: lease renewal and due background jobs)."""
        if self._runner is None:
            ledger = self.ledger
            with self._lock:
                if self._runner is None:
                    from service.actions.runner import JobRunner, RunnerConfig

                    s = self.settings
                    config = RunnerConfig(sync_budget=s.sync_deadline_seconds, wait_seconds=s.in_progress_wait_seconds,
                                          background_slots=s.job_workers, threads=s.flask_threads * 2 + s.job_workers)
                    self._runner = JobRunner(ledger, self.operations, config).start()
        return self._runner

    @property
    def webhooks(self):
        """The webhook relay of Piggy and Spoki (service.actions.webhooks), its worker started; None on a platform
        without webhooks."""
        from service.providers.factory import has_webhooks, webhook_manager

        if self.settings.hosted:  # a relay per platform: webhooks_for(platform)
            return None
        if self._webhooks is None and has_webhooks(self.settings.provider) and not self._closed:
            ledger = self.ledger
            with self._lock:
                if self._webhooks is None and not self._closed:  # (a close() meanwhile: no worker left behind)
                    from service.actions.webhooks import build_relay

                    relay = build_relay(self.settings, ledger.engine,
                                        lambda: webhook_manager(relay.deps.format, self.provider))
                    self._webhooks = relay.start()
        return self._webhooks

    def webhooks_for(self, platform: str | None):
        """The webhook relay of ``platform``: single mode's (its one platform), hosted mode's of that platform."""
        if self.settings.hosted:
            return self.hosted.relay(platform) if platform else None
        return self.webhooks if platform in (None, self.settings.provider) else None
    @property
    def budgets(self):
        """Per-tenant budgets and the refused-credentials throttle (``service.actions.budgets.Budgets``): on Redis
        with ``REDIS_URL`` (nothing is sent before the first call), else in this process's memory."""
        if self._budgets is None:
            with self._lock:
                if self._budgets is None:
                    from service.actions.budgets import build_budgets

                    self._budgets = build_budgets(self.settings)
        return self._budgets

    def close(self) -> None:
        with self._lock:
            self._closed = True
        if self._webhooks is not None:
            self._webhooks.close()
        if self._runner is not None:
            self._runner.stop()
        if self._budgets is not None:
            self._budgets.close()
        if self._microsoft is not None:
            self._microsoft.close()
        if self._provider is not None:
            self._provider.close()
        if self._hosted is not None:
            self._hosted.close()
        if self._ledger is not None:
            self._ledger.close()
        if self._sandbox is not None:
            self._sandbox.stop()
