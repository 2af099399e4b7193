"""Database fixtures (a pytest plugin loaded by tests/conftest.py): a migrated database on a temporary SQLite file and on the local PostgreSQL.

PostgreSQL: ``TEST_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Every test gets
its own schema (``search_path`` set through the connection options) that is dropped afterwards, so parallel runs
never collide. When the server is unreachable the PostgreSQL tests are skipped locally and FAIL in CI
(``CI=true``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from service.actions.ledger import Ledger
from service.actions.storage import normalize_url, upgrade

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEST_HASH_KEY = b"test-ledger-key"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(msg: str) -> None:
    """A server the tests need is not there: skipped locally, a failure in CI (``CI`` set)."""
    if _in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL server for tests, checked once per session."""
    url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL
    engine = sa.create_engine(normalize_url(url), connect_args={"connect_timeout": 5}, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure
        unavailable(f"PostgreSQL for tests not reachable at {normalize_url(url).render_as_string()}: {exc}")
    finally:
        engine.dispose()
    return normalize_url(url).render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_schema(admin_url: str, prefix: str = "t_ledger_") -> Iterator[str]:
    """A new, empty schema on the test server, dropped afterwards; the URL has ``search_path`` set to it."""
    schema = prefix + uuid.uuid4().hex[:12]
    admin = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty schema of its own on the test server; URL with ``search_path`` set to it."""
    with fresh_schema(pg_admin_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request) -> str:
    """An empty database (no schema yet) on each backend."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A migrated database on each backend."""
    upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    led = Ledger.from_url(db_url, email_hash_key=TEST_HASH_KEY, pool_size=5, max_overflow=20)
    try:
        yield led
    finally:
        led.close()


@pytest.fixture
def sqlite_ledger(sqlite_url: str) -> Iterator[Ledger]:
    upgrade(sqlite_url)
    led = Ledger.from_url(sqlite_url, email_hash_key=TEST_HASH_KEY)
    try:
        yield led
    finally:
        led.close()
