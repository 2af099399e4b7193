"""The ledger's hot statements on the DBAPI cursor (service/actions/ledger/hot.py), on SQLite and PostgreSQL: they
store exactly what SQLAlchemy's Connection path stores, keep the SQLite write lock, and fail as SQLAlchemy's
exceptions without the parameters."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from service.actions.ledger.repository import _INSERT, _UPDATE_RUNNING, T
from service.actions.storage import write_lock_of
from tests.actions.test_ledger import call

EMAIL = "ann.hot@example.com"


def _row(ledger, job_id: str) -> dict:
    with ledger.engine.connect() as conn:
        return dict(conn.execute(sa.select(T).where(T.c.id == job_id)).mappings().one())


def test_a_record_written_on_the_cursor_equals_one_written_through_sqlalchemy(ledger):
    now = datetime(2026, 12, 8, 3, 30, 15, 123456, tzinfo=UTC)
    hot = call("StartAutomation", email=EMAIL, inputs={"contact": {"email": EMAIL}, "fields": {"a": [1, "x"]}},
               key="hot-1")
    hot_id = ledger.insert(hot, now)
    reference = ledger._values(call("StartAutomation", email=EMAIL, inputs=hot.inputs, key="ref-1"), now, "job_ref")
    with ledger.engine.begin() as conn:
        conn.execute(_INSERT, reference)
    upstream = {"automationContactIds": ["ac-1"]}
    for job_id in (hot_id, "job_ref"):
        assert ledger.mark_unsafe(job_id, 1, {"call": "trigger", "readback": {"automation": "w"}})
    assert ledger.finish(hot_id, 1, status="Completed", http_status=200, result_code="STARTED", message="ok",
                         upstream_ids=upstream, duration_ms=7, retryable=False,
                         response=(200, {"Content-Type": "application/json"}, {"jobId": hot_id}))
    with ledger.engine.begin() as conn:  # the same outcome through SQLAlchemy, for the reference row
        conn.execute(_UPDATE_RUNNING, {"_job_id": "job_ref", "_attempt": 1, "status": "Completed",
                                       "http_status": 200, "result_code": "STARTED", "message": "ok",
                                       "upstream_ids": upstream, "duration_ms": 7, "retryable": False,
                                       "lease_expires_at": None, "lease_owner": None, "payload": None,
                                       "response_status": 200,
                                       "response_headers": {"Content-Type": "application/json"}})
    got, want = _row(ledger, hot_id), _row(ledger, "job_ref")
    differ = {"id", "idempotency_key", "payload", "response_body", "finished_at", "updated_at"}
    assert {k: v for k, v in got.items() if k not in differ} == {k: v for k, v in want.items() if k not in differ}
    assert got["created_at"] == now and got["unsafe_call"] == {"call": "trigger", "readback": {"automation": "w"}}
    assert got["upstream_ids"] == upstream and got["retryable"] is False and got["lease_owner"] is None
    assert EMAIL not in str(got) and got["contact_email_masked"] == "a***@example.com"
    # what every query reads back: the record and the sealed answer for replays
    assert ledger.get(hot_id).status == "Completed"
    assert ledger.stored_answer(hot_id).body == {"jobId": hot_id}


def test_a_duplicate_key_is_none_and_a_fenced_update_matches_nothing(ledger):
    first = ledger.insert(call(key="dup"))
    assert first is not None and ledger.insert(call(key="dup")) is None
    assert not ledger.mark_unsafe(first, 2, {"call": "x"})  # another attempt's: fenced off
    assert ledger.mark_async(first, 1) and _row(ledger, first)["mode"] == "async"
    assert ledger.finish(first, 1, status="Failed", http_status=503, result_code="UPSTREAM_UNAVAILABLE",
                         message="down", upstream_ids={}, duration_ms=1, retryable=True, response=None)
    assert not ledger.mark_async(first, 1)  # finished: no longer InProgress


def test_a_database_error_is_sqlalchemys_and_names_no_parameter(ledger):
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE job_ledger RENAME TO job_ledger_away"))
    with pytest.raises(sa.exc.DBAPIError) as info:
        ledger.insert(call("StartAutomation", email=EMAIL, inputs={"contact": {"email": EMAIL}}, key="away"))
    assert isinstance(info.value, (sa.exc.OperationalError, sa.exc.ProgrammingError))
    assert "a***" not in str(info.value) and "hot@" not in str(info.value)
    with ledger.engine.begin() as conn:  # the connection went back to the pool usable
        conn.execute(sa.text("ALTER TABLE job_ledger_away RENAME TO job_ledger"))
    assert ledger.insert(call(key="back")) is not None


def test_sqlite_writers_on_the_cursor_queue_on_the_write_lock(sqlite_ledger):
    lock = write_lock_of(sqlite_ledger.engine)
    assert lock is not None
    lock.acquire()  # another writer holds the file
    done = threading.Event()
    writer = threading.Thread(target=lambda: (sqlite_ledger.insert(call(key="queued")), done.set()))
    try:
        writer.start()
        assert not done.wait(0.3)  # it waits for the lock instead of colliding inside SQLite
    finally:
        lock.release()
    writer.join(10)
    assert done.is_set() and sqlite_ledger.key_state(call(key="queued").idempotency_key) is not None
