"""Shared fixtures: settings and apps built through the real factory."""

from __future__ import annotations

import pytest

from service.app import create_app
from service.config import Settings

API_KEY = "test-key-0123456789abcdef"

#: database fixtures (SQLite file, PostgreSQL schema per test) for every test package
pytest_plugins = ["tests.databases", "tests.microsoft_fixtures"]


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Sandbox settings on a private SQLite file, with one API key and response validation on."""
    return Settings(api_keys=(API_KEY,), database_url=f"sqlite:///{tmp_path}/ledger.db",
                    validate_responses=True, list_cache_seconds=0, trigger_feed_cache_seconds=0)


@pytest.fixture
def make_client():
    """Build an app from settings and enter its test client (resolves every operationId)."""
    opened = []

    def _make(settings: Settings):
        app = create_app(settings)
        client = app.test_client()
        client.__enter__()
        opened.append(client)
        client.app_ = app
        return client

    yield _make
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client, settings):
    return make_client(settings)


@pytest.fixture
def auth():
    return {"X-API-Key": API_KEY}
