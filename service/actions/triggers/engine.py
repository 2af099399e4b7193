"""One poll of a trigger: the first call (baseline or ``since``), the window read against the seen set, the
per-contact baseline of the triggers that keep fingerprints, and the next state."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from service import metrics
from service.actions.deps import TriggerDeps
from service.actions.problems import invalid
from service.actions.triggers.base import Candidate, Context, Trigger, epoch_ms, from_ms, now_ms
from service.actions.triggers.feeds import read_window
from service.actions.triggers.kinds import TRIGGERS
from service.actions.triggers.state import TriggerState, load_seen, state_error, store_seen
from service.actions.triggers.store import Version

log = logging.getLogger(__name__)

#: where a baseline of every contact starts reading (the feed's window is required)
BASELINE_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: baseline pages overlap by this many items (offset paging over a list that changes while it is read)
BASELINE_REREAD = 50
MAX_BATCH = 1000


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
    """Answer one poll of a trigger (``state`` None: the first call); counted in :mod:`service.metrics`."""
    try:
        result = _poll(deps, operation, params, state=state, caller=caller, since=since, batch_size=batch_size)
    except Exception:
        metrics.trigger_poll(operation, "error", 0)
        raise
    metrics.trigger_poll(operation, result.status, len(result.items))
    return result


def _poll(deps: TriggerDeps, operation: str, params: dict[str, Any], *, state: str | None, caller: str | None,
          since: Any = None, batch_size: Any = None) -> PollResult:
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
    if st.kind != operation or st.binding != binding or st.tenant != deps.platform.tenant:
        raise state_error("TRIGGER_STATE_FOREIGN", "This trigger state belongs to another trigger, other filter "
                                                   "values or another connection.")
    ctx = Context(deps=deps, state=st, codec=codec, store=store, filters=filters)
    seen = load_seen(store, st)
    if trigger.uses_store(filters):
        if not st.instance or not store.touch_instance(st.instance, deps.platform.tenant):
            raise state_error("TRIGGER_STATE_EXPIRED", "The data this trigger keeps in the service was removed "
                                                       "after a long pause.")
        if st.baseline_after is not None:
            return _continue_baseline(deps, trigger, ctx, seen, filters, now)
    overlap = int(deps.settings.overlap_seconds * 1000)
    lo, hi = st.cursor_ms - overlap, now + overlap
    events, hi, complete = read_window(deps, trigger, ctx, lo, hi)
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
                       filters=st.filters, instance=st.instance, tenant=deps.platform.tenant)
    store_seen(store, nxt, new_seen)
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
    st = TriggerState(kind=trigger.operation, binding=binding, cursor_ms=now, origin_ms=now,
                      tenant=deps.platform.tenant)
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
        events, hi, _ = read_window(deps, trigger, ctx, lo, hi, share=False)
        for ev in events:  # what is already there when the trigger starts is not new
            c = trigger.candidate(ctx, ev)
            if c is not None and lo <= c.t_ms <= hi:
                seen[c.key] = c.t_ms // 1000
    if trigger.uses_store(filters):
        st.instance = base64.urlsafe_b64encode(os.urandom(12)).decode()
        store.create_instance(st.instance, trigger.operation, deps.platform.tenant)
        st.baseline_after = 0
        return _continue_baseline(deps, trigger, ctx, seen, filters, now)
    store_seen(store, st, seen)
    return PollResult(status=202, items=[], state=codec.dumps(st), retry_after=deps.settings.poll_seconds,
                      query=filters, upstream_calls=ctx.calls)


def _continue_baseline(deps: TriggerDeps, trigger: Trigger, ctx: Context, seen: dict[bytes, int], filters: dict[str, str],
                       now: int) -> PollResult:
    """Record the fingerprint of every contact, a page budget per poll (202 + Retry-After 0 until done)."""
    st = ctx.state
    overlap = int(deps.settings.overlap_seconds * 1000)
    settings = deps.settings
    after = st.baseline_after or 0
    until = from_ms(now + overlap)
    done = False
    for _ in range(settings.max_pages):
        start = max(0, after - BASELINE_REREAD) if after else 0
        page = ctx.provider.contact_feed(BASELINE_FROM, until, after=start, page_size=settings.page_size)
        ctx.calls += 1
        versions = [Version(ctx.codec.contact_hash(ev.external_id), epoch_ms(ev.last_changed) or 0,
                            trigger.fingerprint(ctx, ev)) for ev in page.items]
        ctx.store.record_baseline(st.instance, versions)
        if page.next_after is None or page.next_after <= start:
            done = True
            break
        after = page.next_after
    nxt = TriggerState(kind=st.kind, binding=st.binding, cursor_ms=st.cursor_ms, origin_ms=st.origin_ms,
                       filters=st.filters, instance=st.instance, baseline_after=None if done else after,
                       tenant=st.tenant)
    store_seen(ctx.store, nxt, seen)
    return PollResult(status=202, items=[], state=ctx.codec.dumps(nxt),
                      retry_after=settings.poll_seconds if done else 0, query=filters,
                      upstream_calls=ctx.calls)

