"""Polling triggers through the API against the Spotler simulator (real sockets, real OAuth, real feeds).

Every test follows ``Location`` the way Power Automate does: the first call answers 202, then the URL in
``Location`` is polled until it answers 202 again. Events are made in the simulator (sign-ups, bounces, opens,
clicks, unsubscribes, its clock) or through the API's own write actions.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import zlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from service.app import create_app
from service.sandbox.spotler import DEMO
from tests.api.support import assert_problem
from tests.conftest import API_KEY

KEY = {"X-API-Key": API_KEY}
ADDED = "/triggers/contacts/added"
CHANGED = "/triggers/contacts/changed"
BOUNCED = "/triggers/contacts/bounced"
UNSUBSCRIBED = "/triggers/contacts/unsubscribed"
INTERACTIONS = "/triggers/mailings/interactions"
POLL_SECONDS = 180
NEWSLETTER, OFFERS = str(DEMO.permissions["Newsletter"]), str(DEMO.permissions["Offers"])


@pytest.fixture
def trigger_settings(settings, spotler_sim):
    """Small feed pages (so that a few hundred events span several pages), the default batch of 100."""
    return settings.with_(sandbox_upstream_url=spotler_sim.url, trigger_page_size=100, trigger_batch_size=100,
                          trigger_poll_seconds=POLL_SECONDS, upstream_max_retries=0)


@pytest.fixture
def client(make_client, trigger_settings, sim):
    return make_client(trigger_settings)


def relative(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + "?" + parts.query


def start(client, path: str, headers: dict | None = None, **query):
    r = client.get(path, params=query or None, headers={**KEY, **(headers or {})})
    assert r.status_code == 202, r.text
    assert r.content == b""
    assert int(r.headers["retry-after"]) >= 0
    return r


def follow(client, previous, headers: dict | None = None):
    r = client.get(relative(previous.headers["location"]), headers={**KEY, **(headers or {})})
    assert r.status_code in (200, 202), r.text
    assert len(previous.headers["location"]) < 2000
    return r


def drain(client, previous, *, max_polls: int = 20) -> tuple[list[list[dict]], object]:
    """Poll until a 202; the batches of items, in order, and the last answer."""
    batches = []
    r = previous
    for _ in range(max_polls):
        r = follow(client, r)
        if r.status_code == 202:
            return batches, r
        batches.append(r.json()["value"])
    raise AssertionError(f"still delivering after {max_polls} polls")


def flat(batches: list[list[dict]]) -> list[dict]:
    return [item for batch in batches for item in batch]


def feed_calls(sim, route: str = "GET /contact/updates/list") -> int:
    return sim.stats()["requests"].get(route, 0)


def state_payload(location: str) -> dict:
    """The signed state's payload, decoded the way anyone holding the URL could (no secret needed)."""
    token = parse_qs(urlsplit(location).query)["state"][0]
    compressed = token.startswith(".")
    body = token.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


# -- the protocol ---------------------------------------------------------------------------------------------

def test_first_call_is_202_from_now_and_a_quiet_poll_costs_one_feed_page(client, sim):
    first = start(client, ADDED)
    assert first.headers["location"].startswith("http://testserver/triggers/contacts/added?state=")
    assert int(first.headers["retry-after"]) == POLL_SECONDS
    sim.signup("early@example.com")  # after the first call: new
    r = follow(client, first)
    assert r.status_code == 200 and [i["email"] for i in r.json()["value"]] == ["early@example.com"]
    assert int(r.headers["retry-after"]) == POLL_SECONDS
    before = feed_calls(sim)
    quiet = follow(client, r)
    assert quiet.status_code == 202 and quiet.content == b""
    assert feed_calls(sim) - before == 1  # nothing new: one upstream call for the one page of the window
    assert int(quiet.headers["retry-after"]) == POLL_SECONDS


def test_contacts_that_existed_before_the_first_call_never_fire(client, sim):
    sim.signup("before@example.com")
    first = start(client, ADDED)
    batches, _ = drain(client, first)
    assert batches == []


def test_location_honours_the_proxy_headers(client, sim):
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "flows.example.com", "X-Forwarded-Prefix": "/ma"}
    first = start(client, BOUNCED, headers=proxy, bounceType="hard")
    assert first.headers["location"].startswith("https://flows.example.com/ma/triggers/contacts/bounced?")
    assert parse_qs(urlsplit(first.headers["location"]).query)["bounceType"] == ["hard"]
    sim.bounce({"email": DEMO.emails["jan"], "type": "hard"})
    nxt = client.get(relative(first.headers["location"]).removeprefix("/ma"), headers={**KEY, **proxy})
    assert nxt.status_code == 200 and nxt.headers["location"].startswith("https://flows.example.com/ma/")


def test_250_events_over_several_pages_and_polls_each_once_oldest_first(client, sim):
    first = start(client, ADDED)
    emails = [f"signup{i:03d}@example.com" for i in range(250)]
    for e in emails:
        sim.signup(e)
    before = feed_calls(sim)
    batches, last = drain(client, first)
    assert [len(b) for b in batches] == [100, 100, 50]  # at most the batch size per answer
    items = flat(batches)
    assert sorted(i["email"] for i in items) == emails and len({i["eventId"] for i in items}) == 250  # each once
    created = [i["created"] for i in items]
    assert created == sorted(created)  # oldest first (sign-ups within one millisecond in any order)
    assert feed_calls(sim) - before == 4 * 3  # every poll reads the window's three pages
    assert int(last.headers["retry-after"]) == POLL_SECONDS
    # the seen set outgrew the URL: it is kept server-side, the Location stays short and free of personal data
    payload = state_payload(last.headers["location"])
    assert "r" in payload and "s" not in payload
    text = json.dumps(payload)
    assert "@" not in text and "sub-" not in text


def test_retry_after_is_zero_while_more_is_waiting(client, sim):
    first = start(client, ADDED, batchSize=2)
    for i in range(5):
        sim.signup(f"wait{i}@example.com")
    answers = []
    r = first
    while True:
        r = follow(client, r)
        answers.append((r.status_code, int(r.headers["retry-after"]), len(r.json()["value"]) if r.content else 0))
        if r.status_code == 202:
            break
    assert answers == [(200, 0, 2), (200, 0, 2), (200, POLL_SECONDS, 1), (202, POLL_SECONDS, 0)]
    assert parse_qs(urlsplit(r.headers["location"]).query)["batchSize"] == ["2"]


def test_equal_timestamps_across_a_page_boundary_each_once(client, sim):
    first = start(client, ADDED, batchSize=70)
    sim.set_clock(freeze=True)  # every sign-up below gets the same created/lastChanged millisecond
    emails = [f"tie{i:03d}@example.com" for i in range(150)]
    for e in emails:
        sim.signup(e)
    sim.set_clock(freeze=False)
    batches, _ = drain(client, first)
    items = flat(batches)
    assert [len(b) for b in batches] == [70, 70, 10]
    assert sorted(i["email"] for i in items) == emails and len(items) == 150
    assert len({i["created"] for i in items}) == 1


@pytest.mark.parametrize("skew", [120, -120])
def test_platform_clock_two_minutes_ahead_or_behind(client, sim, skew):
    sim.set_clock(offset_seconds=skew)
    sim.signup("old@example.com")  # before the trigger starts
    first = start(client, ADDED)
    sim.signup("a@example.com")
    r = follow(client, first)
    assert [i["email"] for i in r.json()["value"]] == ["a@example.com"]
    sim.signup("b@example.com")
    sim.signup("c@example.com")
    batches, r = drain(client, r)
    assert sorted(i["email"] for i in flat(batches)) == ["b@example.com", "c@example.com"]
    sim.set_clock(advance_seconds=-skew)  # the platform corrects its clock: nothing fires twice, nothing is lost
    sim.signup("d@example.com")
    batches, _ = drain(client, r)
    assert [i["email"] for i in flat(batches)] == ["d@example.com"]


@pytest.mark.parametrize("shape, form", [("paged", "epoch_ms"), ("array", "iso")])
def test_both_list_shapes_and_timestamp_forms(client, sim, shape, form):
    sim.list_shape, sim.date_format = shape, form
    first = start(client, ADDED)
    for i in range(130):
        sim.signup(f"s{i:03d}@example.com")
    batches, _ = drain(client, first)
    items = flat(batches)
    assert sorted(i["email"] for i in items) == [f"s{i:03d}@example.com" for i in range(130)]
    created = dt.datetime.fromisoformat(items[0]["created"].replace("Z", "+00:00"))
    assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_since_starts_earlier(client, sim):
    sim.signup("x@example.com")
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    first = start(client, ADDED, since=since)
    assert "since" not in parse_qs(urlsplit(first.headers["location"]).query)
    batches, _ = drain(client, first)
    assert [i["email"] for i in flat(batches)] == ["x@example.com"]


def test_a_restart_between_polls_loses_nothing(make_client, trigger_settings, sim):
    one = create_app(trigger_settings).test_client()
    one.__enter__()
    try:
        first = start(one, ADDED)
        sim.signup("r1@example.com")
        r = follow(one, first)
        assert [i["email"] for i in r.json()["value"]] == ["r1@example.com"]
    finally:
        one.__exit__(None, None, None)  # the service stops; a new process answers the next poll
    sim.signup("r2@example.com")
    two = make_client(trigger_settings)
    batches, _ = drain(two, r)
    assert [i["email"] for i in flat(batches)] == ["r2@example.com"]


def test_two_instances_answering_alternate_polls(make_client, trigger_settings, sim, db_url):
    """Two services on one database (SQLite and PostgreSQL) take turns; the unsubscribe trigger keeps per-contact
    data in that database, so this is its hardest case."""
    a, b = (make_client(trigger_settings.with_(database_url=db_url)) for _ in range(2))
    turns = itertools.cycle([b, a])
    r = start(a, UNSUBSCRIBED)
    seen = []
    for step in ("jan", "quiet", "piet", "quiet", "jan again", "quiet", "jan", "quiet"):
        if step in ("jan", "piet"):
            sim.unsubscribe({"email": DEMO.emails[step], "permission": "Newsletter"})
        elif step == "jan again":
            sim.signup(DEMO.emails["jan"], permissions=["Newsletter", "Offers"])  # subscribes again: no event
        r = follow(next(turns), r)
        seen.append([i["externalId"] for i in r.json()["value"]] if r.status_code == 200 else [])
    jan, piet = DEMO.contacts["jan"], DEMO.contacts["piet"]
    assert seen == [[jan], [], [piet], [], [], [], [jan], []]


# -- bad and foreign states -----------------------------------------------------------------------------------

def _with_state(location: str, state: str) -> str:
    parts = urlsplit(location)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["state"] = state
    return parts.path + "?" + urlencode(query)


def test_tampered_malformed_and_foreign_states_are_400s_that_say_what_to_do(make_client, client, trigger_settings,
                                                                          sim):
    first = start(client, ADDED, permissions="Newsletter")
    token = parse_qs(urlsplit(first.headers["location"]).query)["state"][0]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token[:40], "garbage", token + "x", "." * 10):
        body = assert_problem(client.get(_with_state(first.headers["location"], bad), headers=KEY), 400,
                              "TRIGGER_STATE_INVALID")
        assert "Save the flow again" in body["detail"]
    # another trigger's state, other filter values, another connection
    other = start(client, CHANGED)
    other_token = parse_qs(urlsplit(other.headers["location"]).query)["state"][0]
    assert_problem(client.get(f"{ADDED}?permissions=Newsletter&state={other_token}", headers=KEY), 400,
                   "TRIGGER_STATE_FOREIGN")
    assert_problem(client.get(f"{ADDED}?permissions=Offers&state={token}", headers=KEY), 400, "TRIGGER_STATE_FOREIGN")
    assert_problem(client.get(f"{ADDED}?state={token}", headers=KEY), 400, "TRIGGER_STATE_FOREIGN")
    two_keys = make_client(trigger_settings.with_(api_keys=(API_KEY, "another-key-0123456789")))
    assert_problem(two_keys.get(relative(first.headers["location"]), headers={"X-API-Key": "another-key-0123456789"}),
                   400, "TRIGGER_STATE_FOREIGN")
    # a state signed with a secret the service no longer has; a rotated secret keeps running flows going
    other_secret = make_client(trigger_settings.with_(trigger_state_secrets=("n" * 32,)))
    assert_problem(other_secret.get(relative(first.headers["location"]), headers=KEY), 400, "TRIGGER_STATE_INVALID")
    rotated = make_client(trigger_settings.with_(trigger_state_secrets=(*trigger_settings.trigger_state_secrets,
                                                                        "n" * 32)))
    sim.signup("rot@example.com")
    r = follow(rotated, first)
    assert [i["email"] for i in r.json()["value"]] == ["rot@example.com"]
    assert_problem(client.get(relative(r.headers["location"]), headers=KEY), 400, "TRIGGER_STATE_INVALID")


def test_bad_trigger_inputs_are_400s(client, sim):
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    assert_problem(client.get(ADDED, params={"since": future}, headers=KEY), 400, "INVALID_SINCE")
    for bad in ("yesterday", "", "2026-01-01", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00"):
        assert_problem(client.get(ADDED, params={"since": bad}, headers=KEY), 400, "INVALID_SINCE")
    assert_problem(client.get(ADDED, params={"permissions": "Nope"}, headers=KEY), 400, "UNKNOWN_PERMISSION")
    assert_problem(client.get(CHANGED, params={"fields": "noSuchField"}, headers=KEY), 400, "UNKNOWN_FIELD")
    assert_problem(client.get(CHANGED, params={"fields": "firstName", "since": "2026-01-01T00:00:00Z"},
                              headers=KEY), 400, "SINCE_NOT_SUPPORTED")
    assert client.get(BOUNCED, params={"bounceType": "weird"}, headers=KEY).status_code == 400
    assert client.get(ADDED, params={"batchSize": 0}, headers=KEY).status_code == 400
    assert client.get(UNSUBSCRIBED, params={"since": "2026-01-01T00:00:00Z"}, headers=KEY).status_code == 400
    assert client.get(ADDED).status_code == 401


# -- upstream failures ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [503, 429])
def test_upstream_failure_mid_poll_is_503_and_the_same_location_recovers(client, sim, status):
    first = start(client, INTERACTIONS)
    for contact in ("jan", "piet", "anna"):
        sim.engage("opened", {"email": DEMO.emails[contact]})
        sim.engage("clicked", {"email": DEMO.emails[contact]})
    opened_before = feed_calls(sim, "GET /mailing-interaction/<kind>")
    sim.faults.configure(fail_rate=1, fail_status=status, retry_after=7, times=1,
                         path_regex="mailing-interaction/clicked")  # the second feed of the poll fails
    try:
        failed = client.get(relative(first.headers["location"]), headers=KEY)
    finally:
        sim.faults.clear()
    assert_problem(failed, 503, "UPSTREAM_RATE_LIMITED" if status == 429 else "UPSTREAM_UNAVAILABLE")
    assert int(failed.headers["retry-after"]) == 7
    assert "location" not in failed.headers
    assert feed_calls(sim, "GET /mailing-interaction/<kind>") - opened_before == 1  # opened was read
    assert sim.faults.stats()["injected"][f"status_{status}"] == 1  # then clicked failed
    batches, _ = drain(client, first)  # the platform polls the same Location again
    items = flat(batches)
    assert sorted((i["interaction"], i["email"]) for i in items) == sorted(
        (k, DEMO.emails[c]) for c in ("jan", "piet", "anna") for k in ("opened", "clicked"))


# -- the five triggers ------------------------------------------------------------------------------------------

def test_new_contact_with_a_permission_filter(client, call, sim):
    first = start(client, ADDED, permissions=NEWSLETTER)
    sim.signup("with@example.com", first_name="Wil", permissions=["Newsletter"])
    sim.signup("without@example.com", permissions=["Events"])
    assert call("PUT", "/contacts", {"contact": {"email": "api@example.com"}}).status_code == 200
    batches, _ = drain(client, first)
    [item] = flat(batches)
    assert item["email"] == "with@example.com" and item["fields"]["firstName"] == "Wil"
    assert item["permissions"] == [{"name": "Newsletter", "value": NEWSLETTER, "enabled": True}]
    assert item["subscribed"] is True and item["externalId"].startswith("sub-")
    assert dt.datetime.fromisoformat(item["created"].replace("Z", "+00:00")) <= dt.datetime.now(dt.UTC)


def test_changed_contacts_fire_on_every_change_made_through_any_call(client, call, sim):
    first = start(client, CHANGED)
    assert call("POST", "/contacts/fields", {"contact": {"email": DEMO.emails["jan"]}, "field": "city",
                                             "value": "Delft"}).status_code == 200
    sim.signup("new@example.com")
    batches, last = drain(client, first)
    by_id = {i["externalId"]: i for i in flat(batches)}
    assert len(by_id) == 2
    jan = by_id.pop(DEMO.contacts["jan"])
    assert jan["fields"]["city"] == "Delft" and jan["fields"]["lastPurchaseDate"] == "2023-10-01"
    assert {p["name"]: p["enabled"] for p in jan["permissions"]} == {"Newsletter": True, "Offers": True}
    [new] = by_id.values()
    assert new["email"] == "new@example.com" and "changedFields" not in new
    assert call("POST", "/contacts/fields", {"contact": {"email": DEMO.emails["jan"]}, "field": "city",
                                             "value": "Leiden"}).status_code == 200
    batches, _ = drain(client, last)
    assert [(i["externalId"], i["fields"]["city"]) for i in flat(batches)] == [(DEMO.contacts["jan"], "Leiden")]


def test_changed_contacts_filtered_on_fields(client, call, sim):
    first = start(client, CHANGED, fields="firstName;Last name")
    assert parse_qs(urlsplit(first.headers["location"]).query)["fields"] == ["firstName;Last name"]

    def set_field(field, value):
        assert call("POST", "/contacts/fields", {"contact": {"email": DEMO.emails["jan"]}, "field": field,
                                                 "value": value}).status_code == 200

    set_field("city", "Delft")  # not watched
    r = follow(client, first)
    assert r.status_code == 202
    set_field("lastName", "Jansma")
    r = follow(client, r)
    [item] = r.json()["value"]
    assert item["changedFields"] == ["lastName"] and item["fields"]["lastName"] == "Jansma"
    set_field("city", "Leiden")
    sim.signup("fresh@example.com", first_name="Fresh")
    batches, _ = drain(client, r)
    [new] = flat(batches)  # a new contact counts as a change of every watched field
    assert new["email"] == "fresh@example.com" and new["changedFields"] == ["firstName", "lastName"]


def test_bounces_hard_soft_or_both_with_the_mailing(client, sim):
    hard = start(client, BOUNCED, bounceType="hard")
    both = start(client, BOUNCED)
    sim.bounce({"email": DEMO.emails["jan"], "type": "hard", "mailingId": DEMO.mailings["welcome"]})
    sim.bounce({"email": DEMO.emails["anna"], "type": "soft"})
    [only_hard] = flat(drain(client, hard)[0])
    assert only_hard["email"] == DEMO.emails["jan"] and only_hard["externalId"] == DEMO.contacts["jan"]
    assert only_hard["bounceType"] == "hard" and only_hard["mailingId"] == DEMO.mailings["welcome"]
    assert only_hard["mailingName"] == "Welcome mail" and only_hard["date"].endswith("Z")
    assert sorted((i["email"], i["bounceType"]) for i in flat(drain(client, both)[0])) == [
        (DEMO.emails["anna"], "soft"), (DEMO.emails["jan"], "hard")]


def test_opens_and_clicks_with_contact_and_mailing(client, sim):
    clicks = start(client, INTERACTIONS, interaction="clicked", mailingId=DEMO.mailings["offers"])
    both = start(client, INTERACTIONS)
    sim.engage("opened", {"email": DEMO.emails["piet"], "mailingId": DEMO.mailings["offers"]})
    sim.engage("clicked", {"email": DEMO.emails["piet"], "mailingId": DEMO.mailings["offers"]})
    sim.engage("clicked", {"email": DEMO.emails["anna"], "mailingId": DEMO.mailings["newsletter"]})
    [click] = flat(drain(client, clicks)[0])
    assert click == {"eventId": click["eventId"], "interaction": "clicked", "externalId": DEMO.contacts["piet"],
                     "email": DEMO.emails["piet"], "mailingId": DEMO.mailings["offers"],
                     "mailingName": "Spring offers", "date": click["date"]}
    assert [(i["interaction"], i["email"], i["mailingName"]) for i in flat(drain(client, both)[0])] == [
        ("opened", DEMO.emails["piet"], "Spring offers"), ("clicked", DEMO.emails["piet"], "Spring offers"),
        ("clicked", DEMO.emails["anna"], "November newsletter")]


def test_unsubscribe_fires_once_per_transition_and_not_on_the_baseline(client, call, sim):
    jan, piet = DEMO.contacts["jan"], DEMO.contacts["piet"]
    first = start(client, UNSUBSCRIBED)  # baseline: piet already has Offers off; that never fires
    only_newsletter = start(client, UNSUBSCRIBED, permissions="Newsletter")
    r = follow(client, first)
    assert r.status_code == 202
    sim.unsubscribe({"email": DEMO.emails["jan"], "permission": "Offers"})
    r = follow(client, r)
    [item] = r.json()["value"]
    assert item["externalId"] == jan and item["email"] == DEMO.emails["jan"]
    assert item["permissions"] == [{"name": "Offers", "value": OFFERS}] and item["optedOut"] is False
    assert follow(client, r).status_code == 202  # once per transition
    assert call("POST", "/contacts/fields", {"contact": {"externalId": jan}, "field": "city",
                                             "value": "Delft"}).status_code == 200
    r = follow(client, r)
    assert r.status_code == 202  # a change without a permission going off
    assert call("POST", "/contacts/permissions", {"contact": {"externalId": jan}, "permissions": "Offers",
                                                  "enabled": True}).status_code == 200
    r = follow(client, r)
    assert r.status_code == 202  # on again: not an unsubscribe
    sim.unsubscribe({"email": DEMO.emails["jan"], "permission": "Offers"})
    sim.unsubscribe({"email": DEMO.emails["piet"]})  # opts out of everything
    batches, _ = drain(client, r)
    assert sorted((i["externalId"], [p["name"] for p in i["permissions"]], i["optedOut"])
                  for i in flat(batches)) == [(jan, ["Offers"], False), (piet, ["Newsletter"], True)]
    # the filtered trigger only sees Newsletter going off (and the opt-out)
    assert [(i["externalId"], [p["name"] for p in i["permissions"]], i["optedOut"])
            for i in flat(drain(client, only_newsletter)[0])] == [(piet, ["Newsletter"], True)]


def test_recent_mailings_dropdown_is_cached(make_client, trigger_settings, sim):
    cached = make_client(trigger_settings.with_(list_cache_seconds=30))
    before = feed_calls(sim, "GET /mailing")
    for _ in range(3):
        r = cached.get("/mailings", headers=KEY)
        assert r.status_code == 200
    assert feed_calls(sim, "GET /mailing") - before == 1
    value = r.json()["value"]
    assert [m["id"] for m in value] == [DEMO.mailings["offers"], DEMO.mailings["welcome"], DEMO.mailings["newsletter"]]
    assert value[0]["title"].startswith("Spring offers (") and value[0]["sentAt"].endswith("Z")


def test_a_state_whose_stored_part_was_purged_is_400_expired(client, sim):
    store = client.app_.runtime.triggers[1]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    first = start(client, ADDED)
    for i in range(70):  # more than the URL keeps: the seen set goes to the database
        sim.signup(f"p{i:02d}@example.com")
    batches, last = drain(client, first)
    assert len(flat(batches)) == 70 and "r" in state_payload(last.headers["location"])
    unsubscribed = start(client, UNSUBSCRIBED)
    assert store.purge(90, now=later) > 0  # `python -m service.db purge --days 90`, a year later
    for r in (last, unsubscribed):
        body = assert_problem(client.get(relative(r.headers["location"]), headers=KEY), 400, "TRIGGER_STATE_EXPIRED")
        assert "long pause" in body["detail"] and "Save the flow again" in body["detail"]


@pytest.mark.parametrize("path, query, event", [
    (ADDED, {}, lambda sim: sim.signup("lost@example.com")),
    (CHANGED, {"fields": "firstName"}, lambda sim: sim.signup("lost@example.com", first_name="Lost")),
    (UNSUBSCRIBED, {}, lambda sim: sim.unsubscribe({"email": DEMO.emails["jan"], "permission": "Newsletter"})),
])
def test_an_answer_lost_on_the_way_back_is_given_again(client, sim, path, query, event):
    """Power Automate polls the same Location again when an answer did not arrive: the same events come back
    (also for the triggers that keep per-contact data), and the next Location has nothing new."""
    first = start(client, path, **query)
    event(sim)
    lost = follow(client, first)
    again = follow(client, first)
    assert lost.status_code == again.status_code == 200
    assert lost.json()["value"] and lost.json() == again.json()
    assert follow(client, again).status_code == 202


# -- a feed read shared by the polls of a few seconds (issue #15) -----------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_quiet_polls_share_one_feed_read_and_a_new_event_comes_once_after_the_cache_time(make_client,
                                                                                          trigger_settings, sim):
    """TRIGGER_FEED_CACHE_SECONDS: polls that read the same window within that time share one upstream read, so
    a poll with nothing new costs no upstream call; an event that happens meanwhile is handed over by the
    first poll after the cache time - once, and only once."""
    client = make_client(trigger_settings.with_(trigger_feed_cache_seconds=5))
    clock = FakeClock()
    client.app_.runtime.feed_cache.clock = clock
    first = start(client, ADDED)
    quiet = follow(client, first)
    assert quiet.status_code == 202
    before = feed_calls(sim)
    for _ in range(3):  # same window start (nothing handed over): answered from the shared read
        quiet = follow(client, quiet)
        assert quiet.status_code == 202
    assert feed_calls(sim) == before
    sim.signup("late@example.com")
    assert follow(client, quiet).status_code == 202  # within the cache time: not seen yet
    clock.now += 5.1
    got = follow(client, quiet)
    assert got.status_code == 200 and [i["email"] for i in got.json()["value"]] == ["late@example.com"]
    assert feed_calls(sim) == before + 1
    batches, _ = drain(client, got)
    assert flat(batches) == []  # after it was handed over: never again


def test_quiet_polls_of_both_interaction_feeds_share_their_reads(make_client, trigger_settings, sim):
    """Opens and clicks are two feeds: both reads are shared, and a click that happens meanwhile comes after
    the cache time, once."""
    client = make_client(trigger_settings.with_(trigger_feed_cache_seconds=5))
    clock = FakeClock()
    client.app_.runtime.feed_cache.clock = clock
    route = "GET /mailing-interaction/<kind>"
    quiet = follow(client, start(client, INTERACTIONS))
    before = feed_calls(sim, route)
    quiet = follow(client, quiet)
    assert quiet.status_code == 202 and feed_calls(sim, route) == before
    sim.engage("clicked", {"email": DEMO.emails["jan"]})
    assert follow(client, quiet).status_code == 202
    clock.now += 5.1
    got = follow(client, quiet)
    assert got.status_code == 200 and len(got.json()["value"]) == 1
    assert flat(drain(client, got)[0]) == []
