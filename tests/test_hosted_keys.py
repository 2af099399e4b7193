"""Hosted mode's keys: the start refuses hosted live mode without them (one line naming every one), the tenant hash
and the client key, the credential seals (row-bound, key ids, rotation) and ``python -m service.db
rotate-credentials`` on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from service.actions.connection import Connection
from service.actions.storage import create_engine
from service.actions.tenancy import CredentialBox, CredentialStore, TenantKeys
from service.config import ConfigError, Settings
from service.db import main as db_main

K1 = "k1:" + "a" * 40
K2 = "k2:" + "b" * 40
SPOTLER = Connection("spotler", "consumer-key-1", "consumer-secret-1")


def test_hosted_live_mode_refuses_to_start_without_its_keys_in_one_line():
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"TENANCY": "hosted", "HOSTED_MODE": "live"})
    message = str(err.value)
    assert "\n" not in message
    for name in ("TENANT_HASH_KEY", "CREDENTIALS_KEYS", "LEDGER_HASH_KEY", "TRIGGER_STATE_SECRET"):
        assert name in message
    assert "API_KEYS" not in message  # the publisher's key is optional in hosted mode
    ok = Settings.from_env({"TENANCY": "hosted", "HOSTED_MODE": "live", "TENANT_HASH_KEY": "t" * 40,
                            "CREDENTIALS_KEYS": K1, "LEDGER_HASH_KEY": "l" * 40, "TRIGGER_STATE_SECRET": "s" * 40})
    assert ok.hosted and ok.mode == "live" and ok.accepted_api_keys == ("hosted-open",)
    with pytest.raises(ConfigError, match="CREDENTIALS_KEYS"):
        Settings.from_env({"TENANCY": "hosted", "CREDENTIALS_KEYS": "no-id-and-short"})


def test_tenant_is_a_keyed_hash_of_platform_and_key_and_the_client_key_covers_the_secret():
    keys = TenantKeys(b"tenant-key")
    same_key_other_secret = Connection("spotler", SPOTLER.key, "another-secret")
    assert keys.tenant(SPOTLER) == keys.tenant(same_key_other_secret)
    assert keys.credentials_digest(SPOTLER) != keys.credentials_digest(same_key_other_secret)
    assert keys.tenant(SPOTLER) != keys.tenant(Connection("piggy", SPOTLER.key))
    assert keys.tenant(SPOTLER) != TenantKeys(b"other-key").tenant(SPOTLER)
    assert SPOTLER.key not in keys.tenant(SPOTLER) and len(keys.tenant(SPOTLER)) == 33


def test_a_seal_opens_only_for_its_row_and_with_a_key_still_listed():
    box = CredentialBox([K1])
    token = box.seal("job_1", SPOTLER)
    assert token.startswith("c1.k1.") and SPOTLER.secret not in token
    assert box.open("job_1", token) == SPOTLER
    with pytest.raises(ValueError):
        box.open("job_2", token)
    assert CredentialBox([K2, K1]).open("job_1", token) == SPOTLER
    with pytest.raises(ValueError):
        CredentialBox([K2]).open("job_1", token)


def test_rotate_credentials_reseals_jobs_and_tenants_with_the_first_key(db_url, monkeypatch, capsys):
    old = CredentialBox([K1])
    engine = create_engine(db_url, pool_size=1)
    try:
        store = CredentialStore(engine, old, TenantKeys(b"tenant-key"))
        tenant = store.keys.tenant(SPOTLER)
        store.remember(tenant, SPOTLER)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO job_ledger (id, operation, provider, status, retryable, attempts, created_at, updated_at,"
                " credentials) VALUES ('job_r', 'AddTag', 'spotler', 'InProgress', false, 1, :t, :t, :c)"),
                {"t": "2026-12-08 00:00:00", "c": old.seal("job_r", SPOTLER)})
        monkeypatch.setenv("CREDENTIALS_KEYS", f"{K2},{K1}")
        assert db_main(["--database-url", db_url, "rotate-credentials"]) == 0
        assert "1 job(s) and 1 tenant(s)" in capsys.readouterr().out
        new_only = CredentialBox([K2])
        with engine.connect() as conn:
            job_token = conn.execute(sa.text("SELECT credentials FROM job_ledger WHERE id = 'job_r'")).scalar_one()
        assert job_token.startswith("c1.k2.") and new_only.open("job_r", job_token) == SPOTLER
        assert CredentialStore(engine, new_only, store.keys).load(tenant) == SPOTLER
    finally:
        engine.dispose()
