"""The ledger engine: SQLite writers queue on one lock across threads and processes (WriteLock); idle PostgreSQL
connections are tested before use."""

from __future__ import annotations

import fcntl
import os
import threading

import sqlalchemy as sa

from service.actions.storage import WriteLock, create_engine


def _other_process_can_lock(path: str) -> bool:
    pid = os.fork()
    if pid == 0:
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def test_the_lock_excludes_other_processes_and_threads_and_is_reentrant(tmp_path):
    lock = WriteLock(str(tmp_path / "db-writelock"))
    lock.acquire()
    lock.acquire()  # the same thread again
    assert not _other_process_can_lock(lock.path)
    got = threading.Event()
    t = threading.Thread(target=lambda: (lock.acquire(), got.set(), lock.release()))
    t.start()
    assert not got.wait(0.2)  # another thread waits...
    lock.release()
    assert not got.is_set()  # ...until the outer hold ends too
    lock.release()
    t.join(10)
    assert got.is_set()
    assert _other_process_can_lock(lock.path)


def test_a_write_transaction_holds_the_lock_until_its_connection_is_back(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/l.db")
    path = f"{tmp_path}/l.db-writelock"
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        assert not os.path.exists(path) or _other_process_can_lock(path)  # DDL, reads: no lock
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert not _other_process_can_lock(path)
    assert _other_process_can_lock(path)
    with engine.connect() as conn:  # a read takes no lock
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
        assert _other_process_can_lock(path)
    engine.dispose()


def test_a_postgresql_connection_the_server_dropped_while_idle_is_replaced(pg_admin_url, monkeypatch):
    """Idle pooled connections are tested before use (every checkout was, at one round trip per transaction):
    one the server terminated while it sat in the pool is replaced without an error."""
    import psycopg

    from service.actions import storage

    monkeypatch.setattr(storage, "PING_AFTER_IDLE_S", 0.0)  # "idle" at once: no waiting in the test
    engine = create_engine(pg_admin_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        admin = pg_admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(admin, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for _ in range(200):  # until the server says the backend is gone (bounded)
                if other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is None:
                    break
                threading.Event().wait(0.05)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
