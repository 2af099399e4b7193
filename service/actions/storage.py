"""The job ledger's storage: engine factory and schema migrations (the ledger owns its database).

URLs: ``sqlite:///path/to/file.db`` (the default, ``sqlite:///var/marketing-actions.db``),
``postgresql+psycopg://...``; ``postgres://`` and ``postgresql://`` are accepted and mean psycopg 3.

The schema is never missing at run time (:func:`ensure_schema`): a SQLite file is migrated by the service itself;
PostgreSQL is migrated under an advisory lock, or - with ``AUTO_MIGRATE=false`` - the service refuses with one
line saying what to run. A SQLite file is created readable by its owner only (0600).

The maintenance command line is ``python -m service.db`` (service/db.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from service.config import DEFAULT_DATABASE_URL

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: SQLite: how long a writer waits for the lock held by another connection/process
SQLITE_BUSY_TIMEOUT_S = 30.0


def normalize_url(database_url: str | URL) -> URL:
    """Parse ``database_url``; ``postgres://`` / ``postgresql://`` become ``postgresql+psycopg://``."""
    raw = str(database_url).strip() if not isinstance(database_url, URL) else database_url
    if isinstance(raw, str):
        if not raw:
            raise ValueError("DATABASE_URL is empty")
        if raw.startswith("postgres://"):
            raw = "postgresql://" + raw[len("postgres://"):]
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql")
    return url


def database_url_from_env(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def _sqlite_path(url: URL) -> str | None:
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:") and "mode=memory" in db:
        return None
    return db


def private_file(path: str) -> None:
    """Create the SQLite file (and its directory) readable by the owner only; tighten an existing file.

    SQLite gives its -wal and -shm files the mode of the database file, so they stay private too."""
    file = Path(path).expanduser()
    if not file.parent.exists():
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        if file.stat().st_mode & 0o077:
            os.chmod(file, 0o600)
    except OSError as exc:  # pragma: no cover - read-only file system: SQLite will report it
        log.warning("could not restrict the permissions of the ledger file: %s", type(exc).__name__)


def create_engine(database_url: str | URL, *, pool_size: int = 5, max_overflow: int = 10,
                  echo: bool = False, **kwargs: Any) -> Engine:
    """An engine tuned for the ledger.

    SQLite: WAL journal, ``busy_timeout`` (several gunicorn worker processes write the same file), a pooled
    connection per thread. The parent directory of the file is created. PostgreSQL (psycopg 3): a
    ``QueuePool`` with pre-ping, so connections dropped by the server or a proxy are replaced transparently.
    """
    url = normalize_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if path is None:
            # one shared in-memory database (tests only)
            engine = sa.create_engine(url, echo=echo, connect_args={"check_same_thread": False},
                                      poolclass=sa.pool.StaticPool, **kwargs)
        else:
            private_file(path)
            engine = sa.create_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=False,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}, **kwargs)

        if path is not None:
            _serialize_writes(engine, path + "-writelock")

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised through every test
            cur = dbapi_conn.cursor()
            try:
                if path is not None:
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
                cur.execute("PRAGMA foreign_keys=ON")
            finally:
                cur.close()

        return engine
    engine = sa.create_engine(url, echo=echo, pool_size=pool_size, max_overflow=max_overflow,
                              pool_recycle=1800, **kwargs)
    _ping_idle_connections(engine)
    return engine


#: a pooled PostgreSQL connection unused for longer than this is tested before it is handed out
PING_AFTER_IDLE_S = 10.0


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, for connections that sat idle: a connection the server or a proxy dropped
    is replaced transparently (the checkout is retried with a fresh one). ``pool_pre_ping`` pinged on EVERY
    checkout - one round trip per transaction, three or four per action (~20 % of the service's CPU per
    StartAutomation on PostgreSQL); a connection used within the last seconds is alive."""
    import time

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):
        now = time.monotonic()
        last = record.info.get("last_checkin")
        if last is not None and now - last > PING_AFTER_IDLE_S:
            try:
                cur = dbapi_conn.cursor()
                try:
                    cur.execute("SELECT 1")
                finally:
                    cur.close()
            except Exception as exc:  # noqa: BLE001 - any failure: the pool retries with a new connection
                raise sa.exc.DisconnectionError() from exc

    @sa.event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):
        record.info["last_checkin"] = time.monotonic()


class WriteLock:
    """One writer at a time on a SQLite file, across the threads of a process (a lock) and across processes
    (``flock`` on a lock file beside the database). Re-entrant for the thread that holds it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pid = -1
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._owner: int | None = None
        self._depth = 0

    def _fresh_after_fork(self) -> None:
        if self._pid != os.getpid():  # a forked child never inherits a held lock or the parent's descriptor
            self._pid, self._lock, self._fd, self._owner, self._depth = os.getpid(), threading.Lock(), None, None, 0

    def acquire(self) -> None:
        import fcntl

        self._fresh_after_fork()
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return
        self._lock.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits without holding the GIL
        except BaseException:
            self._lock.release()
            raise
        self._owner, self._depth = me, 1

    def release(self) -> None:
        import fcntl

        if self._owner is None or self._pid != os.getpid():
            return
        self._depth -= 1
        if self._depth > 0:
            return
        self._owner = None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")
#: the WriteLock of each SQLite engine (for writes that bypass the engine's events: the ledger's hot statements)
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, WriteLock] = weakref.WeakKeyDictionary()


def write_lock_of(engine: Engine) -> WriteLock | None:
    """The :class:`WriteLock` writers of ``engine`` queue on (a SQLite file), or None (PostgreSQL, in-memory)."""
    return _WRITE_LOCKS.get(engine)
_HELD = "marketing_actions_write_lock"


def _serialize_writes(engine: Engine, lock_path: str) -> None:
    """SQLite: take :class:`WriteLock` before the first write statement of a transaction, give it back when the
    connection goes back to the pool (every write of the ledger is a ``with engine.begin()`` block). Writers then queue on the lock instead
    of colliding inside SQLite, whose busy handler sleeps and retries (1, 2, 5, ... 100 ms): those sleeps were
    the latency tail under concurrency. Reads are not serialized (WAL)."""
    lock = _WRITE_LOCKS[engine] = WriteLock(lock_path)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _before(conn, _cursor, statement, _params, _context, _many):
        info = conn.info
        if not info.get(_HELD) and statement.lstrip()[:6].upper() in _WRITES:
            lock.acquire()
            info[_HELD] = True

    # given back when the connection returns to the pool: after its COMMIT or ROLLBACK went through (the
    # engine's "commit" event comes before the COMMIT)
    @sa.event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):
        if record.info.pop(_HELD, False):
            lock.release()


# ---------------------------------------------------------------------------------------------------------
# Migrations
# ---------------------------------------------------------------------------------------------------------


def alembic_config(connection: sa.Connection | None = None):
    """An Alembic Config pointing at service/migrations (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (POSIX flock; a no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _upgrade_locked(engine: Engine, revision: str) -> None:
    from alembic import command

    backend = engine.dialect.name
    if backend == "postgresql":
        with engine.begin() as conn:
            # serialise concurrent upgraders (workers, instances) on this schema; released at commit
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('marketing-actions-migrate:' || "
                                 "current_schema()))"))
            command.upgrade(alembic_config(conn), revision)
        return
    path = _sqlite_path(engine.url)
    lock = contextlib.nullcontext() if path is None else _file_lock(str(Path(path).expanduser()) + ".migrate.lock")
    with lock, engine.begin() as conn:
        # pysqlite leaves DDL outside transactions; an explicit BEGIN makes the whole migration atomic
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        command.upgrade(alembic_config(conn), revision)


def upgrade(database_url: str | URL | Engine, revision: str = "head") -> str:
    """Apply the migrations up to ``revision``; returns the resulting revision.

    Safe to call from several processes at once (gunicorn workers starting together, several instances):
    upgraders are serialised by a PostgreSQL advisory lock or, for SQLite, a lock file next to the database;
    whoever comes second finds the schema current and does nothing. A race lost against a foreign tool
    ("already exists") is tolerated when the schema ends up at the head revision.
    """
    engine = database_url if isinstance(database_url, Engine) else create_engine(database_url, pool_size=1)
    try:
        try:
            _upgrade_locked(engine, revision)
        except (sa.exc.ProgrammingError, sa.exc.OperationalError, sa.exc.IntegrityError) as exc:
            if "already exists" not in str(exc).lower() and "unique" not in str(exc).lower():
                raise
            log.info("schema upgrade raced with another process; checking the result")
            _upgrade_locked(engine, revision)
        current = current_revision(engine)
        if revision == "head" and current != head_revision():
            raise RuntimeError(f"ledger schema is at {current!r}, expected {head_revision()!r}")
        return current or ""
    finally:
        if not isinstance(database_url, Engine):
            engine.dispose()


class SchemaNotCurrent(RuntimeError):
    """The ledger's schema is missing or old and the service may not migrate it (``AUTO_MIGRATE=false``)."""


class DatabaseUnavailable(RuntimeError):
    """The ledger's database cannot be used: a URL that is not one, an unsupported database, a server that is
    down or refuses us, a file that cannot be created. The message is one line: the database (password hidden),
    the reason the driver gave, what to check."""


_URL_ALLOWED = "sqlite:///path/file.db or postgresql+psycopg://user:password@host:5432/database"


def _shown(database_url: str | URL) -> str:
    try:
        return normalize_url(database_url).render_as_string(hide_password=True)
    except (ValueError, sa.exc.ArgumentError):
        from service.config import show_value

        return show_value("DATABASE_URL", str(database_url))


def checked_url(database_url: str | URL) -> URL:
    """:func:`normalize_url`, or :class:`DatabaseUnavailable` saying in one line what is wrong with the URL."""
    try:
        return normalize_url(database_url)
    except (ValueError, sa.exc.ArgumentError) as exc:
        reason = str(exc).split(":")[0] if str(exc).startswith("unsupported") else "not a database URL"
        raise DatabaseUnavailable(f"Invalid database URL {_shown(database_url)}: {reason}; use "
                                  f"{_URL_ALLOWED}.") from None


def unavailable(exc: BaseException, database_url: str | URL) -> DatabaseUnavailable:
    """One line for a driver or file error met while opening the ledger's database."""
    reason = getattr(exc, "orig", None) or exc
    text = " ".join(str(reason).split()) or type(reason).__name__
    sqlite = str(database_url).startswith("sqlite")
    check = ("that its directory can be written" if sqlite else
             "that the database server runs and lets this user in")
    return DatabaseUnavailable(f"Cannot use the job ledger database {_shown(database_url)}: {text} (check "
                               f"DATABASE_URL, and {check}).")


#: what opening a database can raise besides our own errors: the driver's errors, a file system's
OPEN_ERRORS = (sa.exc.DBAPIError, OSError)


def prepare_ledger(database_url: str | URL, *, auto_migrate: bool = True) -> str:
    """What every start does before it serves: the ledger's schema current (:func:`ensure_schema`). Raises
    :class:`DatabaseUnavailable` or :class:`SchemaNotCurrent`, each with a one-line message; returns the
    revision."""
    url = checked_url(database_url)
    try:
        engine = create_engine(url, pool_size=1)
        try:
            return ensure_schema(engine, auto_migrate=auto_migrate)
        finally:
            engine.dispose()
    except OPEN_ERRORS as exc:
        raise unavailable(exc, url) from None


def upgrade_command_hint() -> str:
    return "run `make migrate` (or `.venv/bin/python -m service.db upgrade`) with this DATABASE_URL"


def ensure_schema(engine: Engine, *, auto_migrate: bool = True) -> str:
    """Make sure the ledger's tables are at the head revision before the service uses them.

    SQLite is always migrated by the service itself (it is the service's own file). PostgreSQL is migrated
    under its advisory lock when ``auto_migrate``; otherwise :class:`SchemaNotCurrent` says in one line what to
    run. Returns the revision. Cheap when current: one query.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return current
    if engine.dialect.name == "sqlite" or auto_migrate:
        log.info("ledger schema at %s, migrating to %s", current or "(empty)", head)
        return upgrade(engine)
    raise SchemaNotCurrent(f"The job ledger schema is at {current or '(none)'}, the service needs {head}: "
                           f"{upgrade_command_hint()}.")
