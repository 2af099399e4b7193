"""Fixtures for the Spotler tests: a fresh simulator on an ephemeral loopback port, clients/providers for it.

Names are prefixed ``spotler_`` so that they never shadow the root conftest's fixtures (``client``, ...).
"""

from __future__ import annotations

import pytest

from service.providers.spotler import SpotlerClient, SpotlerConfig, SpotlerProvider
from service.sandbox.server import SimulatorServer
from service.sandbox.spotler import BASE_PATH, SpotlerSimulator

KEY = "ck_sim_test"
SECRET = "cs_sim_test"  # noqa: S105 - test credential of the local simulator


@pytest.fixture
def spotler_sim() -> SpotlerSimulator:
    return SpotlerSimulator(KEY, SECRET)


@pytest.fixture
def spotler_url(spotler_sim):
    """``http://127.0.0.1:NNNN`` (no base path)."""
    with SimulatorServer(spotler_sim) as url:
        yield url


@pytest.fixture
def spotler_config(spotler_url):
    """A factory of SpotlerConfig for the running simulator, with short timeouts and backoff."""

    def _make(**overrides) -> SpotlerConfig:
        values = {
            "consumer_key": KEY, "consumer_secret": SECRET, "base_url": spotler_url + BASE_PATH,
            "connect_timeout": 1.0, "read_timeout": 2.0, "max_retries": 2, "backoff_factor": 0.01,
            "retry_after_max": 2.0, "properties_cache_seconds": 0.0,
        }
        values.update(overrides)
        return SpotlerConfig(**values)

    return _make


@pytest.fixture
def make_spotler_client(spotler_config):
    made = []

    def _make(**overrides) -> SpotlerClient:
        c = SpotlerClient(spotler_config(**overrides))
        made.append(c)
        return c

    yield _make
    for c in made:
        c.close()


@pytest.fixture
def spotler_client(make_spotler_client) -> SpotlerClient:
    return make_spotler_client()


@pytest.fixture
def make_spotler_provider(spotler_config):
    made = []

    def _make(**overrides) -> SpotlerProvider:
        p = SpotlerProvider(spotler_config(**overrides))
        made.append(p)
        return p

    yield _make
    for p in made:
        p.close()


@pytest.fixture
def spotler(make_spotler_provider) -> SpotlerProvider:
    return make_spotler_provider()
