"""The ledger's storage (URL normalisation, engine set-up, concurrent-safe migrations) and the maintenance commands
of ``python -m service.db``."""

from __future__ import annotations

import functools
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.actions import storage as db
from service.actions.idempotency import ActionCall
from service.actions.ledger import Ledger, utcnow
from tests.databases import TEST_HASH_KEY


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("given", "driver"), [
    ("postgres://u:p@h:5432/d", "postgresql+psycopg"),
    ("postgresql://u:p@h/d", "postgresql+psycopg"),
    ("postgresql+psycopg://u@h/d", "postgresql+psycopg"),
    ("sqlite:///x.db", "sqlite"),
])
def test_normalize_url(given, driver):
    url = db.normalize_url(given)
    assert url.drivername == driver
    if "h" in given:
        assert url.host == "h"


@pytest.mark.parametrize("bad", ["", "mysql://u@h/d"])
def test_normalize_url_rejects(bad):
    with pytest.raises(ValueError):
        db.normalize_url(bad)


def test_sqlite_engine_uses_wal_and_busy_timeout(tmp_path):
    engine = db.create_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert (tmp_path / "sub").is_dir()
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema_and_is_idempotent(empty_db_url):
    assert db.upgrade(empty_db_url) == db.head_revision()
    assert db.upgrade(empty_db_url) == db.head_revision()
    engine = db.create_engine(empty_db_url)
    try:
        insp = sa.inspect(engine)
        cols = {c["name"] for c in insp.get_columns("job_ledger")}
        assert {"id", "idempotency_key", "status", "lease_expires_at", "response_body"} <= cols
        uniques = insp.get_unique_constraints("job_ledger")
        assert any(u["column_names"] == ["idempotency_key"] for u in uniques)
    finally:
        engine.dispose()


def test_concurrent_upgrades_from_threads_all_succeed(empty_db_url):
    with ThreadPoolExecutor(4) as pool:
        revs = list(pool.map(lambda _: db.upgrade(empty_db_url), range(4)))
    assert revs == [db.head_revision()] * 4


def _upgrade_in_child(url: str, results) -> None:
    try:
        results.put(db.upgrade(url))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(f"error: {exc!r}")


def test_concurrent_upgrades_from_processes_all_succeed(empty_db_url):
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_upgrade_in_child, args=(empty_db_url, results)) for _ in range(3)]
    for p in procs:
        p.start()
    revs = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
    assert revs == [db.head_revision()] * 3


def _cli(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "LEDGER_HASH_KEY": TEST_HASH_KEY.decode()}
    return subprocess.run([sys.executable, "-m", "service.db", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_upgrade_purge_recover(empty_db_url):
    up = _cli("upgrade", url=empty_db_url)
    assert up.returncode == 0, up.stderr
    assert db.head_revision() in up.stdout
    cur = _cli("current", url=empty_db_url)
    assert cur.returncode == 0 and cur.stdout.strip() == db.head_revision()

    now = utcnow()
    led = Ledger.from_url(empty_db_url, email_hash_key=TEST_HASH_KEY, clock=lambda: now - timedelta(days=40))
    try:
        old = led.insert(ActionCall("AddTag", "spotler", body={}))
        assert led.finish(old, 1, status="Completed", http_status=200, result_code="OK", message=None,
                          upstream_ids={}, duration_ms=1, retryable=False, response=(200, {}, {}))
    finally:
        led.close()
    led = Ledger.from_url(empty_db_url, email_hash_key=TEST_HASH_KEY, clock=lambda: now - timedelta(hours=1))
    try:
        # the worker died after a call that is not safe to repeat may have been sent: settled by recover
        unsafe = led.insert(ActionCall("StartAutomation", "spotler", idempotency_key="k1:x", body={}))
        assert led.mark_unsafe(unsafe, 1, {"call": "trigger_automation"})
        # the worker died before: left for the service to resume
        safe = led.insert(ActionCall("AddTag", "spotler", body={}))
    finally:
        led.close()
    led = Ledger.from_url(empty_db_url, email_hash_key=TEST_HASH_KEY)
    try:
        fresh = led.insert(ActionCall("AddTag", "spotler", body={}))
    finally:
        led.close()

    rec = _cli("recover", url=empty_db_url)
    assert rec.returncode == 0, rec.stderr
    assert "marked 1 stale" in rec.stdout and "1 left for the service" in rec.stdout
    purge = _cli("purge", "--days", "30", url=empty_db_url)
    assert purge.returncode == 0, purge.stderr
    assert "purged 1 " in purge.stdout

    led = Ledger.from_url(empty_db_url, email_hash_key=TEST_HASH_KEY)
    try:
        assert led.get(old) is None
        assert led.get(unsafe).result_code == "OUTCOME_UNKNOWN" and led.get(unsafe).status == "Failed"
        answer = led.stored_answer(unsafe)
        assert answer.status == 409 and answer.body["code"] == "OUTCOME_UNKNOWN"
        assert led.get(safe).status == "InProgress"
        assert led.get(fresh).status == "InProgress"
    finally:
        led.close()


def test_cli_reads_the_settings_file_as_the_service_does(tmp_path, monkeypatch):
    from_file, from_env = tmp_path / "from-file.db", tmp_path / "from-env.db"
    (tmp_path / ".env").write_text(f"DATABASE_URL=sqlite:///{from_file}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ENV_FILE")}
    run = functools.partial(subprocess.run, [sys.executable, "-m", "service.db", "upgrade"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    done = run(env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert from_file.exists() and str(from_file) in done.stdout
    done = run(env={**env, "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{from_env}"})  # the environment wins
    assert done.returncode == 0, done.stderr
    assert from_env.exists() and str(from_env) in done.stdout


def test_cli_rejects_bad_arguments(sqlite_url):
    assert _cli("purge", url=sqlite_url).returncode != 0
    assert _cli("purge", "--days", "-1", url=sqlite_url).returncode != 0


def test_ensure_schema_migrates_sqlite_and_postgresql_and_refuses_without_auto_migrate(empty_db_url):
    """Finding: live mode on a fresh database answered 500 to every write until someone ran `make migrate`."""
    engine = db.create_engine(empty_db_url)
    try:
        if engine.dialect.name == "postgresql":
            with pytest.raises(db.SchemaNotCurrent) as info:
                db.ensure_schema(engine, auto_migrate=False)
            assert "python -m service.db upgrade" in str(info.value) and "\n" not in str(info.value)
        assert db.ensure_schema(engine, auto_migrate=True) == db.head_revision()  # under the lock
        assert db.ensure_schema(engine, auto_migrate=False) == db.head_revision()  # current: nothing to do
    finally:
        engine.dispose()


def test_gunicorn_refuses_to_start_with_one_line_when_postgresql_is_not_migrated(pg_url, monkeypatch):
    import runpy

    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("AUTO_MIGRATE", "false")
    monkeypatch.setenv("ENV_FILE", os.devnull)  # the settings gunicorn.conf.py reads when gunicorn loads it
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    with pytest.raises(SystemExit) as info:
        conf["on_starting"](object())
    message = str(info.value)
    assert message.startswith("marketing-actions: ") and "python -m service.db upgrade" in message
    assert "\n" not in message


def test_sqlite_ledger_file_is_created_private_and_an_open_one_is_tightened(tmp_path):
    """Finding: the SQLite ledger file was world-readable."""
    path = tmp_path / "var" / "ledger.db"
    engine = db.create_engine(f"sqlite:///{path}")
    try:
        db.ensure_schema(engine)
    finally:
        engine.dispose()
    assert path.stat().st_mode & 0o077 == 0
    path.chmod(0o644)
    db.create_engine(f"sqlite:///{path}").dispose()
    assert path.stat().st_mode & 0o077 == 0
