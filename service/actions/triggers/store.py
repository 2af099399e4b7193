"""What polling triggers keep in the database (the ledger's database; tables in migration ``0004_triggers``).

* ``trigger_seen_sets``: seen sets too large for the ``Location`` URL, keyed by a hash of their content
  (immutable: a replayed poll finds the set its URL names), with when a poll last used them.
* ``trigger_instances``: one row per trigger instance that keeps per-contact data (unsubscribes, changes of
  chosen fields), with when it was last polled.
* ``trigger_contacts``: per instance and contact (keyed hash of the external id) the fingerprint of what the
  trigger watches (permission bits, keyed hashes of field values) before and after the contact's last change
  version (``cur_at``, the platform's last-change time in epoch ms). Nothing personal is stored in clear.

Replays are safe: a contact version already recorded answers with the fingerprint it had before that version,
so a poll that is answered again (a lost answer, a retry after a 503) sees the same transitions.

``purge(older_than_days)`` (called by ``python -m service.db purge``) deletes seen sets and instances (with
their contact rows) not used for that long: a flow paused longer than that answers TRIGGER_STATE_EXPIRED.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.actions.ledger.model import Base, UTCDateTime
from service.cache import MISSING, TTLCache

#: a running trigger refreshes ``last_seen_at`` at most this often (one write per hour, not per poll)
TOUCH_INTERVAL = dt.timedelta(hours=1)
#: an instance this process found in the database is taken as alive, without asking again, for this long: a
#: quiet poll then touches no table. A purge in this process forgets at once; one in another process (``python
#: -m service.db purge``) is noticed within this time (purging with ``--days 1`` or more cannot remove an
#: instance polled in the last hour anyway: ``last_seen_at`` is at most TOUCH_INTERVAL old).
ALIVE_MEMO_SECONDS = 60.0
FINGERPRINT_MAX = 512

seen_sets = sa.Table(
    "trigger_seen_sets", Base.metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("used_at", UTCDateTime, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_trigger_seen_sets_used", "used_at"),
)

instances = sa.Table(
    "trigger_instances", Base.metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    #: hosted mode: the tenant whose trigger it is (0006_hosted); None in single mode
    sa.Column("tenant", sa.String(40), nullable=True),
    sa.Index("ix_trigger_instances_last_seen", "last_seen_at"),
)

contacts = sa.Table(
    "trigger_contacts", Base.metadata,
    sa.Column("instance_id", sa.String(32), primary_key=True),
    sa.Column("contact_hash", sa.String(32), primary_key=True),
    sa.Column("prev", sa.String(FINGERPRINT_MAX), nullable=True),
    sa.Column("cur", sa.String(FINGERPRINT_MAX), nullable=False),
    sa.Column("cur_at", sa.BigInteger, nullable=False),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Version:
    """One contact as a poll sees it: the keyed hash of its id, its last-change time and its fingerprint."""

    contact_hash: str
    at_ms: int
    fingerprint: str


#: what :meth:`TriggerStore.previous` answers for a contact the instance has never recorded
UNKNOWN = object()


class TriggerStore:
    def __init__(self, engine: Engine, alive_memo_seconds: float = ALIVE_MEMO_SECONDS) -> None:
        self.engine = engine
        self._alive = TTLCache(alive_memo_seconds)

    # -- seen sets ------------------------------------------------------------------------------------------
    def save_seen(self, set_id: str, packed: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(sa.select(seen_sets.c.id).where(seen_sets.c.id == set_id)).first() is None:
                self._insert_ignore(conn, seen_sets, [{"id": set_id, "used_at": _now(), "data": packed}])

    def load_seen(self, set_id: str) -> str | None:
        """The packed set, or None when it was purged. Marks it used (at most once per TOUCH_INTERVAL), so a
        set that stays the same while nothing happens is not purged from under a running trigger."""
        now = _now()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(seen_sets.c.data, seen_sets.c.used_at)
                               .where(seen_sets.c.id == set_id)).first()
        if row is not None and now - row.used_at >= TOUCH_INTERVAL:
            with self.engine.begin() as conn:
                conn.execute(sa.update(seen_sets).where(seen_sets.c.id == set_id).values(used_at=now))
        return None if row is None else row.data

    # -- instances ------------------------------------------------------------------------------------------
    def create_instance(self, instance_id: str, operation: str, tenant: str | None = None) -> None:
        now = _now()
        with self.engine.begin() as conn:
            self._insert_ignore(conn, instances, [{"id": instance_id, "operation": operation[:64], "created_at": now,
                                                   "last_seen_at": now, "tenant": tenant}])

    def touch_instance(self, instance_id: str, tenant: str | None = None) -> bool:
        """Mark the instance as alive; False when it does not exist (purged) or is another tenant's."""
        if self._alive.peek((instance_id, tenant)) is not MISSING:
            return True
        now = _now()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(instances.c.last_seen_at, instances.c.tenant)
                               .where(instances.c.id == instance_id)).first()
        if row is None or row.tenant != tenant:
            return False
        seen = row.last_seen_at
        if now - seen >= TOUCH_INTERVAL:
            with self.engine.begin() as conn:
                done = conn.execute(sa.update(instances).where(instances.c.id == instance_id)
                                    .values(last_seen_at=now)).rowcount
            if not done:  # purged between the two statements
                return False
        self._alive.put((instance_id, tenant), True)
        return True

    # -- per-contact fingerprints ---------------------------------------------------------------------------
    def record_baseline(self, instance_id: str, versions: Iterable[Version]) -> int:
        """Record contacts the instance does not know yet (their state when the trigger started)."""
        rows = {v.contact_hash: v for v in versions}
        if not rows:
            return 0
        with self.engine.begin() as conn:
            known = self._known(conn, instance_id, list(rows))
            new = [{"instance_id": instance_id, "contact_hash": h, "prev": v.fingerprint, "cur": v.fingerprint,
                    "cur_at": v.at_ms} for h, v in rows.items() if h not in known]
            if new:
                self._insert_ignore(conn, contacts, new)
        return len(new)

    def previous(self, instance_id: str, versions: Sequence[Version]) -> list[object]:
        """For each version, the fingerprint the contact had before it, or :data:`UNKNOWN` (never recorded).
        Read-only; :meth:`record` writes what a poll consumed."""
        if not versions:
            return []
        with self.engine.connect() as conn:
            known = self._known(conn, instance_id, [v.contact_hash for v in versions])
        out: list[object] = []
        for v in versions:
            row = known.get(v.contact_hash)
            if row is None:
                out.append(UNKNOWN)
            elif v.at_ms == row.cur_at:
                out.append(row.prev)  # this version was recorded before: answer as the first time
            elif v.at_ms > row.cur_at:
                out.append(row.cur)
            else:  # an older version than the one recorded: it cannot be a new transition
                out.append(v.fingerprint)
        return out

    def record(self, instance_id: str, versions: Sequence[Version]) -> None:
        """Make each version the contact's current one (the previous current becomes ``prev``)."""
        if not versions:
            return
        with self.engine.begin() as conn:
            known = self._known(conn, instance_id, [v.contact_hash for v in versions])
            new = []
            for v in versions:
                row = known.get(v.contact_hash)
                if row is None:
                    new.append({"instance_id": instance_id, "contact_hash": v.contact_hash, "prev": None,
                                "cur": v.fingerprint, "cur_at": v.at_ms})
                elif v.at_ms > row.cur_at:
                    conn.execute(sa.update(contacts).where(
                        contacts.c.instance_id == instance_id, contacts.c.contact_hash == v.contact_hash,
                        contacts.c.cur_at == row.cur_at).values(prev=row.cur, cur=v.fingerprint, cur_at=v.at_ms))
            if new:
                self._insert_ignore(conn, contacts, new)

    # -- maintenance ----------------------------------------------------------------------------------------
    def purge(self, older_than_days: int, now: dt.datetime | None = None) -> int:
        """Delete seen sets and instances (with their contacts) not used for ``older_than_days``; returns rows."""
        cutoff = (now or _now()) - dt.timedelta(days=older_than_days)
        self._alive.clear()
        total = 0
        with self.engine.begin() as conn:
            total += conn.execute(sa.delete(seen_sets).where(seen_sets.c.used_at < cutoff)).rowcount or 0
            dead = [r[0] for r in conn.execute(sa.select(instances.c.id).where(instances.c.last_seen_at < cutoff))]
            for chunk in range(0, len(dead), 500):
                ids = dead[chunk:chunk + 500]
                total += conn.execute(sa.delete(contacts).where(contacts.c.instance_id.in_(ids))).rowcount or 0
                total += conn.execute(sa.delete(instances).where(instances.c.id.in_(ids))).rowcount or 0
        return total

    # -- helpers --------------------------------------------------------------------------------------------
    @staticmethod
    def _known(conn, instance_id: str, hashes: list[str]) -> dict[str, sa.Row]:
        out: dict[str, sa.Row] = {}
        for i in range(0, len(hashes), 500):
            chunk = hashes[i:i + 500]
            for row in conn.execute(sa.select(contacts.c.contact_hash, contacts.c.prev, contacts.c.cur,
                                              contacts.c.cur_at)
                                    .where(contacts.c.instance_id == instance_id,
                                           contacts.c.contact_hash.in_(chunk))):
                out[row.contact_hash] = row
        return out

    @staticmethod
    def _insert_ignore(conn, table: sa.Table, rows: list[dict]) -> None:
        """INSERT, skipping rows whose key exists (a concurrent poll of the same state wrote it first)."""
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        conn.execute(insert(table).on_conflict_do_nothing(), rows)
