"""Inbound webhooks: ``POST /hooks/inbound/<route token>`` from Piggy or Spoki.

The route token (in the path, never a header the sender sets) finds the upstream webhook and so the account.
The signature is checked on the raw bytes before anything is parsed; a bad or missing one is a 401 and
nothing is stored. The event is then stored once (deduplicated on the platform's event id, or a hash of type +
body), with one pending delivery per active subscription whose filter it passes, in one transaction - and the
call is answered. Delivery is never inline: the worker sends (service.actions.webhooks.delivery).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.actions.problems import ActionError
from service.actions.webhooks import upstream
from service.actions.webhooks.deps import RelayDeps, insert_ignore, new_id
from service.actions.webhooks.keys import lookup_hash
from service.actions.webhooks.model import ACTIVE, PENDING, deliveries, events, subscriptions, upstreams
from service.providers.webhooks import Inbound, SignatureError

log = logging.getLogger(__name__)

#: the largest inbound body accepted (Piggy and Spoki events are a few KB)
MAX_INBOUND_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Received:
    event_id: str
    duplicate: bool
    deliveries: int


def passes(flt: Any, inbound: Inbound) -> bool:
    """Whether a subscription's filter lets the event through. What the platform does not tell (which
    attributes changed, which tag) cannot be filtered on: such an event goes to every flow of the event."""
    if not isinstance(flt, dict) or not flt:
        return True
    wanted = flt.get("attributes")
    if wanted and inbound.changed is not None:
        return bool(set(wanted) & set(inbound.changed))
    tag = flt.get("tag")
    if tag and inbound.tags is not None:
        return str(tag).strip().lower() in inbound.tags
    return True


def receive(deps: RelayDeps, route_token: str, headers: Mapping[str, str], raw: bytes) -> Received:
    if len(raw) > MAX_INBOUND_BYTES:
        raise ActionError(413, "PAYLOAD_TOO_LARGE", f"The webhook body is larger than {MAX_INBOUND_BYTES} bytes.")
    if not route_token or len(route_token) > 100:
        raise _unknown()
    U = upstreams.c
    with deps.engine.connect() as conn:
        row = conn.execute(sa.select(U.id, U.scope, U.event, U.secret).where(
            U.route_hash == lookup_hash(route_token), U.platform == deps.platform)).first()
    if row is None:
        raise _unknown()
    secret = upstream.secret_of(deps, row)
    secrets = (secret,) if secret else ()
    try:
        deps.format.verify(headers, raw, secrets, time.time())
    except SignatureError as exc:
        log.warning("inbound %s webhook refused: %s", deps.platform, exc.reason, extra={"upstream": row.id})
        raise ActionError(401, "WEBHOOK_SIGNATURE_INVALID", "The webhook's signature is missing or wrong.") from None
    try:
        inbound = deps.format.parse(raw, row.event)
    except ValueError:
        raise ActionError(400, "WEBHOOK_PAYLOAD_INVALID", "The webhook's body is not the platform's JSON event.") \
            from None
    return _store(deps, row, inbound, deps.format.dedupe_key(inbound, raw))


def _unknown() -> ActionError:
    return ActionError(404, "WEBHOOK_NOT_FOUND", "No webhook of this service has this address (it was removed).")


def _store(deps: RelayDeps, row: sa.Row, inbound: Inbound, key: str) -> Received:
    now = deps.now()
    event_id = new_id("evt_", now)
    E, S = events.c, subscriptions.c
    with deps.engine.begin() as conn:
        stored = insert_ignore(conn, events, [{
            "id": event_id, "scope": row.scope, "platform": deps.platform, "event": row.event,
            "upstream": row.id, "dedupe_key": key, "occurred_at": inbound.occurred_at or now, "received_at": now,
            "payload": deps.box.seal(event_id, "event", {"data": dict(inbound.data)})}])
        if not stored:
            first = conn.execute(sa.select(E.id).where(E.scope == row.scope, E.platform == deps.platform,
                                                       E.dedupe_key == key)).scalar()
            log.info("inbound %s webhook repeated: already stored", deps.platform, extra={"eventId": first})
            return Received(first or event_id, True, 0)
        targets = [r.id for r in conn.execute(sa.select(S.id, S.filter).where(S.upstream == row.id,
                                                                            S.status == ACTIVE))
                   if passes(r.filter, inbound)]
        if targets:
            conn.execute(sa.insert(deliveries), [{
                "scope": row.scope, "event_id": event_id, "subscription_id": sub, "status": PENDING, "attempts": 0,
                "next_at": now, "created_at": now, "updated_at": now} for sub in targets])
    log.info("inbound %s webhook stored", deps.platform,
             extra={"eventId": event_id, "event": row.event, "deliveries": len(targets)})
    return Received(event_id, False, len(targets))
