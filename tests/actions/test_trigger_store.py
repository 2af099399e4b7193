"""The triggers' database part on SQLite and PostgreSQL: seen sets, versioned per-contact fingerprints that
answer a replayed poll the same, and the purge."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from service.actions.triggers.store import UNKNOWN, TriggerStore, Version, contacts, instances, seen_sets
from service.actions.storage import create_engine


@pytest.fixture
def store(db_url):
    engine = create_engine(db_url)
    try:
        yield TriggerStore(engine)
    finally:
        engine.dispose()


def _count(store, table) -> int:
    with store.engine.connect() as conn:
        return len(conn.execute(table.select()).all())


def test_seen_sets_are_content_addressed_and_idempotent(store):
    store.save_seen("id-1", "AAAA")
    store.save_seen("id-1", "AAAA")  # a replayed poll writes the same set again
    assert store.load_seen("id-1") == "AAAA"
    assert store.load_seen("nope") is None
    assert _count(store, seen_sets) == 1


def test_previous_is_versioned_so_a_replayed_poll_sees_the_same_transition(store):
    store.create_instance("i1", "OnContactUnsubscribed")
    store.record_baseline("i1", [Version("c1", 100, "1,2"), Version("c2", 100, "1")])
    assert store.record_baseline("i1", [Version("c1", 150, "9")]) == 0  # the baseline never overwrites
    v = Version("c1", 200, "1")
    assert store.previous("i1", [v, Version("c3", 200, "1")]) == ["1,2", UNKNOWN]
    store.record("i1", [v])
    assert store.previous("i1", [v]) == ["1,2"]  # the same version again: the answer of the first time
    newer = Version("c1", 300, "")
    assert store.previous("i1", [newer]) == ["1"]
    store.record("i1", [newer])
    assert store.previous("i1", [Version("c1", 250, "x")]) == ["x"]  # an older version is never a transition
    assert store.previous("i2", [v]) == [UNKNOWN]  # per instance


def test_record_creates_rows_for_contacts_first_seen(store):
    store.create_instance("i1", "OnContactChanged")
    store.record("i1", [Version("new", 500, "h1")])
    assert store.previous("i1", [Version("new", 500, "h1")]) == [None]
    assert store.previous("i1", [Version("new", 600, "h2")]) == ["h1"]


def test_touch_tells_whether_the_instance_exists(store):
    store.create_instance("i1", "OnContactUnsubscribed")
    assert store.touch_instance("i1") is True
    assert store.touch_instance("gone") is False


def test_an_instance_is_its_tenants_only(store):
    """Hosted mode: a trigger's stored baselines belong to its tenant; another tenant (or single mode) never finds
    them, also when the instance is in this process's memo."""
    store.create_instance("i2", "OnContactChanged", "t" + "a" * 32)
    assert store.touch_instance("i2", "t" + "a" * 32) is True
    assert store.touch_instance("i2", "t" + "b" * 32) is False
    assert store.touch_instance("i2") is False


def test_a_quiet_poll_asks_the_database_once_per_memo_time(db_url):
    engine = create_engine(db_url)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        store = TriggerStore(engine)
        store.create_instance("i1", "OnContactUnsubscribed")
        statements.clear()
        assert all(store.touch_instance("i1") for _ in range(5))
        assert sum("trigger_instances" in s for s in statements) == 1  # the first touch; then from memory
        with engine.begin() as conn:  # another process purged it: the memo still answers, for its time only
            conn.execute(instances.delete().where(instances.c.id == "i1"))
        assert store.touch_instance("i1") is True
        store._alive.clock = lambda: float("inf")  # the memo time has passed
        assert store.touch_instance("i1") is False
        unmemo = TriggerStore(engine, alive_memo_seconds=0)
        unmemo.create_instance("i2", "OnContactUnsubscribed")
        statements.clear()
        assert unmemo.touch_instance("i2") and unmemo.touch_instance("i2")
        assert sum("trigger_instances" in s for s in statements) == 2
    finally:
        engine.dispose()


def test_a_purge_in_this_process_is_seen_at_once(store):
    store.create_instance("i1", "OnContactUnsubscribed")
    assert store.touch_instance("i1") is True
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=91)
    assert store.purge(90, now=later) == 1
    assert store.touch_instance("i1") is False


def test_purge_removes_what_was_not_used_for_that_long(store):
    store.create_instance("old", "OnContactUnsubscribed")
    store.record_baseline("old", [Version("c1", 1, "1")])
    store.create_instance("live", "OnContactUnsubscribed")
    store.record_baseline("live", [Version("c1", 1, "1")])
    store.save_seen("s-old", "AAAA")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=91)
    with store.engine.begin() as conn:  # the live instance was polled recently, the old one was not
        conn.execute(instances.update().where(instances.c.id == "live").values(last_seen_at=later))
    assert store.purge(90, now=later) == 3  # one set, one instance, its one contact row
    assert store.touch_instance("old") is False and store.touch_instance("live") is True
    assert store.load_seen("s-old") is None
    assert _count(store, contacts) == 1


def test_loading_a_set_keeps_it_alive(store):
    store.save_seen("s1", "AAAA")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=100)
    with store.engine.begin() as conn:
        conn.execute(seen_sets.update().values(used_at=past))
    assert store.load_seen("s1") == "AAAA"  # a trigger that still polls marks it used
    assert store.purge(90) == 0 and store.load_seen("s1") == "AAAA"
