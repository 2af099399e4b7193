"""The relay's explicit dependencies (:class:`RelayDeps`) and its settings (:class:`RelaySettings`)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.actions.ledger.model import new_job_id
from service.actions.webhooks.callbacks import DEFAULT_ALLOWED_HOSTS, CallbackClient, HostPolicy
from service.actions.webhooks.keys import SecretBox
from service.providers import errors as perr
from service.providers.webhooks import ManagerSource, WebhookFormat, WebhookManager

#: Svix's default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (a delivery is tried 8 times over ~28 hours)
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True)
class RelaySettings:
    #: seconds to wait after the 1st, 2nd, ... failed attempt; after the last one the delivery is given up
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    #: read timeout of a callback (its connect timeout is at most 5 s)
    callback_timeout: float = 30.0
    #: base URL the platforms send events to (``<base>/hooks/inbound/<token>``); None: the subscribing
    #: request's own base URL
    public_url: str | None = None
    #: seconds between two looks for due work when nothing wakes the worker
    poll_seconds: float = 1.0
    #: deliveries one process sends at once
    delivery_threads: int = 8
    #: ended subscriptions (orphaned, deleted) are removed after this many days
    ended_retention_days: float = 7.0
    #: events whose deliveries are all finished are removed after this many days (their data is personal)
    event_retention_days: float = 3.0
    #: each upstream webhook is checked against the platform this often (someone may have changed it there)
    reconcile_seconds: float = 86400.0
    #: a sync of an upstream webhook (a few platform calls) holds its lease this long
    sync_lease_seconds: float = 60.0
    #: the name our webhooks carry in the platform
    hook_name: str = "marketing-actions"

    @property
    def connect_timeout(self) -> float:
        return min(5.0, self.callback_timeout)

    @property
    def delivery_lease_seconds(self) -> float:
        """A claimed delivery is another worker's to take once this has passed (its sender died)."""
        return self.connect_timeout + self.callback_timeout + 2.0

    def retry_delay(self, failed_attempts: int, retry_after: float | None) -> float | None:
        """Seconds until the next attempt after ``failed_attempts`` failures (None: give up). A ``Retry-After``
        longer than the schedule's step is honoured (capped at a day); 0-10 % jitter spreads retries."""
        if failed_attempts > len(self.retry_schedule):
            return None
        step = self.retry_schedule[failed_attempts - 1]
        if retry_after is not None:
            step = max(step, min(retry_after, 86400.0))
        return step * (1 + random.random() * 0.1)  # noqa: S311 - jitter, not a secret


class SingleAccount:
    """Single mode's :class:`ManagerSource`: the deployment's one platform account, for the one scope."""

    def __init__(self, scope: str, build: Callable[[], WebhookManager]) -> None:
        self.scope = scope
        self._build = build
        self._manager: WebhookManager | None = None

    def manager(self, scope: str) -> WebhookManager:
        if scope != self.scope:
            raise perr.AuthFailed("No platform account is configured for this connection.")
        if self._manager is None:
            self._manager = self._build()
        return self._manager


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RelayDeps:
    engine: Engine
    settings: RelaySettings
    #: the platform's events, signature check and payload shape
    format: WebhookFormat
    #: the platform account (webhook-management API) of each scope
    managers: ManagerSource
    box: SecretBox
    #: the callback HTTP client (its session is one per process)
    callbacks: CallbackClient
    clock: Callable[[], datetime] = utcnow
    #: who holds the leases this process takes (host:pid, read after a fork)
    owner: Callable[[], str] = field(default=lambda: f"{os.uname().nodename}:{os.getpid()}"[:64])

    @property
    def platform(self) -> str:
        return self.format.platform

    def now(self) -> datetime:
        return self.clock()


def policy(settings: RelaySettings) -> HostPolicy:
    return HostPolicy(tuple(settings.allowed_hosts))


def new_id(prefix: str, now: datetime | None = None) -> str:
    """``prefix`` + a ULID (time-ordered, 80 random bits), e.g. ``evt_01J9Z3M8Q4XKQ7V0T5S2B6R1YA``."""
    return prefix + new_job_id(now)[len("job_"):]


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> int:
    """INSERT, skipping rows whose unique key exists; how many were inserted."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return conn.execute(insert(table).on_conflict_do_nothing(), rows).rowcount or 0


def lock_rows(conn: sa.Connection, query: sa.Select) -> sa.Select:
    """PostgreSQL: skip rows another instance is claiming (``FOR UPDATE SKIP LOCKED``); SQLite serialises
    writers, so the conditional UPDATE that follows decides alone."""
    return query.with_for_update(skip_locked=True) if conn.dialect.name == "postgresql" else query


def short(text: Any, limit: int = 300) -> str:
    return str(text)[:limit]
