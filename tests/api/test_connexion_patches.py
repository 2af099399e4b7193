"""The Connexion patches (service/api/connexion_patches.py): applied on the version they were written for, stock
Connexion with one log line otherwise or when CONNEXION_PATCHES is off - and every journey answers either way."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
from a2wsgi import WSGIMiddleware
from connexion.apps.flask import FlaskOperation
from connexion.security import AbstractSecurityHandler

from service.api import connexion_patches
from service.api.wsgi_bridge import BufferedWSGIBridge
from service.sandbox.spotler import DEMO
from tests.api.conftest import caller
from tests.api.support import assert_ok, assert_problem
from tests.conftest import API_KEY

WELCOME = DEMO.automations["welcome"]
JAN = DEMO.contacts["jan"]
TRIGGER = "/integrationservice/automation/trigger/"


def _patched(app) -> dict[str, bool]:
    return {"operation-built-once": FlaskOperation.__dict__["fn"] is connexion_patches._BUILT_ONCE_FN,
            "security-signature-once": AbstractSecurityHandler.__dict__["_accepts_kwarg"].__func__
            is connexion_patches._accepts_kwarg,
            "buffered-wsgi-bridge": isinstance(app._middleware_app.asgi_app, BufferedWSGIBridge)}


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Connexion" in r.getMessage()]


def test_on_the_tested_version_every_patch_is_applied(make_client, settings, caplog):
    from importlib.metadata import version

    assert connexion_patches.installed_version() == version("connexion") == connexion_patches.TESTED_VERSION
    with caplog.at_level(logging.INFO, logger="service"):
        client = make_client(settings)
    assert _patched(client.app_) == dict.fromkeys(connexion_patches.PATCHES, True)
    assert _messages(caplog) == []


def test_off_by_setting_the_api_runs_on_stock_connexion_with_one_log_line(make_client, settings, caplog):
    make_client(settings)  # an earlier app of the process patched the classes: they are put back
    with caplog.at_level(logging.INFO, logger="service"):
        client = make_client(settings.with_(connexion_patches=False))
    assert _patched(client.app_) == dict.fromkeys(connexion_patches.PATCHES, False)
    assert isinstance(client.app_._middleware_app.asgi_app, WSGIMiddleware)  # Connexion's own a2wsgi bridge
    assert _messages(caplog) == ["Connexion patches off (CONNEXION_PATCHES=false): stock Connexion serves the API, "
                                 "more slowly"]
    assert client.get("/health").status_code == 200


def test_another_connexion_version_runs_stock_and_says_so(make_client, settings, caplog, monkeypatch):
    monkeypatch.setattr(connexion_patches, "installed_version", lambda: "3.4.0")
    with caplog.at_level(logging.INFO, logger="service"):
        client = make_client(settings)
    assert _patched(client.app_) == dict.fromkeys(connexion_patches.PATCHES, False)
    [line] = _messages(caplog)
    assert "Connexion 3.4.0 is installed" in line and connexion_patches.TESTED_VERSION in line
    assert client.get("/health").status_code == 200


# -- every journey, with the patches and without --------------------------------------------------------------

@pytest.fixture(params=[True, False], ids=["patched", "stock"])
def journey(request, make_client, settings, spotler_sim, sim):
    """``call`` on an app with the patches on or off; a 0.3 s deadline so that a slow write answers 202."""
    client = make_client(settings.with_(sandbox_upstream_url=spotler_sim.url, sync_deadline_seconds=0.3,
                                        connexion_patches=request.param))
    assert _patched(client.app_)["buffered-wsgi-bridge"] is request.param
    return caller(client)


def _follow(call, location: str, deadline_s: float = 30):
    """GET the Location (as Power Automate does) until it stops answering 202."""
    path = "/" + location.split("://", 1)[1].split("/", 1)[1]
    deadline = time.monotonic() + deadline_s
    while True:
        r = call.client.get(path, headers={"X-API-Key": API_KEY})
        if r.status_code != 202 or time.monotonic() > deadline:
            return r
        threading.Event().wait(0.05)


def test_reads_dropdowns_and_problems(journey):
    assert journey("GET", "/health").status_code == 200
    automations = journey("GET", "/automations")
    assert automations.status_code == 200 and WELCOME in {a["id"] for a in automations.json()["value"]}
    assert_problem(journey("POST", f"/automations/{WELCOME}/start", {"fields": {}}, key="bad"), 400,
                   "CONTACT_REQUIRED")
    unauthorised = journey.client.get("/automations", headers={"X-API-Key": "wrong-key-0123456789"})
    assert unauthorised.status_code == 401


def test_a_write_its_replay_and_its_job(journey, sim):
    key = uuid.uuid4().hex
    first = assert_ok(journey("POST", f"/automations/{WELCOME}/start", {"contact": {"externalId": JAN}}, key=key))
    again = journey("POST", f"/automations/{WELCOME}/start", {"contact": {"externalId": JAN}}, key=key)
    assert again.status_code == 200 and again.json()["jobId"] == first["jobId"]
    assert sim.stats()["triggers"] == 1
    job = journey("GET", f"/jobs/{first['jobId']}").json()
    assert job["status"] == "Completed"
    tagged = assert_ok(journey("POST", "/contacts/tags", {"contact": {"externalId": JAN}, "tags": "vip"},
                               key=uuid.uuid4().hex))
    assert tagged["jobId"] and "vip" in sim.tags_of(JAN)


def test_a_slow_short_write_answers_202_and_its_location_the_result(journey, sim):
    sim.faults.configure(latency_ms=600, path_prefix=TRIGGER)
    r = journey("POST", f"/automations/{WELCOME}/start", {"contact": {"externalId": JAN}}, key=uuid.uuid4().hex)
    assert r.status_code == 202, r.text
    assert r.headers["Location"].endswith(f"/jobs/{r.json()['jobId']}/result") and r.headers["Retry-After"]
    sim.faults.configure(latency_ms=0)
    done = _follow(journey, r.headers["Location"])
    assert_ok(done)
    assert sim.stats()["triggers"] == 1


def test_a_bulk_write_and_a_trigger_poll(journey, sim):
    sim.faults.configure(latency_ms=40, path_prefix="/integrationservice/automation/stop/")
    ids = [str(uuid.uuid4()) for _ in range(12)]
    r = journey("POST", "/automation-runs/stop", {"automationContactIds": ids}, key=uuid.uuid4().hex)
    assert r.status_code == 202, r.text
    done = _follow(journey, r.headers["Location"])
    assert done.status_code == 200 and done.json()["resultCode"] == "NOTHING_STOPPED"
    first = journey("GET", "/triggers/contacts/added")
    assert first.status_code == 202 and "/triggers/contacts/added?state=" in first.headers["Location"]
    sim.signup("patched.or.not@example.com")
    events = _follow(journey, first.headers["Location"])
    assert events.status_code == 200 and [e["email"] for e in events.json()["value"]] == ["patched.or.not@example.com"]
