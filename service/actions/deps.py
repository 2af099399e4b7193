"""What the actions use, as small typed objects: one per kind of call, built in ONE place
(:class:`service.runtime.Runtime`: ``platform_for``, ``triggers_for``, ``writes_for``).

* :class:`Platform` - one platform account: its provider (client, session, rate of calls) and the cache of its
  dropdown lists. Every read, dropdown and write action takes it.
* :class:`WriteDeps` - a write action: the platform, and the Dataverse timeline when the call has ``regarding``.
* :class:`TimelineDeps` - the Dataverse write-back: the Microsoft clients and the ledger (the note's outcome is
  recorded with the job).
* :class:`TriggerDeps` - a polling trigger: the platform, the shared feed cache, the state codec and store,
  and the trigger settings.

Single mode (today): one account per process, so the runtime builds each once and hands the same object to
every call. Hosted mode (issue 22) adds a second way to build them - from a :class:`Connection` that a request
brings in its headers (or a resumed job brings from its encrypted record) - with ``tenant`` set to the keyed hash
of the account, the provider built for that account and caches kept per tenant (``Platform.cache`` is already
per account: a new tenant gets its own). Nothing in the actions changes then: they only ever see these objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from service.actions.connection import Connection

if TYPE_CHECKING:  # pragma: no cover - typing only
    from service.actions.triggers.state import StateCodec
    from service.actions.triggers.store import TriggerStore
    from service.cache import TTLCache
    from service.microsoft.factory import MicrosoftServices
    from service.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Platform:
    """One platform account as the actions see it."""

    provider: Provider
    #: the account's dropdown lists (automations, fields, tags, ...), held for LIST_CACHE_SECONDS
    cache: TTLCache
    #: None in single mode; hosted mode: the keyed hash of platform + account key (never the key itself)
    tenant: str | None = None


class TimelineLedger(Protocol):  # pragma: no cover - typing only
    def record_timeline(self, job_id: str, timeline: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class TimelineDeps:
    """The Dataverse timeline of a write action with ``regarding`` (service.actions.timeline)."""

    microsoft: MicrosoftServices
    ledger: TimelineLedger


@dataclass(frozen=True, slots=True)
class WriteDeps:
    """A write action's dependencies; ``timeline`` is None when the call has no ``regarding``."""

    platform: Platform
    timeline: TimelineDeps | None = None


class DepsSource(Protocol):  # pragma: no cover - typing only
    """The one place that builds the deps (service.runtime.Runtime): for a fresh call and for a job resumed from
    its record alike. ``connection`` None: the service's own account (single mode)."""

    def writes_for(self, connection: Connection | None, *, timeline: bool) -> WriteDeps: ...


__all__ = ["Connection", "DepsSource", "Platform", "TimelineDeps", "TriggerDeps", "TriggerSettings", "WriteDeps"]


@dataclass(frozen=True, slots=True)
class TriggerSettings:
    provider_name: str
    batch_size: int
    page_size: int
    poll_seconds: int
    overlap_seconds: float
    max_pages: int


@dataclass(frozen=True, slots=True)
class TriggerDeps:
    """A polling trigger's dependencies (service.actions.triggers)."""

    platform: Platform
    #: feed reads shared by the polls of the same window (per account, like ``platform.cache``)
    feeds: TTLCache
    codec: StateCodec
    store: TriggerStore
    settings: TriggerSettings
