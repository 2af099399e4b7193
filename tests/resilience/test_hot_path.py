"""Behaviour of the hot-path changes made for the benchmarks (issue #8): StartAutomation by externalId makes one
upstream call (the trigger checks the contact), an unknown externalId is still our 404, and a body that is not
UTF-8 is a 400 rather than a 500."""

from __future__ import annotations

import uuid

import pytest

from service.sandbox.launch import SANDBOX_CREDENTIALS
from service.sandbox.spotler import DEMO, start_sandbox
from tests.conftest import API_KEY

WELCOME = DEMO.automations["welcome"]


@pytest.fixture
def sim():
    running = start_sandbox(**SANDBOX_CREDENTIALS["spotler"])
    yield running
    running.stop()


@pytest.fixture
def api(make_client, settings, sim):
    return make_client(settings.with_(sandbox_upstream_url=sim.url, list_cache_seconds=30))


def start(api, contact):
    return api.post(f"/automations/{WELCOME}/start", json={"contact": contact},
                    headers={"X-API-Key": API_KEY, "Idempotency-Key": uuid.uuid4().hex})


def upstream_calls(sim) -> dict:
    return dict(sim.simulator.stats()["requests"])


def test_start_by_external_id_makes_one_upstream_call(api, sim):
    start(api, {"externalId": DEMO.contacts["jan"]})  # warm the automation list and property caches
    before = upstream_calls(sim)
    r = start(api, {"externalId": DEMO.contacts["piet"]})
    assert r.status_code == 200, r.text
    after = upstream_calls(sim)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    assert delta == {"POST /automation/trigger/<code>": 1}
    assert sim.simulator.run(r.json()["automationContactId"])["externalContactId"] == DEMO.contacts["piet"]


def test_start_by_unknown_external_id_is_our_404(api, sim):
    r = start(api, {"externalId": "no-such-contact"})
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["code"] == "CONTACT_NOT_FOUND"
    assert "no-such-contact" in body["detail"] and "Create contact if missing" in body["detail"]
    assert sim.simulator.stats()["triggers"] == 0


def test_start_by_email_still_resolves_the_contact(api, sim):
    r = start(api, {"email": DEMO.emails["anna"]})
    assert r.status_code == 200, r.text
    assert sim.simulator.run(r.json()["automationContactId"])["externalContactId"] == DEMO.contacts["anna"]


@pytest.mark.parametrize("body", [b"\xff\xfe", b"{\"contact\": \"\xe9\"}"])
def test_body_that_is_not_utf8_is_a_400(api, body):
    r = api.post(f"/automations/{WELCOME}/start", content=body,
                 headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "INVALID_JSON"


# -- findings of the fuzzing run (bench/fuzz.py), fixed -----------------------------------------------------

@pytest.mark.parametrize("method,path", [("POST", "/automations/%0A/start"), ("GET", "/jobs/a%0Ab"),
                                         ("GET", "/automations/%0A/schema")])
def test_path_parameter_with_a_newline_is_a_404_not_a_500(api, method, path):
    r = api.request(method, path, json={"contact": {"externalId": "x"}}, headers={"X-API-Key": API_KEY})
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("name", ["since", "until"])
def test_empty_date_filter_is_a_400(api, name):
    r = api.get("/jobs", params={name: ""}, headers={"X-API-Key": API_KEY})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == name
