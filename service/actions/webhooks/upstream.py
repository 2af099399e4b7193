"""The platform's webhooks we manage: one per scope, platform and event, shared by every flow that wants it.

Desired state lives in the database (the active subscriptions of an upstream row, and their filters); a
**sync** makes the platform match it, under a lease on the row, so that one process at a time talks to the
platform about it (two flows subscribing at once make one webhook):

* no active subscription: the platform's webhook is deleted and the row removed;
* none at the platform yet: it is created (first adopting or clearing a webhook with our URL that a crash
  between the platform's answer and our commit left behind), with a secret per webhook;
* Piggy ``contact_updated``: its attributes are the union of what the flows watch (all of them when a flow
  gives no filter);
* a **reconcile** (daily, or ``python -m service.relay reconcile``) also lists the platform's webhooks and
  recreates ours when someone deleted it there, and fixes its URL, status or attributes when they changed.

``version`` grows with every change of the desired state; a sync records the version it brought the platform
to (``synced_version``), so a change that lands while a sync runs is synced again right after.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from service.actions.webhooks.deps import RelayDeps, insert_ignore, lock_rows, new_id, short
from service.actions.webhooks.keys import lookup_hash
from service.actions.webhooks.model import ACTIVE, subscriptions, upstreams
from service.providers.webhooks import PlatformHook, WebhookManager

log = logging.getLogger(__name__)

U = upstreams.c
INBOUND_PATH = "/hooks/inbound/"
#: a failed sync is tried again after 5 s, 10 s, 20 s, ... at most 10 minutes
_BACKOFF_MAX = 600.0


def inbound_url(deps: RelayDeps, upstream_id: str, base: str) -> str:
    return base.rstrip("/") + INBOUND_PATH + deps.box.token("route", upstream_id)


def get_or_create(deps: RelayDeps, conn: sa.Connection, scope: str, event: str, base: str, now: datetime) -> str:
    """The id of the upstream row for ``(scope, platform, event)``, inserted when missing (in ``conn``)."""
    find = sa.select(U.id).where(U.scope == scope, U.platform == deps.platform, U.event == event)
    found = conn.execute(find).scalar()
    if found is not None:
        return found
    up_id = new_id("wu_", now)[:32]
    insert_ignore(conn, upstreams, [{
        "id": up_id, "scope": scope, "platform": deps.platform, "event": event,
        "route_hash": lookup_hash(deps.box.token("route", up_id)), "inbound_base": base[:512],
        "version": 0, "synced_version": 0, "sync_attempts": 0, "created_at": now, "updated_at": now}])
    return conn.execute(find).scalar_one()


def bump(conn: sa.Connection, up_id: str, now: datetime) -> None:
    """The desired state of the upstream webhook changed (a flow came, went or changed its filter)."""
    conn.execute(sa.update(upstreams).where(U.id == up_id)
                 .values(version=U.version + 1, sync_due_at=now, sync_attempts=0, updated_at=now))


def _claim(deps: RelayDeps, up_id: str) -> sa.Row | None:
    now = deps.now()
    with deps.engine.begin() as conn:
        taken = conn.execute(sa.update(upstreams).where(
            U.id == up_id, sa.or_(U.lease_until.is_(None), U.lease_until < now))
            .values(lease_until=now + timedelta(seconds=deps.settings.sync_lease_seconds),
                    lease_owner=deps.owner())).rowcount
        if not taken:
            return None
        return conn.execute(sa.select(upstreams).where(U.id == up_id)).first()


def sync(deps: RelayDeps, up_id: str, *, until_version: int | None = None, wait_seconds: float = 0.0,
         reconcile: bool = False) -> bool:
    """Bring the platform's webhook of ``up_id`` in line (see the module docstring). With ``until_version``,
    until at least that version is synced, waiting up to ``wait_seconds`` for a sync another process runs.
    True when done (or the row is gone); False when another process holds it and the time is up. A platform
    error is raised after the row is marked for a retry."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.02
    for _ in range(1000):
        if until_version is not None:
            with deps.engine.connect() as conn:
                cur = conn.execute(sa.select(U.synced_version).where(U.id == up_id)).first()
            if cur is None or cur.synced_version >= until_version:
                return True  # done already (by this process or another)
        row = _claim(deps, up_id)
        if row is None:
            with deps.engine.connect() as conn:
                cur = conn.execute(sa.select(U.synced_version).where(U.id == up_id)).first()
            if cur is None or (until_version is not None and cur.synced_version >= until_version):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)  # another process syncs it now: look again shortly
            pause = min(pause * 2, 0.25)
            continue
        try:
            synced = _sync_claimed(deps, row, reconcile=reconcile)
        except Exception as exc:
            _release_failed(deps, row, exc)
            raise
        if synced is None or until_version is None or synced >= until_version:
            return True
    return False  # pragma: no cover - a change on every single pass


def _release_failed(deps: RelayDeps, row: sa.Row, exc: BaseException) -> None:
    now = deps.now()
    attempts = (row.sync_attempts or 0) + 1
    delay = min(_BACKOFF_MAX, 5.0 * 2 ** (attempts - 1))
    log.warning("syncing the %s webhook for %s failed (attempt %d, next in %.0f s): %s", deps.platform, row.event,
                attempts, delay, type(exc).__name__)
    with deps.engine.begin() as conn:
        conn.execute(sa.update(upstreams).where(U.id == row.id, U.lease_owner == deps.owner()).values(
            lease_until=None, lease_owner=None, sync_attempts=attempts, sync_due_at=now + timedelta(seconds=delay),
            last_error=short(getattr(exc, "message", None) or type(exc).__name__), updated_at=now))


def _wanted_attributes(deps: RelayDeps, event: str, filters: list[Any], manager: WebhookManager) -> tuple[str, ...]:
    etype = next((e for e in deps.format.events if e.name == event), None)
    if etype is None or etype.filter != "attributes":
        return ()
    names: set[str] = set()
    for flt in filters:
        wanted = (flt or {}).get("attributes") if isinstance(flt, dict) else None
        if not wanted:
            return manager.watchable_attributes()  # a flow without a filter: every attribute
        names.update(wanted)
    return tuple(sorted(names))


def _sync_claimed(deps: RelayDeps, row: sa.Row, *, reconcile: bool) -> int | None:
    """One pass under the lease. Returns the version now synced, None when the row was removed."""
    now = deps.now()
    with deps.engine.connect() as conn:
        filters = [r.filter for r in conn.execute(sa.select(subscriptions.c.filter).where(
            subscriptions.c.upstream == row.id, subscriptions.c.status == ACTIVE))]
    manager = deps.managers.manager(row.scope)
    if not filters:
        return _remove(deps, row, manager)
    base = (deps.settings.public_url or row.inbound_base).rstrip("/")
    url = inbound_url(deps, row.id, base)
    attrs = _wanted_attributes(deps, row.event, filters, manager)
    hook_id = row.platform_hook_id
    secret = secret_of(deps, row)
    if row.secret and secret is None and hook_id:
        # sealed under a key we no longer have: that webhook cannot be verified any more - replace it
        log.warning("the %s webhook for %s has a secret we cannot read (key changed): replacing it", deps.platform,
                    row.event)
        manager.delete_hook(hook_id)
        hook_id = None
    due = reconcile or row.reconciled_at is None or row.reconciled_at < now - timedelta(
        seconds=deps.settings.reconcile_seconds)
    checked = False
    if hook_id and due:
        listed = manager.list_hooks(row.event)
        checked = True
        found = next((h for h in listed if h.id == hook_id), None)
        if found is None:
            log.warning("the %s webhook for %s was removed in the platform: recreating it", deps.platform, row.event)
            hook_id = None
        elif found.url != url or not found.active or tuple(found.attributes) != tuple(attrs):
            log.info("the %s webhook for %s differs from ours: fixing it", deps.platform, row.event)
            manager.update_hook(hook_id, url=url, attributes=attrs)
    if hook_id is None:
        hook_id, secret = _create(deps, row, manager, url, attrs, secret)
        checked = True
    elif not checked and tuple(row.attributes or ()) != tuple(attrs):
        manager.update_hook(hook_id, url=url, attributes=attrs)
    with deps.engine.begin() as conn:
        values: dict[str, Any] = {
            "platform_hook_id": hook_id, "attributes": list(attrs) or None,
            "secret": deps.box.seal(row.id, "secret", secret) if secret else None,
            "synced_version": row.version, "sync_attempts": 0, "last_error": None, "lease_until": None,
            "lease_owner": None, "updated_at": now, "inbound_base": base[:512],
            "route_hash": lookup_hash(deps.box.token("route", row.id)),
            "sync_due_at": sa.case((U.version == row.version, None), else_=now)}
        if checked:
            values["reconciled_at"] = now
        conn.execute(sa.update(upstreams).where(U.id == row.id, U.lease_owner == deps.owner()).values(**values))
    return row.version


def secret_of(deps: RelayDeps, row: Any) -> str | None:
    """The upstream webhook's secret, None when there is none or it cannot be read (another key)."""
    if not row.secret:
        return None
    try:
        return deps.box.open(row.id, "secret", row.secret)
    except ValueError:
        return None


def _create(deps: RelayDeps, row: sa.Row, manager: WebhookManager, url: str, attrs: tuple[str, ...],
            secret: str | None) -> tuple[str, str | None]:
    strays: list[PlatformHook] = [h for h in manager.list_hooks(row.event) if h.url == url]
    if strays and secret and deps.format.new_secret() is not None:
        # ours, created before a crash kept us from recording it: its secret is the one we stored first
        keep, *others = strays
        manager.update_hook(keep.id, url=url, attributes=attrs)
        for h in others:
            manager.delete_hook(h.id)
        return keep.id, secret
    for h in strays:  # ours, but its secret is unknown (the platform made it): replace it
        manager.delete_hook(h.id)
    secret = secret or deps.format.new_secret()
    if secret:
        with deps.engine.begin() as conn:  # kept before the platform knows it: a crash after create can adopt
            conn.execute(sa.update(upstreams).where(U.id == row.id, U.lease_owner == deps.owner())
                         .values(secret=deps.box.seal(row.id, "secret", secret)))
    created = manager.create_hook(row.event, url, secret=secret, attributes=attrs,
                                  name=f"{deps.settings.hook_name} {row.event} {row.id}"[:120])
    log.info("created the %s webhook for %s", deps.platform, row.event, extra={"upstream": row.id})
    return created.id, created.secret or secret


def _remove(deps: RelayDeps, row: sa.Row, manager: WebhookManager) -> int | None:
    if row.platform_hook_id:
        manager.delete_hook(row.platform_hook_id)
        log.info("removed the %s webhook for %s (its last flow went)", deps.platform, row.event,
                 extra={"upstream": row.id})
    with deps.engine.begin() as conn:
        gone = conn.execute(sa.delete(upstreams).where(U.id == row.id, U.version == row.version,
                                                       U.lease_owner == deps.owner())).rowcount
        if gone:
            return None
        # a flow subscribed meanwhile: the webhook is gone at the platform, the next pass creates it again
        conn.execute(sa.update(upstreams).where(U.id == row.id, U.lease_owner == deps.owner()).values(
            platform_hook_id=None, secret=None, attributes=None, lease_until=None, lease_owner=None,
            sync_due_at=deps.now()))
    return row.synced_version


def claim_due(deps: RelayDeps, limit: int) -> list[str]:
    """Ids of upstream rows due for a sync (changed, failed earlier, or due for their reconcile)."""
    now = deps.now()
    with deps.engine.begin() as conn:
        q = sa.select(U.id).where(U.sync_due_at <= now, sa.or_(U.lease_until.is_(None), U.lease_until < now),
                                  U.platform == deps.platform).order_by(U.sync_due_at).limit(limit)
        return [r[0] for r in conn.execute(lock_rows(conn, q))]


def mark_reconcile_due(deps: RelayDeps, *, everything: bool = False) -> int:
    """Make the rows whose last reconcile is older than the interval (or every row) due for a sync."""
    now = deps.now()
    q = sa.update(upstreams).where(U.sync_due_at.is_(None))
    if not everything:
        q = q.where(sa.or_(U.reconciled_at.is_(None),
                           U.reconciled_at < now - timedelta(seconds=deps.settings.reconcile_seconds)))
    with deps.engine.begin() as conn:
        if everything:
            conn.execute(sa.update(upstreams).values(reconciled_at=None))
        return conn.execute(q.values(sync_due_at=now)).rowcount or 0
