"""API tests against the platform simulators: one simulator per test module on a loopback port.

Fixtures: ``spotler_sim``, ``piggy_sim``, ``spoki_sim`` (a running simulator of that platform with the sandbox
credentials, module scope); for Spotler also ``sim`` (its SpotlerSimulator, reset to the demo account), ``api``
(the Connexion test client of the real app, talking to that simulator) and ``call``
(``call(method, path, body=None, key=None, **query)`` with the API key and an optional Idempotency-Key).
``make_call(settings)`` gives such a ``call`` for any settings (other platforms' modules use it).
"""

from __future__ import annotations

import pytest

from service.sandbox.launch import start_in_process
from tests.conftest import API_KEY


def _running(provider: str):
    running = start_in_process(provider)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def spotler_sim():
    yield from _running("spotler")


@pytest.fixture(scope="module")
def piggy_sim():
    yield from _running("piggy")


@pytest.fixture(scope="module")
def spoki_sim():
    yield from _running("spoki")


@pytest.fixture
def sim(spotler_sim):
    simulator = spotler_sim.simulator
    simulator.reset()
    simulator.faults.clear()  # the module's simulator is shared: no test inherits another's latency or faults
    simulator.tier = "automation"
    return simulator


@pytest.fixture
def api(make_client, settings, spotler_sim, sim):
    return make_client(settings.with_(sandbox_upstream_url=spotler_sim.url))


def caller(client):
    """``call(method, path, body=None, key=None, **query)`` on a test client, with the API key."""

    def _call(method: str, path: str, body=None, key: str | None = None, **query):
        headers = {"X-API-Key": API_KEY}
        if key:
            headers["Idempotency-Key"] = key
        kwargs = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        if query:
            kwargs["params"] = query
        return client.request(method, path, **kwargs)

    _call.client = client
    return _call


@pytest.fixture
def make_call(make_client):
    return lambda settings: caller(make_client(settings))


@pytest.fixture
def call(api):
    return caller(api)
