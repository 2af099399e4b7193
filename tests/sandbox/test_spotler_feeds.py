"""The Spotler simulator's event feeds, clock and control calls, over raw signed HTTP (not our client)."""

from __future__ import annotations

import pytest
import requests
from requests_oauthlib import OAuth1

from service.sandbox.server import SimulatorServer
from service.sandbox.spotler import BASE_PATH, DEMO, SpotlerSimulator

KEY, SECRET = "sim-key", "sim-secret"
WIDE = {"fromDate": "2000-01-01T00:00:00Z", "toDate": "2100-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def running():
    sim = SpotlerSimulator(KEY, SECRET)
    with SimulatorServer(sim) as url:
        yield sim, url


@pytest.fixture
def sim(running):
    running[0].reset()
    return running[0]


@pytest.fixture
def api(running, sim):
    url = running[1]
    session = requests.Session()
    session.auth = OAuth1(KEY, client_secret=SECRET)
    session.headers["Accept"] = "application/json"

    def call(method, path, **kw):
        return session.request(method, url + BASE_PATH + path, timeout=5, **kw)

    def control(name, body=None, method="POST"):
        return requests.request(method, f"{url}/__sim__/{name}", json=body, timeout=5)

    call.control = control
    yield call
    session.close()


@pytest.mark.parametrize("path, params, message", [
    ("/contact/updates/list", {"toDate": "2024-01-01", "pageSize": 10}, "Invalid fromDate or no fromDate given"),
    ("/contact/updates/list", {"fromDate": "2024-01-01", "pageSize": 10}, "Invalid toDate or no toDate given"),
    ("/contact/updates/list", {**WIDE}, "pageSize is required"),
    ("/contact/bounces/list", {"fromDate": "nope", "toDate": "2024-01-01", "pageSize": 1}, "Invalid fromDate"),
    ("/contact/bounces/list", {**WIDE}, "pageSize is required"),
    ("/mailing", {"fromDate": "2024-01-01"}, "Invalid toDate"),
    ("/mailing-interaction/opened", {"fromChangeDate": "yesterday"}, "Invalid fromChangeDate"),
])
def test_required_or_invalid_parameters_are_400(api, path, params, message):
    r = api("GET", path, params=params)
    assert r.status_code == 400 and r.json()["errorType"] == "INVALID_PARAMS"
    assert r.json()["message"].startswith(message)


def test_feeds_need_the_oauth_signature(running):
    r = requests.get(running[1] + BASE_PATH + "/contact/updates/list", params={**WIDE, "pageSize": 1}, timeout=5)
    assert r.status_code == 401


def test_contact_writes_show_up_in_updates_with_real_dates(api, sim):
    sim.set_clock(freeze=True)
    now = sim.clock()["nowMs"]
    assert api("PUT", f"/contact/{DEMO.contacts['anna']}", json={"contact": {"properties": {"city": "Delft"}}}
               ).status_code == 204
    signup = api.control("signup", {"email": "form@example.com", "permissions": ["Offers"]}).json()
    assert signup["created"] is True
    window = {"fromDate": "2000-01-01T00:00:00Z", "toDate": "2100-01-01T00:00:00Z", "pageSize": 100}
    contacts = api("GET", "/contact/updates/list", params=window).json()["contacts"]
    assert [c["externalId"] for c in contacts][-2:] == [DEMO.contacts["anna"], signup["externalId"]]
    new = contacts[-1]
    assert new["created"] == new["lastChanged"] == now  # epoch milliseconds by default
    assert new["properties"]["permissions"] == [{"bit": 2, "enabled": True, "description": "Offers"}]
    seeded_window = {"fromDate": "2023-11-14T00:00:00Z", "toDate": "2023-11-16T00:00:00Z", "pageSize": 100}
    assert [c["externalId"] for c in api("GET", "/contact/updates/list", params=seeded_window).json()["contacts"]
            ] == [DEMO.contacts["jan"], DEMO.contacts["piet"]]


def test_list_shape_and_date_form_are_selectable(api, sim):
    for i in range(3):
        sim.signup(f"p{i}@example.com")
    assert api.control("options", {"listShape": "array", "dateFormat": "iso"}).json() == {
        "listShape": "array", "dateFormat": "iso"}
    page = api("GET", "/contact/updates/list", params={**WIDE, "pageSize": 2, "after": 7}).json()
    assert isinstance(page, list) and len(page) == 2  # 6 seeded + 3 new: offset 7 holds the last two
    assert page[0]["created"].endswith("+00:00")
    assert api.control("options", {"listShape": "nope"}).status_code == 400
    api.control("options", {"listShape": "paged", "dateFormat": "epoch_ms"})
    paged = api("GET", "/contact/updates/list", params={**WIDE, "pageSize": 4}).json()
    assert paged["paging"]["after"] == 4 and "after=4" in paged["paging"]["next"]
    assert isinstance(paged["contacts"][0]["created"], int)


def test_bounces_opens_clicks_and_mailings(api, sim):
    jan = {"email": DEMO.emails["jan"]}
    b = api.control("bounce", {**jan, "type": "soft", "mailingId": DEMO.mailings["welcome"]}).json()
    api.control("open", {**jan, "mailingId": DEMO.mailings["welcome"]})
    api.control("click", {"externalId": DEMO.contacts["anna"]})
    bounces = api("GET", "/contact/bounces/list", params={**WIDE, "pageSize": 10}).json()["bounces"]
    assert [(x["contact"]["externalId"], x["type"], x["encryptedActId"]) for x in bounces][-1] == (
        DEMO.contacts["jan"], "SOFTBOUNCE", DEMO.mailings["welcome"])
    assert bounces[-1]["date"] == b["date"]
    opened = api("GET", "/mailing-interaction/opened").json()
    assert [(i["externalContactId"], i["encryptedMailingId"]) for i in opened["interactions"]] == [
        (DEMO.contacts["jan"], DEMO.mailings["welcome"])]
    assert set(opened["interactions"][0]) == {"id", "externalContactId", "encryptedMailingId", "date", "changeDate",
                                              "trendReportId"}
    clicked = api("GET", "/mailing-interaction/clicked", params={"trendReportIds": "3"}).json()["interactions"]
    assert [i["externalContactId"] for i in clicked] == [DEMO.contacts["anna"]]  # the newest mailing by default
    assert api("GET", "/mailing-interaction/clicked", params={"trendReportIds": "1"}).json()["interactions"] == []
    bounced = api("GET", "/mailing-interaction/bounced").json()["interactions"]
    assert [i["bounceType"] for i in bounced] == ["SOFT"]
    mailings = api("GET", "/mailing", params=WIDE).json()
    assert [m["encryptedId"] for m in mailings] == [DEMO.mailings[k] for k in ("newsletter", "welcome", "offers")]
    assert api("GET", f"/mailing/{DEMO.mailings['offers']}").json()["name"] == "Spring offers"
    assert api("GET", "/mailing/nope").status_code == 404
    assert api("GET", "/mailing-interaction/nope").status_code == 404


def test_unsubscribe_one_permission_or_everything(api, sim):
    one = api.control("unsubscribe", {"email": DEMO.emails["jan"], "permission": "Newsletter"}).json()
    assert one["permissions"] == {"1": False, "2": True} and one["channels"] == {"EMAIL": True}
    everything = api.control("unsubscribe", {"externalId": DEMO.contacts["jan"]}).json()
    assert set(everything["permissions"].values()) == {False} and everything["channels"] == {"EMAIL": False}
    contact = api("GET", f"/contact/{DEMO.contacts['jan']}").json()
    assert contact["channels"] == [{"name": "EMAIL", "value": False}]


def test_clock_moves_and_freezes(api, sim):
    real = api.control("clock", method="GET").json()
    ahead = api.control("clock", {"offsetSeconds": 120}).json()
    assert ahead["offsetSeconds"] == 120 and ahead["nowMs"] - real["nowMs"] >= 119_000
    frozen = api.control("clock", {"freeze": True}).json()
    assert api.control("clock", {"advanceSeconds": 5}).json()["nowMs"] == frozen["nowMs"] + 5000
    created = api.control("signup", {"email": "t@example.com"}).json()["externalId"]
    assert sim.contact(created)["created"] == frozen["nowMs"] + 5000
    assert api.control("clock", {"freeze": "yes"}).status_code == 400
    sim.reset()
    assert api.control("clock", method="GET").json()["offsetSeconds"] == 0


@pytest.mark.parametrize("name, body, status", [
    ("signup", {}, 400),
    ("signup", {"email": "x@example.com", "permissions": ["Nope"]}, 400),
    ("signup", {"email": "not-an-address"}, 400),
    ("bounce", {"email": "nobody@example.com"}, 404),
    ("bounce", {"email": "jan@example.com", "type": "medium"}, 400),
    ("open", {"email": "jan@example.com", "mailingId": "nope"}, 404),
    ("unsubscribe", {"email": "jan@example.com", "permission": "Nope"}, 400),
    ("clock", {"offsetSeconds": "soon"}, 400),
])
def test_bad_control_calls_say_why(api, name, body, status):
    r = api.control(name, body)
    assert r.status_code == status and r.json()["message"]
