"""The Piggy simulator, exercised with plain HTTP over a loopback socket (wire shapes, rules, control)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from service.sandbox import FaultConfig, SimulatorServer
from service.sandbox.piggy import FakeClock, build, demo
from service.sandbox.piggy.app import PREFIX, parse_php_form

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def piggy(clock):
    sim, app = build(token=TOKEN, clock=clock, token_ttl=600)
    with SimulatorServer(app) as url:
        yield sim, app, url


def api(url: str, path: str) -> str:
    return f"{url}{PREFIX}/{path}"


def test_success_envelope_and_contact_shape(piggy):
    _, _, url = piggy
    r = requests.get(api(url, f"contacts/{demo.DEMO_CONTACT_UUID}"), headers=AUTH, timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"data", "meta"}
    contact = body["data"]
    assert contact["uuid"] == demo.DEMO_CONTACT_UUID
    assert contact["current_values"]["firstname"] == "Spongebob"
    assert {s["subscription_type"]["uuid"] for s in contact["subscriptions"]} >= {demo.SUBSCRIPTION_FUNCTIONAL_UUID}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
def test_bad_or_missing_token_is_401_with_piggy_error_body(piggy, headers):
    sim, _, url = piggy
    r = requests.get(api(url, "automations"), headers=headers, timeout=5)
    assert r.status_code == 401
    body = r.json()
    assert body["status_code"] == 401 and body["message"] and "code" in body
    assert sim.state()["counters"]["auth_failures"] == 1


def test_client_credentials_token_expires_on_the_clock(piggy, clock):
    sim, _, url = piggy
    r = requests.post(f"{url}/oauth/token", timeout=5, json={
        "grant_type": "client_credentials", "client_id": demo.DEMO_CLIENT_ID, "client_secret": demo.DEMO_CLIENT_SECRET})
    assert r.status_code == 200
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 600
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    assert requests.get(api(url, "automations"), headers=headers, timeout=5).status_code == 200
    clock.advance(599)
    assert requests.get(api(url, "automations"), headers=headers, timeout=5).status_code == 200
    clock.advance(2)
    assert requests.get(api(url, "automations"), headers=headers, timeout=5).status_code == 401


def test_token_endpoint_refuses_bad_secret_and_form_bodies_work(piggy):
    _, _, url = piggy
    bad = requests.post(f"{url}/oauth/token", timeout=5, data={
        "grant_type": "client_credentials", "client_id": demo.DEMO_CLIENT_ID, "client_secret": "nope"})
    assert bad.status_code == 401
    ok = requests.post(f"{url}/oauth/token", timeout=5, data={
        "grant_type": "client_credentials", "client_id": demo.DEMO_CLIENT_ID, "client_secret": demo.DEMO_CLIENT_SECRET})
    assert ok.status_code == 200 and ok.json()["access_token"]


def test_expire_endpoint_revokes_issued_tokens_only(piggy):
    _, _, url = piggy
    tok = requests.post(f"{url}/oauth/token", timeout=5, json={
        "grant_type": "client_credentials", "client_id": demo.DEMO_CLIENT_ID,
        "client_secret": demo.DEMO_CLIENT_SECRET}).json()["access_token"]
    assert requests.post(f"{url}/__sim__/tokens/expire", timeout=5).status_code == 200
    assert requests.get(api(url, "automations"), headers={"Authorization": f"Bearer {tok}"}, timeout=5).status_code == 401
    assert requests.get(api(url, "automations"), headers=AUTH, timeout=5).status_code == 200


def test_find_or_create_is_a_get_and_idempotent_on_lowercased_email(piggy):
    sim, _, url = piggy
    a = requests.get(api(url, "contacts/find-or-create"), params={"email": "New.Person@Example.com"},
                     headers=AUTH, timeout=5).json()["data"]
    b = requests.get(api(url, "contacts/find-or-create"), params={"email": "new.person@example.com"},
                     headers=AUTH, timeout=5).json()["data"]
    assert a["uuid"] == b["uuid"] and a["email"] == "new.person@example.com"
    assert sim.state()["counters"]["contacts_created"] == 1


def test_find_one_by_miss_is_contact_not_found(piggy):
    _, _, url = piggy
    r = requests.get(api(url, "contacts/find-one-by"), params={"email": "nobody@example.com"}, headers=AUTH, timeout=5)
    assert r.status_code == 404 and r.json()["code"] == 55031


def test_update_accepts_php_form_keys_and_checks_types(piggy):
    sim, _, url = piggy
    path = api(url, f"contacts/{demo.DEMO_CONTACT_UUID}")
    r = requests.put(path, headers=AUTH, timeout=5, data=[
        ("attributes[lastname]", "Pants"), ("attributes[housenumber]", "7"),
        ("attributes[interests][0]", "tea"), ("attributes[interests][1]", "cake"), ("attributes[vip]", "1")])
    assert r.status_code == 200, r.text
    values = r.json()["data"]["current_values"]
    assert values["lastname"] == "Pants" and values["housenumber"] == 7 and values["vip"] is True
    assert values["interests"] == ["tea", "cake"]
    bad = requests.put(path, headers=AUTH, timeout=5, json={"attributes": {
        "housenumber": "seven", "nope": "x", "created_by_import": "y", "favourite_shop": "paris"}})
    assert bad.status_code == 422
    body = bad.json()
    assert body["code"] == 1003
    assert set(body["errors"]) == {"attributes.housenumber", "attributes.nope", "attributes.created_by_import",
                                   "attributes.favourite_shop"}
    assert sim.get_contact(demo.DEMO_CONTACT_UUID)["current_values"]["housenumber"] == 7  # nothing applied


def test_update_with_empty_value_clears_the_attribute(piggy):
    sim, _, url = piggy
    r = requests.put(api(url, f"contacts/{demo.DEMO_CONTACT_UUID}"), headers=AUTH, timeout=5,
                     data={"attributes[firstname]": ""})
    assert r.status_code == 200
    assert "firstname" not in sim.get_contact(demo.DEMO_CONTACT_UUID)["current_values"]


def test_runs_only_for_active_contact_updated_automations(piggy):
    sim, _, url = piggy
    run = api(url, "automations/runs")
    ok = requests.post(run, headers=AUTH, timeout=5, json={
        "contact_uuid": demo.DEMO_CONTACT_UUID, "automation_uuid": demo.AUTOMATION_BIRTHDAY_UUID, "data": {"k": "v"}})
    assert ok.status_code == 200 and ok.json() == {"data": [], "meta": []}
    for automation in (demo.AUTOMATION_CREDIT_UUID, demo.AUTOMATION_WINBACK_UUID):
        refused = requests.post(run, headers=AUTH, timeout=5, json={
            "contact_uuid": demo.DEMO_CONTACT_UUID, "automation_uuid": automation})
        assert refused.status_code == 422
        assert refused.json()["code"] == 1003 and "automation_uuid" in refused.json()["errors"]
    unknown = requests.post(run, headers=AUTH, timeout=5, json={
        "contact_uuid": demo.DEMO_CONTACT_UUID, "automation_uuid": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 404 and unknown.json()["code"] == 60013
    no_contact = requests.post(run, headers=AUTH, timeout=5, json={
        "contact_uuid": "00000000-0000-0000-0000-000000000000", "automation_uuid": demo.AUTOMATION_BIRTHDAY_UUID})
    assert no_contact.status_code == 404 and no_contact.json()["code"] == 55031
    missing = requests.post(run, headers=AUTH, timeout=5, data={})
    assert missing.status_code == 422 and set(missing.json()["errors"]) == {"contact_uuid", "automation_uuid"}
    state = sim.state()
    assert state["counters"]["automation_runs"] == 1
    assert state["runs"] == [{"automation_uuid": demo.AUTOMATION_BIRTHDAY_UUID,
                              "contact_uuid": demo.DEMO_CONTACT_UUID, "data": {"k": "v"}}]


def test_custom_attributes_need_an_entity(piggy):
    _, _, url = piggy
    assert requests.get(api(url, "custom-attributes"), headers=AUTH, timeout=5).status_code == 422
    r = requests.get(api(url, "custom-attributes"), params={"entity": "contact"}, headers=AUTH, timeout=5)
    assert {a["name"] for a in r.json()["data"]} >= {"firstname", "interests"}


def test_subscriptions_subscribe_and_unsubscribe(piggy):
    _, _, url = piggy
    path = api(url, f"contact-subscriptions/{demo.DEMO_CONTACT_UUID}")
    r = requests.put(path + "/subscribe", headers=AUTH, timeout=5,
                     data={"subscription_type_uuid": demo.SUBSCRIPTION_NEWSLETTER_UUID})
    assert r.status_code == 200
    state = {s["subscription_type"]["uuid"]: s["is_subscribed"]
             for s in requests.get(path, headers=AUTH, timeout=5).json()["data"]}
    assert state[demo.SUBSCRIPTION_NEWSLETTER_UUID] is True
    unknown = requests.put(path + "/unsubscribe", headers=AUTH, timeout=5, data={"subscription_type_uuid": "zzz"})
    assert unknown.status_code == 404 and unknown.json()["code"] == 60013


def test_maintenance_mode_answers_503(piggy):
    _, _, url = piggy
    requests.post(f"{url}/__sim__/maintenance", json={"enabled": True}, timeout=5)
    r = requests.get(api(url, "automations"), headers=AUTH, timeout=5)
    assert r.status_code == 503 and r.json()["status_code"] == 503


def test_faults_middleware_wraps_the_simulator(piggy):
    sim, app, url = piggy
    app.configure(FaultConfig(fail_rate=1.0, fail_status=503, times=1))
    first = requests.get(api(url, "automations"), headers=AUTH, timeout=5)
    second = requests.get(api(url, "automations"), headers=AUTH, timeout=5)
    assert (first.status_code, second.status_code) == (503, 200)
    stats = requests.get(f"{url}/__sim__/stats", timeout=5).json()
    assert stats["faults"]["injected"] == {"status_503": 1}
    assert "counters" in stats  # the simulator's own state is merged in


def test_reset_restores_the_demo_account(piggy):
    sim, _, url = piggy
    requests.post(api(url, f"contacts/{demo.DEMO_CONTACT_UUID}/delete"), headers=AUTH, data={"type": "GDPR"}, timeout=5)
    assert sim.get_contact(demo.DEMO_CONTACT_UUID) is None
    requests.post(f"{url}/__sim__/reset", timeout=5)
    assert sim.get_contact(demo.DEMO_CONTACT_UUID) is not None
    assert sim.state()["counters"] == {}


def test_parse_php_form_builds_nested_values():
    assert parse_php_form([("a[b]", "1"), ("a[c][]", "x"), ("a[c][]", "y"), ("d[0]", "p"), ("d[1]", "q"), ("e", "")]) \
        == {"a": {"b": "1", "c": ["x", "y"]}, "d": ["p", "q"], "e": ""}


def test_standalone_runner_prints_its_url_first():
    proc = subprocess.Popen([sys.executable, "-m", "service.sandbox.piggy", "--port", "0", "--token", "cli-token"],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("PIGGY_SIMULATOR_URL=http://127.0.0.1:")
        second = proc.stdout.readline().strip()
        assert second.startswith("PIGGY_DEMO_")
        url = first.split("=", 1)[1]
        r = requests.get(f"{url}{PREFIX}/automations", headers={"Authorization": "Bearer cli-token"}, timeout=5)
        assert r.status_code == 200 and len(r.json()["data"]) == len(demo.automations())
    finally:
        proc.terminate()
        proc.wait(10)
