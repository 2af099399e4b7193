"""The Spoki simulator, exercised with plain HTTP over a loopback socket (wire shapes, rules, control)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from service.sandbox import FaultConfig, SimulatorServer
from service.sandbox.spoki import build, demo

KEY = "test-key"
H = {"X-Spoki-Api-Key": KEY}


@pytest.fixture
def spoki():
    sim, app = build(api_key=KEY, page_size=2)
    with SimulatorServer(app) as url:
        yield sim, app, url


def test_missing_or_wrong_key_is_401_detail(spoki):
    _, _, url = spoki
    for headers in ({}, {"X-Spoki-Api-Key": "wrong"}):
        r = requests.get(f"{url}/api/1/tags/", headers=headers, timeout=5)
        assert r.status_code == 401
        assert set(r.json()) == {"detail"}


def test_pages_follow_absolute_next_links(spoki):
    _, _, url = spoki
    seen, pages, nxt = [], 0, f"{url}/api/1/contacts/"
    while nxt:
        page = requests.get(nxt, headers=H, timeout=5).json()
        assert set(page) == {"count", "next", "previous", "results"}
        assert page["count"] == len(demo.contacts())
        assert len(page["results"]) <= 2
        if pages:
            assert page["previous"].startswith(url)
        seen += [c["id"] for c in page["results"]]
        nxt, pages = page["next"], pages + 1
    assert pages == 2 and sorted(seen) == sorted(c["id"] for c in demo.contacts())
    assert requests.get(f"{url}/api/1/contacts/?page=9", headers=H, timeout=5).status_code == 404


def test_contact_filters_by_phone_digits_and_exact_email(spoki):
    _, _, url = spoki
    by_phone = requests.get(f"{url}/api/1/contacts/", params={"phone": demo.CONTACT_MARIO_PHONE},
                            headers=H, timeout=5).json()
    assert [c["id"] for c in by_phone["results"]] == [demo.CONTACT_MARIO_ID]
    contact = by_phone["results"][0]
    assert contact["contactfield_set"][0]["visual_code"] == "%%ORDER_ID%%"
    assert contact["tag_set"][0]["id"] == demo.TAG_VIP_ID and contact["list_set"][0]["id"] == demo.LIST_CUSTOMERS_ID
    shared = requests.get(f"{url}/api/1/contacts/", params={"email": demo.SHARED_EMAIL}, headers=H, timeout=5).json()
    assert shared["count"] == 2


def test_sync_upserts_by_normalised_phone_and_validates(spoki):
    sim, _, url = spoki
    a = requests.post(f"{url}/api/1/contacts/sync/", headers=H, timeout=5,
                      json={"phone": "+39 340 555 0000", "first_name": "Ada", "custom_fields": {"CITY": "Roma"}})
    b = requests.post(f"{url}/api/1/contacts/sync/", headers=H, timeout=5,
                      json={"phone": "00393405550000", "custom_fields": {"ORDER_ID": "9"}})
    assert a.status_code == b.status_code == 200
    assert a.json()["id"] == b.json()["id"]
    stored = sim.contact(a.json()["id"])
    assert stored["first_name"] == "Ada" and stored["custom"] == {demo.FIELD_CITY: "Roma", demo.FIELD_ORDER_ID: "9"}
    assert sim.state()["counters"] == {"contacts_created": 1, "contacts_updated": 1}
    missing = requests.post(f"{url}/api/1/contacts/sync/", headers=H, json={"first_name": "x"}, timeout=5)
    assert missing.status_code == 400 and missing.json() == {"phone": ["This field is required."]}
    bad = requests.post(f"{url}/api/1/contacts/sync/", headers=H, timeout=5,
                        json={"phone": "+393331234567", "custom_fields": {"NOPE": "1", "BIRTHDAY": "soon"}})
    assert bad.status_code == 400 and len(bad.json()["custom_fields"]) == 2


def test_unknown_contact_is_404_not_found(spoki):
    _, _, url = spoki
    r = requests.get(f"{url}/api/1/contacts/999999/", headers=H, timeout=5)
    assert r.status_code == 404 and r.json() == {"detail": "Not found."}


def test_start_automation_webhook_needs_secret_not_key(spoki):
    sim, _, url = spoki
    automation = requests.get(f"{url}/api/1/automations/{demo.AUTOMATION_TAG_VIP_ID}/", headers=H, timeout=5).json()
    hook = automation["webhook_set"][0]
    assert hook["link"] == f"{url}/wh/ap/{demo.AUTOMATION_TAG_VIP_UUID}/"
    wrong = requests.post(hook["link"], json={"secret": "nope", "phone": demo.CONTACT_GIULIA_PHONE}, timeout=5)
    assert wrong.status_code == 403
    ok = requests.post(hook["link"], timeout=5, json={"secret": hook["secret"], "phone": demo.CONTACT_GIULIA_PHONE,
                                                      "custom_fields": {"ORDER_ID": "77"}})
    assert ok.status_code == 200 and ok.content == b""
    giulia = sim.contact(demo.CONTACT_GIULIA_ID)
    assert demo.TAG_VIP_ID in giulia["tags"]  # the AddTag step ran
    assert giulia["custom"][demo.FIELD_ORDER_ID] == "77"  # starting updates the contact
    state = sim.state()
    assert state["counters"]["automation_runs"] == 1
    assert state["runs"][0]["api_key_sent"] is False and "secret" not in state["runs"][0]["payload"]


def test_start_automation_refuses_inactive_and_unknown(spoki):
    sim, _, url = spoki
    inactive = requests.post(f"{url}/wh/ap/{demo.AUTOMATION_SUMMER_UUID}/", timeout=5,
                             json={"secret": demo.AUTOMATION_SUMMER_SECRET, "phone": demo.CONTACT_MARIO_PHONE})
    assert inactive.status_code == 400 and "detail" in inactive.json()
    unknown = requests.post(f"{url}/wh/ap/00000000-0000-0000-0000-000000000000/", json={"secret": "x"}, timeout=5)
    assert unknown.status_code == 404
    no_phone = requests.post(f"{url}/wh/ap/{demo.AUTOMATION_ORDER_UUID}/", timeout=5,
                             json={"secret": demo.AUTOMATION_ORDER_SECRET})
    assert no_phone.status_code == 400 and "phone" in no_phone.json()
    assert sim.state()["counters"].get("automation_runs", 0) == 0


def test_automation_filter_and_fields_used(spoki):
    _, _, url = spoki
    api_only = requests.get(f"{url}/api/1/automations/", params={"webhook_platform": "Api", "page_size": 10},
                            headers=H, timeout=5).json()
    assert {a["id"] for a in api_only["results"]} == {demo.AUTOMATION_ORDER_ID, demo.AUTOMATION_TAG_VIP_ID,
                                                     demo.AUTOMATION_SUMMER_ID}
    used = requests.get(f"{url}/api/1/automations/{demo.AUTOMATION_ORDER_ID}/custom-fields-used/", headers=H,
                        timeout=5).json()
    assert [f["code"] for f in used] == ["ORDER_ID"]


def test_lists_sync_and_remove_contacts(spoki):
    sim, _, url = spoki
    lid = demo.LIST_PROSPECTS_ID
    r = requests.post(f"{url}/api/1/lists/{lid}/sync_contacts/", headers=H, timeout=5,
                      json={"contacts": [{"phone": demo.CONTACT_GIULIA_PHONE}, {"phone": "+393401234000"}]})
    assert r.status_code == 200
    assert lid in sim.contact(demo.CONTACT_GIULIA_ID)["lists"]
    assert sim.state()["counters"]["contacts_created"] == 1
    bad = requests.post(f"{url}/api/1/lists/{lid}/sync_contacts/", headers=H, json={"contacts": [{}]}, timeout=5)
    assert bad.status_code == 400
    for body in ({"ids": [demo.CONTACT_GIULIA_ID]}, {"phones": ["+393401234000"]}):
        assert requests.post(f"{url}/api/1/lists/{lid}/remove_contacts/", headers=H, json=body, timeout=5).ok
    lst = requests.get(f"{url}/api/1/lists/{lid}/", headers=H, timeout=5).json()
    assert lst["contacts_count"] == 0
    assert requests.post(f"{url}/api/1/lists/999/remove_contacts/", headers=H, json={"ids": [1]},
                         timeout=5).status_code == 404


def test_throttle_answers_429_with_retry_after(spoki):
    _, _, url = spoki
    requests.post(f"{url}/__sim__/throttle", json={"count": 1, "retry_after": 7}, timeout=5)
    r = requests.get(f"{url}/api/1/tags/", headers=H, timeout=5)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7" and "throttled" in r.json()["detail"]
    assert requests.get(f"{url}/api/1/tags/", headers=H, timeout=5).status_code == 200


def test_custom_field_creation_rules(spoki):
    _, _, url = spoki
    ok = requests.post(f"{url}/api/1/custom-fields/", headers=H, timeout=5,
                       json={"label": "Shoe size", "code": "SHOE_SIZE", "field_type": 1})
    assert ok.status_code == 201
    dup = requests.post(f"{url}/api/1/custom-fields/", headers=H, timeout=5,
                        json={"label": "Shoe", "code": "SHOE_SIZE", "field_type": 1})
    reserved = requests.post(f"{url}/api/1/custom-fields/", headers=H, timeout=5,
                             json={"label": "Mail", "code": "EMAIL", "field_type": 9})
    assert dup.status_code == reserved.status_code == 400
    assert set(reserved.json()) == {"code", "field_type"}


def test_faults_middleware_wraps_the_simulator(spoki):
    _, app, url = spoki
    app.configure(FaultConfig(fail_rate=1.0, fail_status=502, times=1, path_prefix="/api/1/lists/"))
    assert requests.get(f"{url}/api/1/tags/", headers=H, timeout=5).status_code == 200
    assert requests.get(f"{url}/api/1/lists/", headers=H, timeout=5).status_code == 502
    assert requests.get(f"{url}/api/1/lists/", headers=H, timeout=5).status_code == 200


def test_standalone_runner_prints_its_url_first():
    proc = subprocess.Popen([sys.executable, "-m", "service.sandbox.spoki", "--port", "0", "--api-key", "cli-key"],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("SPOKI_SIMULATOR_URL=http://127.0.0.1:")
        assert proc.stdout.readline().startswith("SPOKI_DEMO_")
        url = first.split("=", 1)[1]
        r = requests.get(f"{url}/api/1/lists/", headers={"X-Spoki-Api-Key": "cli-key"}, timeout=5)
        assert r.status_code == 200 and r.json()["count"] == len(demo.lists())
    finally:
        proc.terminate()
        proc.wait(10)
