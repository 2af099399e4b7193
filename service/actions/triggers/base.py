"""The trigger interface (:class:`Trigger`, the :class:`Candidate` events, the :class:`Context` of one poll) and
the time helpers every part of the engine shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.actions import contacts as contact_actions
from service.actions.deps import TriggerDeps
from service.actions.triggers.state import KEY_BYTES, TriggerState
from service.providers.base import ContactEvent, FeedPage


def epoch_ms(when: dt.datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


@dataclass(frozen=True)
class Candidate:
    t_ms: int
    digest: bytes
    event: Any
    #: the platform's own order among events of one time (e.g. an ascending interaction id), when it has one
    order: int = 0

    @property
    def key(self) -> bytes:
        return self.digest[:KEY_BYTES]


@dataclass
class Context:
    """One poll: its deps, the resolved filters, the upstream call count."""

    deps: TriggerDeps
    state: TriggerState
    codec: Any
    store: Any
    #: the filter inputs of this poll (normalised, as the state is bound to them)
    filters: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    _permission_names: dict[str, str] | None = None

    @property
    def provider(self):
        return self.deps.platform.provider

    def permission_name(self, value: str, event: ContactEvent | None = None) -> str:
        if event is not None and value in event.permission_names:
            return event.permission_names[value]
        if self._permission_names is None:
            self._permission_names = {o.value: o.name for o in contact_actions.permissions(self.deps.platform)}
        return self._permission_names.get(value, value)


# ---------------------------------------------------------------------------------------------------------
# The triggers
# ---------------------------------------------------------------------------------------------------------


class Trigger:
    operation: str = ""
    #: which feed: contacts | bounces | interactions
    feed: str = "contacts"
    #: the trigger accepts ``since`` (start earlier than now)
    accepts_since: bool = True

    def filters(self, params: dict[str, Any]) -> dict[str, str]:
        """The normalised filter inputs (defaults left out): what the state is bound to and Location repeats."""
        return {}

    def resolve(self, ctx: Context, filters: dict[str, str]) -> tuple[str, ...]:
        """First call only: filter values resolved against the platform (kept in the state)."""
        return ()

    def uses_store(self, filters: dict[str, str]) -> bool:
        return False

    def candidate(self, ctx: Context, event: Any) -> Candidate | None:
        raise NotImplementedError

    def decide(self, ctx: Context, candidates: list[Candidate], batch: int) -> tuple[int, list[tuple[Candidate, Any]]]:
        """How many candidates (a prefix) this poll consumes, and the deliverable ones with what each needs."""
        chosen: list[tuple[Candidate, Any]] = []
        for n, c in enumerate(candidates):
            if len(chosen) == batch:
                return n, chosen
            if self.accept(ctx, c):
                chosen.append((c, None))
        return len(candidates), chosen

    def accept(self, ctx: Context, c: Candidate) -> bool:
        return True

    def render(self, ctx: Context, chosen: list[tuple[Candidate, Any]]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def fingerprint(self, ctx: Context, event: ContactEvent) -> str:
        raise NotImplementedError

    def windows(self, ctx: Context) -> list[Callable[..., FeedPage]]:
        p = ctx.provider
        if self.feed == "bounces":
            return [p.bounce_feed]
        return [p.contact_feed]

    def feed_names(self, ctx: Context) -> list[str]:
        """One name per entry of :meth:`windows` (what a shared feed read is keyed by)."""
        return [self.feed]

