"""The outbox: each pending delivery POSTed to its flow's callback, at least once, with the event's ``eventId``.

One request per event and subscription, body ``{eventId, event, platform, occurredAt, data}`` (header
``webhook-id`` = eventId as well). What the callback answers decides:

* any 2xx: delivered;
* 408, 429, 5xx, a 3xx (never followed), no answer (connection refused, timeout): tried again after the next
  step of ``WEBHOOK_RETRY_SCHEDULE`` (or the callback's longer ``Retry-After``); when the schedule has run out
  the delivery is given up (``failed``), and a subscription that has not accepted anything since is orphaned;
* 400 ``WorkflowTriggerIsNotEnabled``, 401, 404, 410: the flow is off, deleted or its URL is void - the
  subscription is orphaned and nothing more is sent to it;
* any other 4xx: this event is refused (``failed``); the subscription stays.

Claims: a worker moves ``next_at`` to the end of its lease and raises ``attempts``; a worker that dies holding
a claim loses it when the lease ends and another sends it again. Between the callback's 2xx and the row being
marked delivered there is a window (a crash there sends the event again, with the same ``eventId``): the
promise is at least once, and the ``eventId`` lets a flow drop a repeat.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from service import metrics
from service.actions.webhooks import subscriptions as subs
from service.actions.webhooks.callbacks import CallbackAnswer
from service.actions.webhooks.deps import RelayDeps, lock_rows, short
from service.actions.webhooks.model import (
    ACTIVE,
    CANCELLED,
    DELIVERED,
    FAILED,
    ORPHANED,
    PENDING,
    deliveries,
    events,
    subscriptions,
)

log = logging.getLogger(__name__)

D, E, S = deliveries.c, events.c, subscriptions.c
GONE_STATUSES = frozenset({401, 404, 410})
GONE_CODES = frozenset({"WorkflowTriggerIsNotEnabled", "WorkflowNotFound"})
DONE, RETRY, GIVEN_UP, REFUSED, ORPHAN = "delivered", "retry", "given_up", "refused", "orphaned"


@dataclass(frozen=True)
class Claim:
    id: int
    attempt: int


def classify(answer: CallbackAnswer) -> str:
    status = answer.status
    if 200 <= status < 300:
        return DONE
    if status in GONE_STATUSES or (status == 400 and answer.code in GONE_CODES):
        return ORPHAN
    if status == 0 and answer.code == "CALLBACK_NOT_ALLOWED":
        return REFUSED
    if status == 0 or status in (408, 429) or status >= 500 or 300 <= status < 400:
        return RETRY
    return REFUSED


def claim(deps: RelayDeps, limit: int) -> list[Claim]:
    """Claim up to ``limit`` due deliveries for this process (attempts + 1, due again when the lease ends)."""
    if limit <= 0:
        return []
    now = deps.now()
    until = now + timedelta(seconds=deps.settings.delivery_lease_seconds)
    out: list[Claim] = []
    with deps.engine.begin() as conn:
        q = sa.select(D.id, D.attempts).where(D.status == PENDING, D.next_at <= now).order_by(D.next_at).limit(limit)
        for row in conn.execute(lock_rows(conn, q)).all():
            taken = conn.execute(sa.update(deliveries).where(
                D.id == row.id, D.status == PENDING, D.attempts == row.attempts, D.next_at <= now)
                .values(attempts=row.attempts + 1, next_at=until, lease_owner=deps.owner(), updated_at=now)).rowcount
            if taken:
                out.append(Claim(row.id, row.attempts + 1))
    return out


def seconds_to_next(deps: RelayDeps) -> float | None:
    """Seconds until the earliest pending delivery is due (0 when one is due now), None when none is pending."""
    with deps.engine.connect() as conn:
        at = conn.execute(sa.select(sa.func.min(D.next_at)).where(D.status == PENDING)).scalar()
    if at is None:
        return None
    if at.tzinfo is None:  # SQLite's aggregate comes back as text/naive: UTC
        from datetime import UTC, datetime

        at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - deps.now()).total_seconds())


def _load(deps: RelayDeps, c: Claim) -> sa.Row | None:
    with deps.engine.connect() as conn:
        return conn.execute(
            sa.select(D.event_id, D.subscription_id, D.created_at, S.status.label("sub_status"), S.callback,
                      S.callback_hint, S.last_success_at, E.event, E.platform, E.occurred_at, E.payload)
            .select_from(deliveries.join(subscriptions, S.id == D.subscription_id).join(events, E.id == D.event_id))
            .where(D.id == c.id, D.attempts == c.attempt, D.status == PENDING)).first()


def body(deps: RelayDeps, row: sa.Row) -> bytes:
    data = deps.box.open(row.event_id, "event", row.payload).get("data") or {}
    occurred = row.occurred_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    doc = {"eventId": row.event_id, "event": row.event, "platform": row.platform, "occurredAt": occurred,
           "data": data}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def deliver(deps: RelayDeps, c: Claim) -> str | None:
    """Send one claimed delivery and record the outcome; returns it (None when the claim was lost). Each outcome
    is counted in :mod:`service.metrics`."""
    outcome = _deliver(deps, c)
    if outcome is not None:
        metrics.webhook_delivery(outcome)
    return outcome


def _deliver(deps: RelayDeps, c: Claim) -> str | None:
    row = _load(deps, c)
    if row is None:
        return None
    if row.sub_status != ACTIVE:
        _finish(deps, c, CANCELLED, None)
        return CANCELLED
    try:
        url = deps.box.open(row.subscription_id, "callback", row.callback)
        payload = body(deps, row)
    except ValueError:  # sealed under another key: nothing can be sent
        log.error("webhook delivery %s: the stored callback or event cannot be read (key changed)", c.id)
        _finish(deps, c, FAILED, CallbackAnswer(0, error="stored data unreadable"))
        return REFUSED
    answer = deps.callbacks.post(url, payload, {"webhook-id": row.event_id})
    outcome = classify(answer)
    extra = {"eventId": row.event_id, "subscription": row.subscription_id, "callback": row.callback_hint,
             "attempt": c.attempt, "status": answer.status}
    if outcome == DONE:
        _finish(deps, c, DELIVERED, answer)
        with deps.engine.begin() as conn:
            conn.execute(sa.update(subscriptions).where(S.id == row.subscription_id).values(
                last_success_at=deps.now(), last_status=answer.status, last_error=None))
        log.info("webhook delivered", extra=extra)
        return DONE
    if outcome == ORPHAN:
        _finish(deps, c, FAILED, answer)
        subs.end(deps, row.subscription_id, ORPHANED, http_status=answer.status,
                 reason=f"the callback answered {answer.status} {answer.code or ''}".strip())
        log.warning("webhook callback gone: subscription orphaned", extra=extra)
        return ORPHAN
    if outcome == REFUSED:
        _finish(deps, c, FAILED, answer)
        log.warning("webhook delivery refused by the callback (%s); not retried", answer.error, extra=extra)
        return REFUSED
    delay = deps.settings.retry_delay(c.attempt, answer.retry_after)
    if delay is None:
        _finish(deps, c, FAILED, answer)
        log.warning("webhook delivery given up after %d attempts", c.attempt, extra=extra)
        if row.last_success_at is None or row.last_success_at < row.created_at:
            subs.end(deps, row.subscription_id, ORPHANED, http_status=answer.status or None,
                     reason="the callback kept failing")
        return GIVEN_UP
    now = deps.now()
    with deps.engine.begin() as conn:
        conn.execute(sa.update(deliveries).where(D.id == c.id, D.attempts == c.attempt, D.status == PENDING).values(
            next_at=now + timedelta(seconds=delay), lease_owner=None, last_status=answer.status or None,
            last_error=short(answer.error or ""), updated_at=now))
    log.info("webhook delivery failed, retry in %.0f s (%s)", delay, answer.error, extra=extra)
    return RETRY


def _finish(deps: RelayDeps, c: Claim, status: str, answer: CallbackAnswer | None) -> bool:
    now = deps.now()
    values: dict[str, Any] = {"status": status, "lease_owner": None, "updated_at": now}
    if answer is not None:
        values.update(last_status=answer.status or None, last_error=short(answer.error) if answer.error else None)
    if status == DELIVERED:
        values["delivered_at"] = now
    with deps.engine.begin() as conn:
        return bool(conn.execute(sa.update(deliveries).where(D.id == c.id, D.attempts == c.attempt,
                                                             D.status == PENDING).values(**values)).rowcount)


def purge_events(deps: RelayDeps) -> int:
    """Remove events older than the retention whose deliveries are all finished (with those deliveries)."""
    cutoff = deps.now() - timedelta(days=deps.settings.event_retention_days)
    with deps.engine.begin() as conn:
        busy = sa.select(D.event_id).where(D.status == PENDING)
        ids = [r[0] for r in conn.execute(sa.select(E.id).where(E.received_at < cutoff, E.id.not_in(busy))
                                          .limit(500))]
        if not ids:
            return 0
        conn.execute(sa.delete(deliveries).where(D.event_id.in_(ids)))
        return conn.execute(sa.delete(events).where(E.id.in_(ids))).rowcount or 0
