"""The Spotler simulator on its own: raw signed HTTP (requests-oauthlib, not our client) over loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from requests_oauthlib import OAuth1
from werkzeug.test import Client as WsgiClient

from service.sandbox.server import SimulatorServer
from service.sandbox.spotler import BASE_PATH, DEMO, SpotlerSimulator

KEY, SECRET = "sim-key", "sim-secret"
JAN, PIET = DEMO.contacts["jan"], DEMO.contacts["piet"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim():
    return SpotlerSimulator(KEY, SECRET)


@pytest.fixture
def api(sim):
    """``call(method, path, **kw)`` signed with the right credentials against a running simulator."""
    with SimulatorServer(sim) as url:
        session = requests.Session()
        session.auth = OAuth1(KEY, client_secret=SECRET)
        session.headers["Accept"] = "application/json"

        def call(method, path, **kw):
            kw.setdefault("timeout", 5)
            return session.request(method, url + BASE_PATH + path, **kw)

        call.url = url
        yield call
        session.close()


# -- OAuth verification ---------------------------------------------------------------------------------------


def test_reference_signature_vector_is_accepted():
    """spotler-api.md §2, verified through the whole WSGI app with the vendor's host and path."""
    sim = SpotlerSimulator("ck_test", "cs_test", timestamp_skew=None)
    header = ('OAuth oauth_nonce="abc123nonce", oauth_timestamp="1700000000", oauth_version="1.0", '
              'oauth_signature_method="HMAC-SHA1", oauth_consumer_key="ck_test", '
              'oauth_signature="Fd5NKJMkewv87EYfpH01OJ%2BRM48%3D"')
    client = WsgiClient(sim)
    ok = client.get("/integrationservice/contact/search", base_url="https://restapi.mailplus.nl/",
                    query_string="pageSize=1&MPSearchQuery=email%3Djan%40example.com",
                    headers={"Authorization": header})
    assert ok.status_code == 200
    assert [c["externalId"] for c in ok.get_json()["contacts"]] == [JAN]
    tampered = client.get("/integrationservice/contact/search", base_url="https://restapi.mailplus.nl/",
                          query_string="pageSize=2&MPSearchQuery=email%3Djan%40example.com",
                          headers={"Authorization": header})
    assert tampered.status_code == 401
    assert tampered.get_json() == {"errorType": "NOT_AUTHORIZED", "message": "Invalid OAuth signature"}


@pytest.mark.parametrize(("auth", "reason"), [
    (None, "Missing OAuth authorization header"),
    (OAuth1(KEY, client_secret="wrong"), "Invalid OAuth signature"),
    (OAuth1("other-key", client_secret=SECRET), "Unknown OAuth consumer key"),
    (OAuth1(KEY, client_secret=SECRET, timestamp="1000000000"), "OAuth timestamp out of range"),
    (OAuth1(KEY, client_secret=SECRET, signature_method="PLAINTEXT"), "Unsupported OAuth signature method"),
])
def test_bad_credentials_get_401(sim, api, auth, reason):
    r = requests.get(api.url + BASE_PATH + "/contact/properties/list", auth=auth, timeout=5)
    assert r.status_code == 401
    assert r.json()["message"] == reason
    assert sim.stats()["auth_failures"] == 1


def test_auth_failure_status_can_be_403():
    sim = SpotlerSimulator(KEY, SECRET, auth_failure_status=403)
    with SimulatorServer(sim) as url:
        r = requests.get(url + BASE_PATH + "/contact/properties/list", auth=OAuth1(KEY, client_secret="x"), timeout=5)
    assert r.status_code == 403


def test_query_parameters_are_signed(api):
    assert api("GET", "/contact/search", params={"pageSize": 5, "MPSearchQuery": "email=piet@example.com"}).ok


def test_body_hash_is_accepted_and_checked(api, sim):
    body = {"externalContactId": JAN}
    signer = OAuth1(KEY, client_secret=SECRET, force_include_body=True)
    url = api.url + BASE_PATH + "/automation/trigger/" + DEMO.automations["welcome"]
    prepared = requests.Request("POST", url, json=body, auth=signer).prepare()
    assert b"oauth_body_hash" in prepared.headers["Authorization"]
    with requests.Session() as s:
        assert s.send(prepared, timeout=5).status_code == 200
        forged = requests.Request("POST", url, json=body, auth=signer).prepare()
        forged.body = json.dumps({"externalContactId": PIET}).encode()
        forged.headers["Content-Length"] = str(len(forged.body))
        r = s.send(forged, timeout=5)
    assert r.status_code == 401
    assert r.json()["message"] == "Invalid OAuth body hash"
    assert sim.stats()["triggers"] == 1


# -- documented validation and error bodies -------------------------------------------------------------------


def test_contact_errors(api):
    too_many = {"update": True, "contacts": [{"externalId": f"x{i}"} for i in range(101)]}
    r = api("POST", "/contact/list", json=too_many)
    assert (r.status_code, r.json()["message"]) == (400, "Too many contacts provided (max is 100)")
    r = api("POST", "/contact/list", json={"contacts": [{"properties": {}}]})
    assert (r.status_code, r.json()["message"]) == (400, "Contact without externalId found")
    r = api("POST", "/contact", json={"update": True, "contact": {"externalId": "e1", "properties": {"email": "x"}}})
    assert (r.status_code, r.json()) == (400, {"errorType": "INVALID_PROPERTY", "message": "Email is invalid"})
    r = api("PUT", f"/contact/{JAN}", json={"contact": {"properties": {"unknownProp": "v"}}})
    assert (r.status_code, r.json()["message"]) == (400, "Property is invalid")
    r = api("GET", "/contact/ghost")
    assert (r.status_code, r.json()) == (404, {"errorType": "CONTACT_NOT_FOUND", "message": "Given contact not found"})
    r = api("GET", "/contact/search", params={"MPSearchQuery": "email=jan@example.com"})
    assert r.status_code == 400  # pageSize is required
    r = api("GET", "/contact/updates/list", params={"toDate": "2024-01-01", "pageSize": 10})
    assert r.json()["message"] == "Invalid fromDate or no fromDate given"


def test_insert_is_204_and_upsert_merges_permissions(api, sim):
    r = api("POST", "/contact", json={"update": True, "contact": {
        "externalId": JAN, "properties": {"permissions": [{"bit": 3, "enabled": True}]}}})
    assert (r.status_code, r.content) == (204, b"")
    perms = {e["bit"]: e["enabled"] for e in api("GET", f"/contact/{JAN}").json()["properties"]["permissions"]}
    assert perms == {1: True, 2: True, 3: True}
    api("PUT", f"/contact/{JAN}", json={"purge": True, "contact": {"properties": {
        "email": "jan@example.com", "permissions": [{"bit": 2, "enabled": True}]}}})
    props = api("GET", f"/contact/{JAN}").json()["properties"]
    assert set(props) == {"email", "permissions"}
    assert [(e["bit"], e["enabled"]) for e in props["permissions"]] == [(2, True)]


def test_automation_trigger_bodies(api, sim):
    r = api("POST", "/automation/trigger/00000000-0000-4000-8000-000000000000", json={"externalContactId": JAN})
    assert (r.status_code, r.json()["result"]) == (404, "TRIGGER_NOTFOUND")
    r = api("POST", f"/automation/trigger/{DEMO.automations['welcome']}", json={"externalContactId": "ghost"})
    assert (r.status_code, r.json()["result"]) == (404, "CONTACT_NOTFOUND")
    r = api("POST", f"/automation/trigger/{DEMO.automations['birthday']}", json={"externalContactId": JAN})
    assert r.status_code == 417
    assert r.json() == {"result": "NOT_TRIGGERED", "automationResults": [
        {"automationId": DEMO.automation_ids["birthday"], "result": "AUTOMATION_INACTIVE"}]}
    code = DEMO.automations["one_time_offer"]
    assert api("POST", f"/automation/trigger/{code}", json={"externalContactId": JAN}).status_code == 200
    r = api("POST", f"/automation/trigger/{code}", json={"externalContactId": JAN})
    assert (r.status_code, r.json()["automationResults"][0]["result"]) == (417, "PARTICIPATION_LIMIT_REACHED")
    r = api("POST", f"/automation/trigger/{DEMO.automations['welcome']}", json={
        "externalContactId": JAN, "automationFields": [{"name": "nope", "type": "STRING", "value": "x"}]})
    assert r.status_code == 400
    assert sim.stats()["triggers"] == 1


def test_runs_get_unique_ids_and_stop(api, sim):
    code = DEMO.automations["welcome"]
    ids = [api("POST", f"/automation/trigger/{code}", json={"externalContactId": JAN}).json()
           ["automationResults"][0]["automationContactId"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert api("POST", f"/automation/stop/{ids[0]}").status_code == 204
    r = api("POST", f"/automation/stop/{ids[0]}")
    assert (r.status_code, r.json()["errorType"]) == (400, "INVALID_STATE")
    r = api("POST", "/automation/stop/ffffffff-ffff-4fff-8fff-ffffffffffff")
    assert (r.status_code, r.json()["message"]) == (404, "Automation run not found")
    r = api("POST", f"/automation/trigger/{code}/stop", json={"externalContactId": JAN})
    assert sorted(x["automationContactId"] for x in r.json()["results"]) == sorted(ids[1:])
    assert sim.stats()["runs_active"] == 0


def test_campaign_already_active(api):
    trigger = DEMO.campaign_triggers["signup"]
    assert api("POST", f"/campaign/trigger/{trigger}", json={"externalContactId": PIET}).status_code == 204
    r = api("POST", f"/campaign/trigger/{trigger}", json={"externalContactId": PIET})
    assert (r.status_code, r.json()["message"]) == (400, "Contact already active in campaign")


def test_audience_limits_and_tier(api, sim):
    aud = DEMO.audiences["vip"]
    r = api("POST", f"/audience/{aud}/contact", json={"contacts": [JAN] * 2501})
    assert r.status_code == 413
    r = api("POST", f"/audience/{aud}/contact", json={"contacts": [JAN, "ghost"]})
    assert r.status_code == 404
    assert r.json()["externalContactIds"] == ["ghost"]
    assert sim.members_of(aud) == [JAN]  # nothing applied when a contact is unknown
    r = api("PUT", f"/audience/{aud}", json={"externalId": "other", "name": "VIP"})
    assert (r.status_code, r.json()["message"]) == (400, "Path id doesn't match audience id")
    sim.tier = "basic"
    r = api("GET", f"/audience/{aud}")
    assert (r.status_code, r.json()["message"]) == (403, "Only Automation or eCommerce products can use this call")
    assert api.url and requests.post(api.url + "/__sim__/tier", json={"tier": "ecommerce"}, timeout=5).ok
    assert api("GET", f"/audience/{aud}").status_code == 200


def test_unknown_route_and_method(api):
    assert api("GET", "/nothing/here").status_code == 404
    assert api("DELETE", "/contact/properties/list").status_code == 405


# -- counters, control, concurrency ---------------------------------------------------------------------------


def test_stats_count_requests_per_route_and_reset_restores_demo(api, sim):
    api("GET", f"/contact/{JAN}")
    api("GET", f"/contact/{PIET}")
    api("POST", "/contact", json={"update": True, "contact": {"externalId": "fresh", "properties": {}}})
    stats = requests.get(api.url + "/__sim__/stats", timeout=5).json()
    assert stats["requests"] == {"GET /contact/<eid>": 2, "POST /contact": 1}
    assert stats["contacts_created"] == 1
    assert stats["faults"]["seen"] == 3
    assert requests.post(api.url + "/__sim__/reset", timeout=5).ok
    assert sim.contact("fresh") is None
    assert sim.stats()["requests"] == {}
    assert requests.get(api.url + "/__sim__/demo", timeout=5).json()["automations"] == dict(DEMO.automations)


def test_faults_settable_at_start_and_runtime():
    from service.sandbox.faults import FaultConfig

    sim = SpotlerSimulator(KEY, SECRET, faults=FaultConfig(fail_rate=1, fail_status=503, times=1))
    with SimulatorServer(sim) as url:
        auth = OAuth1(KEY, client_secret=SECRET)
        target = url + BASE_PATH + "/campaign/list"
        assert requests.get(target, auth=auth, timeout=5).status_code == 503
        assert requests.get(target, auth=auth, timeout=5).status_code == 200
        requests.post(url + "/__sim__/faults", json={"fail_rate": 1, "fail_status": 429, "retry_after": 3}, timeout=5)
        r = requests.get(target, auth=auth, timeout=5)
        assert (r.status_code, r.headers["Retry-After"]) == (429, "3")


def test_concurrent_triggers_are_counted_exactly(api, sim):
    code = DEMO.automations["welcome"]
    results: list[str] = []
    lock = threading.Lock()

    def fire():
        r = api("POST", f"/automation/trigger/{code}", json={"externalContactId": JAN})
        with lock:
            results.append(r.json()["automationResults"][0]["automationContactId"])

    threads = [threading.Thread(target=fire) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 20
    assert sim.stats()["triggers"] == 20


def test_standalone_prints_its_url_first():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.sandbox.spotler", "--port", "0", "--consumer-key", "K", "--consumer-secret",
         "S", "--latency-ms", "1"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=REPO, env=env)
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("SPOTLER_SIMULATOR_URL=http://127.0.0.1:")
        base = first.split("=", 1)[1]
        assert base.endswith("/integrationservice")
        r = requests.get(base + "/campaign/list", auth=OAuth1("K", client_secret="S"), timeout=5)
        assert r.status_code == 200
        assert {c["encryptedId"] for c in r.json()} == set(DEMO.campaigns.values())
    finally:
        proc.terminate()
        proc.wait(10)
