"""Fixtures of the webhook relay tests: everything over real sockets.

* ``flows``: the Power Automate callback simulator (service.sandbox.flows) on a loopback port;
* ``platform`` (``piggy`` / ``spoki``): that platform's simulator, its webhooks retried quickly;
* ``service``: the real app under uvicorn on a loopback port (the platforms' webhooks reach it), sandbox mode
  against that simulator, with a short retry schedule, on SQLite - or PostgreSQL for the tests that take
  ``db_url``;
* ``api``: ``api(method, path, body=None, **query)`` to it with the API key; ``wait_for(condition)``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from service.actions.storage import normalize_url
from service.config import Settings
from service.sandbox.flows import FlowsSimulator
from service.sandbox.launch import serve_in_thread, start_in_process
from tests.conftest import API_KEY
from tests.databases import fresh_schema
from tests.servers import serve_app

#: short schedule: a failed delivery is tried again after 0.2 s, then 0.4 s, then given up
RETRIES = (0.2, 0.4)
WAIT_S = 15.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll ``condition`` until it returns something truthy (never a sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Flows:
    sim: FlowsSimulator
    url: str

    def new(self, answers: list[Any] | None = None) -> dict[str, str]:
        flow = self.sim.create_flow(self.url)
        if answers:
            self.sim.script(flow["id"], answers)
        return flow

    def got(self, flow: dict[str, str]) -> list[dict[str, Any]]:
        return self.sim.deliveries(flow["id"])


@pytest.fixture(scope="session")
def flows():
    sim = FlowsSimulator()
    running = serve_in_thread(sim, sim)
    yield Flows(sim, running.url)
    running.stop()


def start_platform(name: str):
    running = start_in_process(name)
    running.simulator.webhooks.sender.retry_delays = (0.05, 0.1, 0.2)
    return running


def relay_settings(platform: str, db_url: str, upstream_url: str, **changes: Any) -> Settings:
    return Settings(provider=platform, api_keys=(API_KEY,), database_url=db_url, validate_responses=True,
                    list_cache_seconds=0, sandbox_upstream_url=upstream_url, webhook_retry_schedule=RETRIES,
                    webhook_callback_timeout=1.0).with_(**changes)


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.locations: list[str] = []

    def __call__(self, method: str, path: str, body: Any = None, **query: Any) -> requests.Response:
        return self.session.request(method, self.base + path, json=body, params=query or None,
                                    headers={"X-API-Key": API_KEY}, timeout=30)

    def subscribe(self, event: str, flow: dict[str, str], **filter_: Any) -> requests.Response:
        body: dict[str, Any] = {"event": event, "callbackUrl": flow["callbackUrl"]}
        if filter_:
            body["filter"] = filter_
        resp = self("POST", "/hooks", body)
        if resp.status_code == 201:
            self.locations.append(resp.headers["Location"])
        return resp

    def unsubscribe(self, location: str) -> requests.Response:
        return self.session.delete(location, timeout=30)  # no API key: Power Automate may send none


def count(db_url: str, table: str, **where: Any) -> int:
    """Rows of a relay table (``where``: column = value), read straight from the database."""
    engine = sa.create_engine(normalize_url(db_url), poolclass=sa.pool.NullPool)
    try:
        clause = " AND ".join(f"{k} = :{k}" for k in where) or "1 = 1"
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {clause}"), where).scalar_one()
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request, tmp_path_factory) -> Iterator[str]:
    """A database URL for the module, on each backend (migrated by the service on first use)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('relay')}/ledger.db"
        return
    with fresh_schema(request.getfixturevalue("pg_admin_url")) as url:
        yield url


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('relay')}/ledger.db"


@dataclass
class Service:
    base: str
    app: Any
    db: str
    sim: Any  # the platform simulator (its .simulator, .url)

    @property
    def relay(self):
        return self.app.runtime.webhooks

    def inbound_urls(self) -> list[str]:
        """The URLs the platform simulator sends its webhooks to."""
        sim = self.sim.simulator
        hooks = sim.webhooks.hooks.values() if hasattr(sim.webhooks, "hooks") else sim.webhooks.subs.values()
        return [h["url"] for h in hooks]


@contextlib.contextmanager
def running_service(platform: str, db_url: str, sim: Any, **changes: Any) -> Iterator[Service]:
    with serve_app(relay_settings(platform, db_url, sim.url, **changes)) as (base, app):
        yield Service(base, app, db_url, sim)


@pytest.fixture
def api(request) -> Iterator[Callable[[Service], Api]]:
    """``api(service)``: a client of that service; the subscriptions a test makes are ended after it."""
    made: list[Api] = []

    def make(service: Service) -> Api:
        client = Api(service.base)
        made.append(client)
        return client

    yield make
    for client in made:
        for location in client.locations:
            client.unsubscribe(location)
