"""The ledger's hot statements (the INSERT before the work, the UPDATEs of a running attempt) on the pooled
connection's own DBAPI cursor (:class:`HotStatements`).

Each action call writes the ledger three times (the record, the "not safe to repeat" mark, the outcome). Through
``engine.begin()`` + ``Connection.execute`` each of them paid for a SQLAlchemy ``Connection``, its transaction
object, the statement's cache lookup, an execution context, the result object and the engine events: about
0.2 ms of CPU per statement on this machine, where the statement itself (sqlite3) takes a few tens of
microseconds. Here the statement is compiled ONCE per dialect and set of columns by SQLAlchemy itself (the same
SQL, the same bind processors - UTC times, JSON, booleans - so what is stored is exactly what the ``Connection``
path stores and what every query of :class:`~service.actions.ledger.repository.Ledger` reads), and each call
is: check out a pooled connection, one ``cursor.execute``, one ``commit``, check it back in.

What the ``Connection`` path gave and this keeps:

* SQLite writers queue on the engine's :class:`~service.actions.storage.WriteLock` (taken around the statement
  and its commit, as the engine's event takes it for the other writes);
* errors come out as SQLAlchemy's exceptions (``sa.exc.IntegrityError`` for a duplicate idempotency key,
  ``OperationalError`` for a database that is away: the API answers those 503), with the parameters hidden
  (no personal data in a message or a log line); a connection the database dropped is invalidated, so the pool
  replaces it;
* PostgreSQL's idle-connection ping (a pool event: it fires on this checkout too).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.actions.storage import write_lock_of


class _Compiled:
    """One statement compiled for one dialect and one set of parameter names."""

    __slots__ = ("sql", "compiled", "names", "processors")

    def __init__(self, statement: sa.sql.ClauseElement, dialect: Any, keys: Iterable[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = compiled.string
        self.compiled = compiled
        #: positional parameter order (qmark: SQLite), else None (named: psycopg's pyformat)
        self.names = list(compiled.positiontup) if dialect.positional else None
        #: the type's bind processor of each parameter that has one, by the name construct_params gives it
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor

    def parameters(self, values: dict[str, Any]) -> Any:
        params = self.compiled.construct_params(values)
        for name, processor in self.processors.items():
            if name in params:
                params[name] = processor(params[name])
        if self.names is not None:
            return tuple(params[n] for n in self.names)
        return params


class HotStatements:
    """Runs the ledger's hot statements on the engine's pooled DBAPI connections (module doc). Thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._dbapi_error = self.dialect.loaded_dbapi.Error
        self._lock = write_lock_of(engine)
        self._cache: dict[tuple[int, frozenset[str]], _Compiled] = {}
        self._cache_lock = threading.Lock()

    def _compiled(self, statement: sa.sql.ClauseElement, keys: frozenset[str]) -> _Compiled:
        key = (id(statement), keys)
        found = self._cache.get(key)
        if found is None:
            with self._cache_lock:
                found = self._cache.get(key)
                if found is None:
                    found = self._cache[key] = _Compiled(statement, self.dialect, keys)
        return found

    def execute(self, statement: sa.sql.ClauseElement, values: dict[str, Any]) -> int:
        """Execute ``statement`` (built once, at module level: its identity is the cache key) with ``values``
        in a transaction of its own; the number of rows it matched."""
        compiled = self._compiled(statement, frozenset(values))
        params = compiled.parameters(values)
        fairy = self.engine.raw_connection()
        try:
            lock = self._lock
            if lock is not None:
                lock.acquire()
            try:
                cursor = fairy.cursor()
                try:
                    cursor.execute(compiled.sql, params)
                    rows = cursor.rowcount
                finally:
                    cursor.close()
                fairy.commit()
            except BaseException:
                try:
                    fairy.rollback()
                except self._dbapi_error:
                    pass
                raise
            finally:
                if lock is not None:
                    lock.release()
            return rows
        except self._dbapi_error as exc:
            dropped = self.dialect.is_disconnect(exc, fairy.dbapi_connection, None)
            if dropped:
                fairy.invalidate(exc)
            raise sa.exc.DBAPIError.instance(compiled.sql, None, exc, self._dbapi_error, hide_parameters=True,
                                             connection_invalidated=dropped, dialect=self.dialect) from exc
        finally:
            fairy.close()
