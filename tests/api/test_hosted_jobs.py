"""Hosted mode: credentials at rest. A bulk job answered 202 keeps its connection's credentials sealed (AES-GCM, the
job id as associated data) so that another worker can resume it after its worker died; they are gone when the job
ends. Polling triggers keep a per-tenant sealed row. No clear key or secret in any log line or database table."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import sqlalchemy as sa

from service.actions.storage import create_engine
from service.actions.tenancy import CredentialBox
from tests.api.support import assert_ok
from tests.api.test_hosted import SHOP_B, hosted, hosted_settings  # noqa: F401 - fixture

WAIT = 20.0
STOP = "/integrationservice/automation/stop/"


def _dump(url: str) -> str:
    """Every row of every table, as text."""
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return "\n".join(repr(row) for t in tables for row in conn.execute(sa.text(f'SELECT * FROM "{t}"')))
    finally:
        engine.dispose()


def _job_row(url: str, job_id: str):
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT status, attempts, credentials FROM job_ledger WHERE id = :i"),
                                {"i": job_id}).one()
    finally:
        engine.dispose()


def _until(check, what: str):
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        threading.Event().wait(0.05)


def test_a_202_job_is_resumed_by_another_worker_with_its_sealed_credentials_which_then_go(
        make_client, hosted_settings, empty_db_url, spotler_sim, capsys):  # noqa: F811 - the fixture
    key, secret = SHOP_B["X-Platform-Key"], SHOP_B["X-Platform-Secret"]
    settings = hosted_settings.with_(database_url=empty_db_url, sync_deadline_seconds=0.2, job_lease_seconds=1.0)
    shop_b = spotler_sim.accounts["Second shop"]
    shop_b.faults.configure(times=1, path_prefix=STOP, hang_rate=1.0, hang_seconds=30.0, hang_then="proceed")
    first = make_client(settings)
    ids = ["b8d2e3f4-0000-4000-8000-000000000101", "b8d2e3f4-0000-4000-8000-000000000199"]
    r = first.post("/automation-runs/stop", json={"automationContactIds": ids},
                   headers={**SHOP_B, "Idempotency-Key": "resume-me"})
    assert r.status_code == 202, r.text
    job_id = r.json()["jobId"]
    status, attempts, sealed = _job_row(empty_db_url, job_id)
    assert status == "InProgress" and sealed and sealed.startswith("c1.dev.")
    assert key not in sealed and secret not in sealed
    assert CredentialBox(settings.credentials_keys).open(job_id, sealed).secret == secret
    # a trigger keeps the tenant's credentials too (sealed), for polls that come without the headers
    assert first.get("/triggers/contacts/added", headers=SHOP_B).status_code == 202
    dump = _dump(empty_db_url)
    assert "c1.dev." in dump and key not in dump and secret not in dump

    first.app_.runtime.runner.stop()  # the worker "dies": its lease is no longer renewed, its thread hangs
    second = make_client(settings)
    second.app_.runtime.runner  # noqa: B018 - another worker's runner claims what is due
    _until(lambda: _job_row(empty_db_url, job_id)[0] != "InProgress", "the resumed job")
    shop_b.faults.release_hangs()
    status, attempts, sealed = _job_row(empty_db_url, job_id)
    assert (status, sealed) == ("Completed", None) and attempts == 2
    location = urlsplit(r.headers["location"]).path
    assert location.startswith(f"/jobs/{job_id}.") and location.endswith("/result")
    done = assert_ok(second.get(location, headers=SHOP_B))
    assert [x["automationContactId"] for x in done["results"]] == ids
    # Power Platform may poll the Location without the connection's headers: its token opens it, nothing else
    assert second.get(location).json() == done
    assert second.get(f"/jobs/{job_id}/result").status_code == 404
    assert second.get(location.replace(f"{job_id}.", f"{job_id}.x")).status_code == 404
    assert second.get(location, headers={**SHOP_B, "X-Platform-Key": "someone-else"}).status_code == 404
    assert shop_b.stats()["requests"].get(f"POST {STOP.removeprefix('/integrationservice')}<acid>", 0) >= 2

    dump = _dump(empty_db_url)
    out = capsys.readouterr()
    for text in (dump, out.out, out.err):
        assert key not in text and secret not in text
