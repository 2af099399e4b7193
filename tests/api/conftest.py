"""API tests on the Spotler simulator: one simulator per test module on a loopback port, reset before each test.

Fixtures: ``spotler_sim`` (the running simulator, module scope), ``sim`` (its SpotlerSimulator, reset to the
demo account), ``api`` (the Connexion test client of the real app, talking to that simulator) and ``call``
(``call(method, path, body=None, key=None, **query)`` with the API key and an optional Idempotency-Key).
"""

from __future__ import annotations

import pytest

from service.sandbox.launch import SANDBOX_CREDENTIALS
from tests.conftest import API_KEY


@pytest.fixture(scope="module")
def spotler_sim():
    from service.sandbox.spotler import start_sandbox

    running = start_sandbox(**SANDBOX_CREDENTIALS["spotler"])
    yield running
    running.stop()


@pytest.fixture
def sim(spotler_sim):
    simulator = spotler_sim.simulator
    simulator.reset()
    simulator.tier = "automation"
    return simulator


@pytest.fixture
def api(make_client, settings, spotler_sim, sim):
    return make_client(settings.with_(sandbox_upstream_url=spotler_sim.url))


@pytest.fixture
def call(api):
    def _call(method: str, path: str, body=None, key: str | None = None, **query):
        headers = {"X-API-Key": API_KEY}
        if key:
            headers["Idempotency-Key"] = key
        kwargs = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        if query:
            kwargs["params"] = query
        return api.request(method, path, **kwargs)

    return _call
