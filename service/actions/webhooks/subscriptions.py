"""Subscriptions: what Power Automate creates with ``POST /hooks`` and ends with ``DELETE`` on the Location.

A subscription is all or nothing for the caller: it is stored, its upstream webhook is made to exist at the
platform (created, or its watched attributes widened), and only then is it answered 201. If the platform
refuses or is away, the subscription is ended again and the caller gets the problem (a 503 to retry, a 4xx to
fix); a retry of the same subscription (same callback, event and filter) finds the active one and answers it
again, with the same Location.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.actions.problems import invalid, to_problem
from service.actions.webhooks import upstream
from service.actions.webhooks.callbacks import CallbackRefused, hint
from service.actions.webhooks.deps import RelayDeps, insert_ignore, new_id, policy
from service.actions.webhooks.keys import lookup_hash
from service.actions.webhooks.model import ACTIVE, CANCELLED, DELETED, ORPHANED, PENDING, deliveries, subscriptions
from service.actions.webhooks.model import upstreams as ups
from service.providers.webhooks import EventType

log = logging.getLogger(__name__)

S = subscriptions.c
#: most attributes a Piggy filter may name, longest tag name
MAX_ATTRIBUTES, MAX_NAME = 100, 200


@dataclass(frozen=True)
class Subscription:
    id: str
    event: str
    status: str
    #: the secret of the subscription's Location (``?t=``)
    token: str
    filter: dict[str, Any]

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "event": self.event, "status": self.status}
        if self.filter:
            out["filter"] = {k: (";".join(v) if isinstance(v, list) else v) for k, v in self.filter.items()}
        return out


def event_type(deps: RelayDeps, name: Any) -> EventType:
    for etype in deps.format.events:
        if etype.name == name:
            return etype
    names = ", ".join(e.name for e in deps.format.events)
    raise invalid("event", f"Unknown event {str(name)[:64]!r}: choose one of {names}.", code="UNKNOWN_EVENT")


def _names(value: Any, field_name: str) -> list[str]:
    if value is None or value == "":
        return []
    items = value.split(";") if isinstance(value, str) else value if isinstance(value, list) else None
    if items is None or not all(isinstance(i, str) for i in items):
        raise invalid(field_name, "Give the attribute names as text separated by semicolons, or a list of texts.")
    names = sorted({i.strip() for i in items if i.strip()})
    if len(names) > MAX_ATTRIBUTES or any(len(n) > MAX_NAME for n in names):
        raise invalid(field_name, f"At most {MAX_ATTRIBUTES} attribute names of at most {MAX_NAME} characters.")
    return names


def normalise_filter(etype: EventType, raw: Any) -> dict[str, Any]:
    """The stored form of a flow's filter: ``{"attributes": [sorted names]}``, ``{"tag": "name"}`` or ``{}``."""
    if raw in (None, {}):
        return {}
    if not isinstance(raw, dict):
        raise invalid("filter", "The filter must be an object.")
    given = {k: v for k, v in raw.items() if v not in (None, "", [])}
    allowed = {etype.filter} if etype.filter else set()
    extra = sorted(set(given) - allowed)
    if extra:
        what = f"only {etype.filter}" if etype.filter else "no filter"
        raise invalid(f"filter.{extra[0]}", f"The event {etype.name} takes {what}.", code="FILTER_NOT_SUPPORTED")
    if "attributes" in given:
        names = _names(given["attributes"], "filter.attributes")
        return {"attributes": names} if names else {}
    if "tag" in given:
        tag = given["tag"]
        if not isinstance(tag, (str, int)) or not str(tag).strip() or len(str(tag)) > MAX_NAME:
            raise invalid("filter.tag", "Give one tag (its name or id).")
        return {"tag": str(tag).strip()}
    return {}


def _callback(deps: RelayDeps, url: Any) -> str:
    try:
        policy(deps.settings).check(url)
    except CallbackRefused as exc:
        raise invalid("callbackUrl", f"Refused: {exc.reason}.", code="CALLBACK_URL_NOT_ALLOWED") from None
    return url


def subscribe(deps: RelayDeps, *, scope: str, caller: str | None, event: Any, callback_url: Any, filter_: Any,
              inbound_base: str, wait_seconds: float = 30.0) -> tuple[Subscription, bool]:
    """Subscribe ``callback_url`` to ``event``; ``(subscription, created)``. Raises ActionError (400 for bad
    input) or the platform's error (service.providers.errors) when its webhook cannot be set up."""
    etype = event_type(deps, event)
    url = _callback(deps, callback_url)
    flt = normalise_filter(etype, filter_)
    key = deps.box.digest("callback", json.dumps([deps.platform, etype.name, url, flt], sort_keys=True))
    base = (deps.settings.public_url or inbound_base).rstrip("/")
    now = deps.now()
    with deps.engine.begin() as conn:
        up = upstream.get_or_create(deps, conn, scope, etype.name, base, now)
        row = conn.execute(sa.select(S.id, S.filter).where(S.scope == scope, S.callback_key == key,
                                                           S.status == ACTIVE)).first()
        created = row is None
        sub_id = new_id("hook_", now) if created else row.id
        if created:
            inserted = insert_ignore(conn, subscriptions, [{
                "id": sub_id, "scope": scope, "platform": deps.platform, "event": etype.name, "upstream": up,
                "caller": (caller or None) and str(caller)[:255], "filter": flt or None,
                "callback": deps.box.seal(sub_id, "callback", url), "callback_hint": hint(url),
                "callback_key": key, "status": ACTIVE, "created_at": now, "updated_at": now}])
            if not inserted:  # the same subscription arrived twice at once: the other one is it
                created = False
                sub_id = conn.execute(sa.select(S.id).where(S.scope == scope, S.callback_key == key,
                                                            S.status == ACTIVE)).scalar_one()
            else:
                upstream.bump(conn, up, now)
        version = conn.execute(sa.select(ups.c.version).where(ups.c.id == up)).scalar_one()
    try:
        upstream.sync(deps, up, until_version=version, wait_seconds=wait_seconds)
    except Exception as exc:
        problem = to_problem(exc)
        log.warning("webhook subscription to %s failed: %s", etype.name,
                    problem.code if problem else type(exc).__name__)
        if created:  # all or nothing: Power Automate retries the whole registration
            try:
                end(deps, sub_id, DELETED, reason="the platform's webhook could not be set up")
            except Exception:  # noqa: BLE001 - the database itself failed: the original error says so
                log.exception("could not end the failed subscription %s", sub_id)
        raise
    log.info("webhook subscription %s", "created" if created else "repeated",
             extra={"subscription": sub_id, "event": etype.name, "callback": hint(url)})
    return Subscription(sub_id, etype.name, ACTIVE, deps.box.token("delete", sub_id), flt), created


def unsubscribe(deps: RelayDeps, sub_id: str, token: str | None, *, scope: str | None) -> bool:
    """End a subscription (the DELETE on its Location). True when an active or orphaned one ended; an unknown id,
    a wrong token or a repeat changes nothing. The upstream webhook is removed when its last flow goes."""
    if not sub_id or len(sub_id) > 40 or not token or not _token_ok(deps, sub_id, token):
        return False
    up = end(deps, sub_id, DELETED, scope=scope, reason="deleted")
    if up is None:
        return False
    try:
        upstream.sync(deps, up, wait_seconds=0)  # at once when no other process is at it; else the worker will
    except Exception as exc:  # noqa: BLE001 - the subscription has ended; the worker finishes the upstream side
        log.warning("removing the platform's webhook failed, the worker retries: %s", type(exc).__name__)
    return True


def _token_ok(deps: RelayDeps, sub_id: str, token: str) -> bool:
    import hmac

    return hmac.compare_digest(lookup_hash(deps.box.token("delete", sub_id)), lookup_hash(token))


def end(deps: RelayDeps, sub_id: str, status: str, *, scope: str | None = None, reason: str = "",
        http_status: int | None = None) -> str | None:
    """Move an active (or, for DELETED, orphaned) subscription to ``status``, cancel its pending deliveries and
    mark its upstream webhook for a sync. Returns the upstream's id, None when nothing changed."""
    now = deps.now()
    from_states = (ACTIVE, ORPHANED) if status == DELETED else (ACTIVE,)
    with deps.engine.begin() as conn:
        q = sa.select(S.upstream, S.status).where(S.id == sub_id)
        if scope is not None:
            q = q.where(S.scope == scope)
        row = conn.execute(q).first()
        if row is None or row.status not in from_states:
            return None
        values: dict[str, Any] = {"status": status, "updated_at": now, "last_error": reason[:300] or None}
        if http_status is not None:
            values["last_status"] = http_status
        if row.status == ACTIVE:
            values["ended_at"] = now
        done = conn.execute(sa.update(subscriptions).where(S.id == sub_id, S.status == row.status)
                            .values(**values)).rowcount
        if not done:
            return None
        conn.execute(sa.update(deliveries).where(deliveries.c.subscription_id == sub_id,
                                                 deliveries.c.status == PENDING)
                     .values(status=CANCELLED, updated_at=now))
        if row.status == ACTIVE:
            upstream.bump(conn, row.upstream, now)
    return row.upstream


def purge_ended(deps: RelayDeps, now: datetime) -> int:
    """Remove subscriptions that ended (orphaned, deleted) more than the retention ago, with their deliveries."""
    from datetime import timedelta

    cutoff = now - timedelta(days=deps.settings.ended_retention_days)
    with deps.engine.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.select(S.id).where(S.status.in_((ORPHANED, DELETED)),
                                                                S.ended_at < cutoff).limit(500))]
        if not ids:
            return 0
        conn.execute(sa.delete(deliveries).where(deliveries.c.subscription_id.in_(ids)))
        return conn.execute(sa.delete(subscriptions).where(S.id.in_(ids))).rowcount or 0
