"""Polling triggers: each platform event fires a flow exactly once. Provider-independent.

The protocol (Power Automate / Logic Apps polling triggers, reference power-platform-connector §4.2a): the first
call answers 202 with a state that starts *now* (or at ``since``); each later call brings that state back
(the ``Location`` URL) and answers 200 with the new events, oldest first, at most ``batch`` of them, or 202 when
there is nothing new; both with the next state. The HTTP details live in :mod:`service.api.triggers`.

How every event fires once
--------------------------
A feed answers the events whose time lies in a window; times are in the platform's clock, which may run ahead
of or behind ours. Each poll reads the whole window ``[cursor - overlap, now + overlap]`` (every page) and
compares it with the *seen set* of the state: keyed hashes of the events already consumed whose time is at or
after ``cursor - overlap``. What is not in the set is new. New events are sorted by (time, id); the first
``batch`` deliverable ones are consumed (events a filter rejects are consumed silently), the cursor moves to
the latest consumed time (never beyond an event not yet consumed), the set gains what was consumed and drops
what the next window no longer reaches. So:

* overlapping windows, a clock difference up to the overlap, late events, equal times at a page boundary,
  offset paging with ``after`` and pages read in any order: an event is in the set or it is new;
* a restart, another instance, a retried poll: the state is the URL, the database only holds immutable sets
  and versioned per-contact data, so the same URL gives the same answer;
* an upstream failure raises before anything is decided: the caller gets 503 and the same URL stays valid.

The first call takes a *baseline*: the events already in its window are marked seen (no flood of history).
Triggers that must compare a contact with its earlier state (unsubscribes; changes of chosen fields) keep a
fingerprint per contact in the database (:mod:`.trigger_store`) and record every contact's fingerprint first,
a few pages per poll, before they watch for changes.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from service.actions import contacts as contact_actions
from service.actions import fanout
from service.actions.deps import Platform, TriggerDeps
from service.actions.coercion import CODE_UNKNOWN, resolve_field
from service.actions.problems import ActionError, invalid
from service.actions.trigger_state import (
    INLINE_SEEN_MAX,
    KEY_BYTES,
    StateCodec,
    TriggerState,
    pack_seen,
    state_error,
    unpack_seen,
)
from service.actions.trigger_store import UNKNOWN, Version
from service.cache import MISSING
from service.providers.base import BounceEvent, ContactEvent, FeedPage, InteractionEvent, Mailing

log = logging.getLogger(__name__)

#: where a baseline of every contact starts reading (the feed's window is required)
BASELINE_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: a window is halved at most this often when it holds more than the page budget
MAX_SPLITS = 8
#: baseline pages overlap by this many items (offset paging over a list that changes while it is read)
BASELINE_REREAD = 50
MAX_WATCHED_FIELDS = 40
MAX_BATCH = 1000
RECENT_MAILINGS_DAYS = 180
MAX_MAILINGS = 500


def _ms(when: dt.datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


# ---------------------------------------------------------------------------------------------------------
# The answer
# ---------------------------------------------------------------------------------------------------------


@dataclass
class PollResult:
    status: int  # 200 (items) or 202 (nothing new, or the first call)
    items: list[dict[str, Any]]
    state: str  # the signed state for the next Location
    retry_after: int
    #: the filter inputs the next Location repeats (the state is bound to them)
    query: dict[str, str]
    #: upstream calls this poll made (for logs and the bench)
    upstream_calls: int = 0


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


def _contact_item(ctx: Context, c: Candidate) -> dict[str, Any]:
    ev: ContactEvent = c.event
    out: dict[str, Any] = {"eventId": c.digest.hex(), "externalId": ev.external_id}
    if ev.email:
        out["email"] = ev.email
    for key, value in (("created", ev.created), ("lastChanged", ev.last_changed)):
        if value is not None:
            out[key] = iso(value)
    props = ctx.provider.contact_properties(ev)
    out["fields"] = {k: v for k, v in props.items() if v is not None}
    out["permissions"] = [{"name": ctx.permission_name(bit, ev), "value": bit, "enabled": on}
                          for bit, on in sorted(ev.permissions.items(), key=lambda x: _bit_order(x[0]))]
    if ev.subscribed is not None:
        out["subscribed"] = ev.subscribed
    return out


def _bit_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (1 << 62, value)


class ContactAdded(Trigger):
    operation = "OnContactAdded"

    def filters(self, params):
        value = params.get("permissions")
        return {"permissions": value.strip()} if isinstance(value, str) and value.strip() else {}

    def resolve(self, ctx, filters):
        if "permissions" not in filters:
            return ()
        options = contact_actions.with_fresh_list(
            ctx.deps.platform, lambda: contact_actions._match_permissions(contact_actions.permissions(ctx.deps.platform),
                                                               filters["permissions"]),
            ("UNKNOWN_PERMISSION",))
        return tuple(o.value for o in options)

    def candidate(self, ctx, ev: ContactEvent):
        t = _ms(ev.created)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest("added", ev.external_id, t), ev)

    def accept(self, ctx, c):
        wanted = ctx.state.filters
        return not wanted or any(c.event.permissions.get(v) for v in wanted)

    def render(self, ctx, chosen):
        return [_contact_item(ctx, c) for c, _ in chosen]


class ContactChanged(Trigger):
    operation = "OnContactChanged"

    def filters(self, params):
        value = params.get("fields")
        return {"fields": value.strip()} if isinstance(value, str) and value.strip() else {}

    def uses_store(self, filters):
        return "fields" in filters

    def resolve(self, ctx, filters):
        if "fields" not in filters:
            return ()
        names = contact_actions.parse_names(filters["fields"], "fields", what="contact fields",
                                            max_items=MAX_WATCHED_FIELDS)

        def attempt():
            known = contact_actions.contact_fields(ctx.deps.platform)
            return [resolve_field(known, n).name for n in names]

        return tuple(sorted(set(contact_actions.with_fresh_list(ctx.deps.platform, attempt, (CODE_UNKNOWN,)))))

    def candidate(self, ctx, ev: ContactEvent):
        t = _ms(ev.last_changed)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest("changed", ev.external_id, t), ev)

    def fingerprint(self, ctx, ev):
        return ";".join(ctx.codec.value_hash(ev.properties.get(name)) for name in ctx.state.filters)

    def decide(self, ctx, candidates, batch):
        if not ctx.state.filters:
            return super().decide(ctx, candidates, batch)
        return _decide_with_store(self, ctx, candidates, batch, self._changed)

    def _changed(self, ctx, c: Candidate, before: object, now: str) -> Any:
        if before is UNKNOWN or before is None:  # not in the baseline: created (or first seen) after the start
            return list(ctx.state.filters)
        if before == now:
            return None
        old = str(before).split(";")
        new = now.split(";")
        changed = [n for n, a, b in zip(ctx.state.filters, old, new, strict=False) if a != b]
        return changed or list(ctx.state.filters)

    def render(self, ctx, chosen):
        out = []
        for c, changed in chosen:
            item = _contact_item(ctx, c)
            if changed is not None:
                item["changedFields"] = changed
            out.append(item)
        return out


class ContactUnsubscribed(Trigger):
    operation = "OnContactUnsubscribed"
    accepts_since = False  # only the current state is known: there is no earlier state to compare with

    def filters(self, params):
        value = params.get("permissions")
        return {"permissions": value.strip()} if isinstance(value, str) and value.strip() else {}

    resolve = ContactAdded.resolve

    def uses_store(self, filters):
        return True

    def candidate(self, ctx, ev: ContactEvent):
        t = _ms(ev.last_changed)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest("contact", ev.external_id, t), ev)

    def fingerprint(self, ctx, ev: ContactEvent):
        wanted = set(ctx.state.filters)
        bits = sorted((b for b, on in ev.permissions.items() if on and (not wanted or b in wanted)), key=_bit_order)
        return ",".join(bits)[:480] + ("|off" if ev.subscribed is False else "")

    def decide(self, ctx, candidates, batch):
        return _decide_with_store(self, ctx, candidates, batch, self._transition)

    @staticmethod
    def _transition(ctx, c: Candidate, before: object, now: str) -> Any:
        if before is UNKNOWN or before is None:
            return None
        old_bits, _, old_off = str(before).partition("|")
        new_bits, _, new_off = now.partition("|")
        removed = sorted(set(filter(None, old_bits.split(","))) - set(filter(None, new_bits.split(","))),
                         key=_bit_order)
        opted_out = bool(new_off) and not old_off
        if not removed and not opted_out:
            return None
        return {"removed": removed, "optedOut": opted_out}

    def render(self, ctx, chosen):
        out = []
        for c, change in chosen:
            ev: ContactEvent = c.event
            item: dict[str, Any] = {"eventId": c.digest.hex(), "externalId": ev.external_id}
            if ev.email:
                item["email"] = ev.email
            item["date"] = iso(ev.last_changed)
            item["permissions"] = [{"name": ctx.permission_name(b, ev), "value": b} for b in change["removed"]]
            item["optedOut"] = change["optedOut"]
            out.append(item)
        return out


class ContactBounced(Trigger):
    operation = "OnContactBounced"
    feed = "bounces"

    def filters(self, params):
        value = (params.get("bounceType") or "both").strip().lower()
        if value not in ("hard", "soft", "both"):
            raise invalid("bounceType", "bounceType must be hard, soft or both.", code="INVALID_BOUNCE_TYPE")
        return {} if value == "both" else {"bounceType": value}

    def candidate(self, ctx, ev: BounceEvent):
        t = _ms(ev.date)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest("bounce", ev.contact.external_id, t, ev.kind, ev.mailing_id), ev)

    def accept(self, ctx, c):
        wanted = ctx.state.filters
        return not wanted or c.event.kind in wanted

    def resolve(self, ctx, filters):
        return (filters["bounceType"],) if "bounceType" in filters else ()

    def render(self, ctx, chosen):
        names = mailing_names(ctx, [c.event.mailing_id for c, _ in chosen])
        out = []
        for c, _ in chosen:
            ev: BounceEvent = c.event
            item: dict[str, Any] = {"eventId": c.digest.hex(), "externalId": ev.contact.external_id}
            if ev.contact.email:
                item["email"] = ev.contact.email
            item.update(bounceType=ev.kind, date=iso(ev.date))
            if ev.mailing_id:
                item["mailingId"] = ev.mailing_id
                if names.get(ev.mailing_id):
                    item["mailingName"] = names[ev.mailing_id]
            out.append(item)
        return out


class MailingInteraction(Trigger):
    operation = "OnMailingInteraction"
    feed = "interactions"

    def filters(self, params):
        value = (params.get("interaction") or "both").strip().lower()
        if value not in ("opened", "clicked", "both"):
            raise invalid("interaction", "interaction must be opened, clicked or both.", code="INVALID_INTERACTION")
        out = {} if value == "both" else {"interaction": value}
        mailing = params.get("mailingId")
        if isinstance(mailing, str) and mailing.strip():
            out["mailingId"] = mailing.strip()
        return out

    def resolve(self, ctx, filters):
        return ()

    def kinds(self, filters: dict[str, str]) -> list[str]:
        return [filters["interaction"]] if "interaction" in filters else ["opened", "clicked"]

    def windows(self, ctx):
        filters = ctx.filters
        p = ctx.provider
        return [lambda since, until, *, after, page_size, k=k: p.interaction_feed(
            k, since, until, after=after, page_size=page_size) for k in self.kinds(filters)]

    def feed_names(self, ctx):
        return [f"interactions:{k}" for k in self.kinds(ctx.filters)]

    def candidate(self, ctx, ev: InteractionEvent):
        t = _ms(ev.change_date or ev.date)
        if t is None:
            return None
        return Candidate(t, ctx.codec.event_digest(ev.kind, ev.id), ev,
                         order=int(ev.id) if ev.id.isdigit() and len(ev.id) < 19 else 0)

    def accept(self, ctx, c):
        mailing = ctx.filters.get("mailingId")
        return mailing is None or c.event.mailing_id == mailing

    def render(self, ctx, chosen):
        events: list[InteractionEvent] = [c.event for c, _ in chosen]
        names_later = fanout.submit(mailing_names, ctx, [e.mailing_id for e in events])  # while the lookups run
        emails = ctx.provider.lookup_emails([e.external_id for e in events])
        names = names_later.result()
        out = []
        for c, _ in chosen:
            ev: InteractionEvent = c.event
            item: dict[str, Any] = {"eventId": c.digest.hex(), "interaction": ev.kind, "externalId": ev.external_id}
            if emails.get(ev.external_id):
                item["email"] = emails[ev.external_id]
            if ev.mailing_id:
                item["mailingId"] = ev.mailing_id
                if names.get(ev.mailing_id):
                    item["mailingName"] = names[ev.mailing_id]
            item["date"] = iso(ev.date or ev.change_date)
            out.append(item)
        return out


TRIGGERS: dict[str, Trigger] = {t.operation: t for t in (ContactAdded(), ContactChanged(), ContactUnsubscribed(),
                                                         ContactBounced(), MailingInteraction())}


def _decide_with_store(trigger: Trigger, ctx: Context, candidates: list[Candidate], batch: int,
                       judge: Callable[[Context, Candidate, object, str], Any]) -> tuple[int, list]:
    """Per-contact comparison with the recorded fingerprint; records what this poll consumes."""
    versions = [Version(ctx.codec.contact_hash(c.event.external_id), c.t_ms, trigger.fingerprint(ctx, c.event))
                for c in candidates]
    before = ctx.store.previous(ctx.state.instance, versions)
    chosen: list[tuple[Candidate, Any]] = []
    consumed = len(candidates)
    for n, (c, v, b) in enumerate(zip(candidates, versions, before, strict=True)):
        if len(chosen) == batch:
            consumed = n
            break
        verdict = judge(ctx, c, b, v.fingerprint)
        if verdict is not None:
            chosen.append((c, verdict))
    ctx.store.record(ctx.state.instance, versions[:consumed])
    return consumed, chosen


# ---------------------------------------------------------------------------------------------------------
# Mailings (names for the items, the recent-mailings dropdown)
# ---------------------------------------------------------------------------------------------------------


def recent_mailings(platform: Platform) -> list[Mailing]:
    def load() -> list[Mailing]:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        found = platform.provider.list_mailings(until - dt.timedelta(days=RECENT_MAILINGS_DAYS + 1), until)
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(found, key=lambda m: m.sent_at or epoch, reverse=True)[:MAX_MAILINGS]

    return platform.cache.get(("mailings",), load)


def list_mailings(platform: Platform) -> dict[str, Any]:
    value = []
    for m in recent_mailings(platform):
        item: dict[str, Any] = {"id": m.id, "name": m.name,
                                "title": f"{m.name} ({m.sent_at.date().isoformat()})" if m.sent_at else m.name}
        if m.sent_at:
            item["sentAt"] = iso(m.sent_at)
        value.append(item)
    return {"value": value}


def mailing_names(ctx: Context, ids: Iterable[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    names = {m.id: m.name for m in recent_mailings(ctx.deps.platform)}
    for mid in sorted(wanted - set(names)):
        m = ctx.deps.platform.cache.get(("mailing", mid), lambda mid=mid: ctx.provider.get_mailing(mid))
        if m is not None:
            names[mid] = m.name
    return {i: names[i] for i in wanted if i in names}


# ---------------------------------------------------------------------------------------------------------
# The poll
# ---------------------------------------------------------------------------------------------------------


def _batch(deps: TriggerDeps, batch_size: Any) -> int:
    if batch_size is None:
        return deps.settings.batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise invalid("batchSize", f"batchSize must be a whole number from 1 to {MAX_BATCH}.", code="INVALID_BATCH")
    return batch_size


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _since(value: Any, now: int) -> int | None:
    """``since`` as epoch ms; None when absent. A date-time with its offset (RFC 3339, the spec's format)."""
    if value is None:
        return None
    text = str(value).strip()
    parsed = None
    if _RFC3339.match(text):
        try:
            parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        except ValueError:
            parsed = None
    if parsed is None:
        raise invalid("since", f"'{text[:40]}' is not a date and time with a time zone; use ISO 8601 such as "
                               "2026-01-31T08:00:00Z.", code="INVALID_SINCE")
    at = int(parsed.timestamp() * 1000)
    if at > now:
        raise invalid("since", "since must not be in the future.", code="INVALID_SINCE")
    return at


def poll(deps: TriggerDeps, operation: str, params: dict[str, Any], *, state: str | None, caller: str | None,
         since: Any = None, batch_size: Any = None) -> PollResult:
    """Answer one poll of a trigger (``state`` None: the first call)."""
    trigger = TRIGGERS[operation]
    codec, store = deps.codec, deps.store
    filters = trigger.filters(params)
    batch = _batch(deps, batch_size)
    binding = codec.binding(operation, filters, caller)
    now = now_ms()
    start_at = _since(since, now) if trigger.accepts_since else _no_since(since)  # checked on every call
    if state is None:
        return _first(deps, trigger, codec, store, filters, binding, start_at, now)
    st = codec.loads(state)
    if st.kind != operation or st.binding != binding:
        raise state_error("TRIGGER_STATE_FOREIGN", "This trigger state belongs to another trigger, other filter "
                                                   "values or another connection.")
    ctx = Context(deps=deps, state=st, codec=codec, store=store, filters=filters)
    seen = _load_seen(store, st)
    if trigger.uses_store(filters):
        if not st.instance or not store.touch_instance(st.instance):
            raise state_error("TRIGGER_STATE_EXPIRED", "The data this trigger keeps in the service was removed "
                                                       "after a long pause.")
        if st.baseline_after is not None:
            return _continue_baseline(deps, trigger, ctx, seen, filters, now)
    overlap = int(deps.settings.overlap_seconds * 1000)
    lo, hi = st.cursor_ms - overlap, now + overlap
    events, hi, complete = _read_window(deps, trigger, ctx, lo, hi)
    candidates: dict[bytes, Candidate] = {}
    for ev in events:
        c = trigger.candidate(ctx, ev)
        if c is not None and lo <= c.t_ms <= hi and c.key not in seen:
            candidates.setdefault(c.digest, c)
    ordered = sorted(candidates.values(), key=lambda c: (c.t_ms, c.order, c.digest))
    consumed, chosen = trigger.decide(ctx, ordered, batch)
    items = trigger.render(ctx, chosen) if chosen else []
    taken = ordered[:consumed]
    cursor = max([st.cursor_ms] + [c.t_ms for c in taken])
    new_seen = dict(seen)
    for c in taken:
        new_seen[c.key] = c.t_ms // 1000
    horizon = cursor - overlap
    new_seen = {k: t for k, t in new_seen.items() if t * 1000 + 999 >= horizon}
    more = consumed < len(ordered) or not complete
    nxt = TriggerState(kind=operation, binding=binding, cursor_ms=cursor, origin_ms=st.origin_ms,
                       filters=st.filters, instance=st.instance)
    _store_seen(store, nxt, new_seen)
    log.info("trigger poll", extra={"operation": operation, "items": len(items), "consumed": consumed,
                                    "waiting": len(ordered) - consumed, "upstreamCalls": ctx.calls,
                                    "seen": len(new_seen), "spilled": bool(nxt.spill)})
    return PollResult(status=200 if items else 202, items=items, state=codec.dumps(nxt),
                      retry_after=0 if more else deps.settings.poll_seconds, query=filters,
                      upstream_calls=ctx.calls)


def _no_since(value: Any) -> None:
    if value is not None:
        raise invalid("since", "This trigger always starts from now: it compares each contact with its state when "
                               "the trigger started.", code="SINCE_NOT_SUPPORTED")
    return None


def _first(deps: TriggerDeps, trigger: Trigger, codec, store, filters: dict[str, str], binding: str, since: int | None,
           now: int) -> PollResult:
    overlap = int(deps.settings.overlap_seconds * 1000)
    st = TriggerState(kind=trigger.operation, binding=binding, cursor_ms=now, origin_ms=now)
    ctx = Context(deps=deps, state=st, codec=codec, store=store, filters=filters)
    st.filters = trigger.resolve(ctx, filters)
    if trigger.uses_store(filters) and since is not None:
        raise invalid("since", "Start from now when the trigger watches chosen fields: their earlier values are "
                               "not known.", code="SINCE_NOT_SUPPORTED")
    seen: dict[bytes, int] = {}
    if since is not None:
        st.cursor_ms = since + overlap  # the first window starts at `since`
    else:
        lo, hi = now - overlap, now + overlap
        # not shared: the polls that follow read from this same window start, and must see what happens now
        events, hi, _ = _read_window(deps, trigger, ctx, lo, hi, share=False)
        for ev in events:  # what is already there when the trigger starts is not new
            c = trigger.candidate(ctx, ev)
            if c is not None and lo <= c.t_ms <= hi:
                seen[c.key] = c.t_ms // 1000
    if trigger.uses_store(filters):
        st.instance = base64.urlsafe_b64encode(os.urandom(12)).decode()
        store.create_instance(st.instance, trigger.operation)
        st.baseline_after = 0
        return _continue_baseline(deps, trigger, ctx, seen, filters, now)
    _store_seen(store, st, seen)
    return PollResult(status=202, items=[], state=codec.dumps(st), retry_after=deps.settings.poll_seconds,
                      query=filters, upstream_calls=ctx.calls)


def _continue_baseline(deps: TriggerDeps, trigger: Trigger, ctx: Context, seen: dict[bytes, int], filters: dict[str, str],
                       now: int) -> PollResult:
    """Record the fingerprint of every contact, a page budget per poll (202 + Retry-After 0 until done)."""
    st = ctx.state
    overlap = int(deps.settings.overlap_seconds * 1000)
    settings = deps.settings
    after = st.baseline_after or 0
    until = _dt(now + overlap)
    done = False
    for _ in range(settings.max_pages):
        start = max(0, after - BASELINE_REREAD) if after else 0
        page = ctx.provider.contact_feed(BASELINE_FROM, until, after=start, page_size=settings.page_size)
        ctx.calls += 1
        versions = [Version(ctx.codec.contact_hash(ev.external_id), _ms(ev.last_changed) or 0,
                            trigger.fingerprint(ctx, ev)) for ev in page.items]
        ctx.store.record_baseline(st.instance, versions)
        if page.next_after is None or page.next_after <= start:
            done = True
            break
        after = page.next_after
    nxt = TriggerState(kind=st.kind, binding=st.binding, cursor_ms=st.cursor_ms, origin_ms=st.origin_ms,
                       filters=st.filters, instance=st.instance, baseline_after=None if done else after)
    _store_seen(ctx.store, nxt, seen)
    return PollResult(status=202, items=[], state=ctx.codec.dumps(nxt),
                      retry_after=settings.poll_seconds if done else 0, query=filters,
                      upstream_calls=ctx.calls)


def _read_window(deps: TriggerDeps, trigger: Trigger, ctx: Context, lo: int, hi: int,
                 share: bool = True) -> tuple[list[Any], int, bool]:
    """Every event of every feed of the trigger in ``[lo, hi]`` (several feeds are read in parallel). When a
    feed holds more than the page budget, its window is halved (at most MAX_SPLITS times) so that no event below
    the new end is missed; the window of the poll then ends there for every feed. ``complete`` is False when
    the window was cut (more is waiting) or could not be read whole."""
    settings = deps.settings

    def read(feed: Callable[..., FeedPage]) -> tuple[list[Any], int, bool, int]:
        end, calls = hi, 0
        for split in range(MAX_SPLITS + 1):
            got, whole, n = _read_pages(feed, lo, end, settings.page_size, settings.max_pages)
            calls += n
            if whole or end - lo <= 2000 or split == MAX_SPLITS:
                return got, end, whole, calls
            end = lo + (end - lo) // 2
        raise AssertionError("unreachable")  # pragma: no cover

    def shared(name: str, feed: Callable[..., FeedPage]) -> tuple[list[Any], int, bool, int]:
        """A whole read of this feed from ``lo`` made by a poll of the last TRIGGER_FEED_CACHE_SECONDS serves
        this poll too (no upstream call). Exactly-once is untouched: the seen set still filters what was
        delivered, and the cursor only moves to events handed over, so an event that arrived after that read
        is found by the next poll whose read is fresh (a delay of at most the cache time)."""
        if not share:
            return read(feed)
        fresh: list = []

        def load():
            fresh.append(read(feed))
            got, end, whole, _calls = fresh[0]
            if not (whole and end == hi):  # only a whole, uncut read is shared
                raise _NotShared
            return got

        try:
            got = deps.feeds.get(_feed_key(deps, ctx, name, lo), load)
        except _NotShared:
            return fresh[0]
        return (got, hi, True, fresh[0][3]) if fresh else (got, hi, True, 0)

    feeds = list(zip(trigger.feed_names(ctx), trigger.windows(ctx), strict=True))
    cached = [deps.feeds.peek(_feed_key(deps, ctx, name, lo)) for name, _ in feeds] if share else []
    if cached and all(c is not MISSING for c in cached):  # every feed shared: no thread, no upstream call
        results = [(got, hi, True, 0) for got in cached]
    elif len(feeds) == 1:
        results = [shared(*feeds[0])]
    else:
        results = fanout.map_bounded(lambda nf: shared(*nf), feeds, len(feeds))
    end = min(r[1] for r in results)
    ctx.calls += sum(r[3] for r in results)
    complete = end == hi and all(r[2] for r in results)
    events = [e for got, *_ in results for e in got if end == hi or _event_ms(trigger, ctx, e) <= end]
    return events, end, complete


def _feed_key(deps: TriggerDeps, ctx: Context, name: str, lo: int) -> tuple:
    return (deps.settings.provider_name, name, lo, tuple(sorted(ctx.filters.items())))


class _NotShared(Exception):
    """A feed read that was cut (page budget) or not whole: used by its poll only, never shared."""


def _event_ms(trigger: Trigger, ctx: Context, ev: Any) -> int:
    c = trigger.candidate(ctx, ev)
    return c.t_ms if c is not None else -1


def _read_pages(feed: Callable[..., FeedPage], lo: int, hi: int, page_size: int,
                max_pages: int) -> tuple[list[Any], bool, int]:
    """Pages of one feed until its end or the budget: ``(items, read whole, upstream calls)``."""
    out: list[Any] = []
    after = 0
    for n in range(1, max_pages + 1):
        page = feed(_dt(lo), _dt(hi), after=after, page_size=page_size)
        out.extend(page.items)
        if page.next_after is None or page.next_after <= after:
            return out, True, n
        after = page.next_after
    return out, False, max_pages


# -- the seen set: in the state, or in the database when it is large ---------------------------------------

def _load_seen(store, st: TriggerState) -> dict[bytes, int]:
    if not st.spill:
        return dict(st.seen)
    packed = store.load_seen(st.spill)
    if packed is None:
        raise state_error("TRIGGER_STATE_EXPIRED", "The list of events this trigger already delivered was removed "
                                                   "after a long pause.")
    try:
        return unpack_seen(packed)
    except ValueError as exc:  # pragma: no cover - the service wrote it
        raise ActionError(500, "TRIGGER_STATE_CORRUPT", "A stored trigger state cannot be read.") from exc


def _store_seen(store, st: TriggerState, seen: dict[bytes, int]) -> None:
    if len(seen) <= INLINE_SEEN_MAX:
        st.seen, st.spill = seen, None
        return
    packed = pack_seen(seen)
    set_id = StateCodec.seen_id(st.binding, packed)
    store.save_seen(set_id, packed)
    st.seen, st.spill = {}, set_id
