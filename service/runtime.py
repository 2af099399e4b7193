"""The per-process runtime: settings plus the lazily built provider, ledger, job runner and list cache.

One ``Runtime`` per app. Nothing here touches the network or the database until first use (after the
gunicorn fork), so importing ``service.asgi`` stays free of I/O.
"""

from __future__ import annotations

import contextvars
import logging
import threading

from service.cache import TTLCache
from service.config import Settings

log = logging.getLogger(__name__)

#: the Runtime of the app serving the current request (set by the request middleware)
runtime_var: contextvars.ContextVar["Runtime"] = contextvars.ContextVar("runtime")


def current_runtime() -> "Runtime":
    return runtime_var.get()


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

                    ledger = Ledger.from_url(self.settings.effective_database_url,
                                             lease_seconds=self.settings.job_lease_seconds,
                                             email_hash_key=self.settings.ledger_hash_key.encode())
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
                    from service.actions.trigger_state import StateCodec
                    from service.actions.trigger_store import TriggerStore

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

    def close(self) -> None:
        if self._runner is not None:
            self._runner.stop()
        if self._microsoft is not None:
            self._microsoft.close()
        if self._provider is not None:
            self._provider.close()
        if self._ledger is not None:
            self._ledger.close()
        if self._sandbox is not None:
            self._sandbox.stop()
