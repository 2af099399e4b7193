"""Audiences through the API against the Spotler simulator."""

from __future__ import annotations

import threading

import pytest

from service.actions.audiences import LOOKUP_THREADS, resolve_many
from service.providers.base import Contact, ContactRef, Provider
from service.providers.errors import Unavailable
from service.sandbox.spotler import DEMO
from tests.api.support import assert_ok, assert_problem

ADD_ROUTE = "POST /audience/<aid>/contact"
CUSTOMERS = DEMO.audiences["customers"]
VIP = DEMO.audiences["vip"]
JAN_ID, PIET_ID, ANNA_ID = DEMO.contacts["jan"], DEMO.contacts["piet"], DEMO.contacts["anna"]


def members(call, audience_id: str, contacts: list[dict], *, remove: bool = False, key: str | None = None):
    path = f"/audiences/{audience_id}/members" + ("/remove" if remove else "")
    return call("POST", path, {"contacts": contacts}, key=key)


def seed_contacts(sim, n: int, prefix: str = "bulk") -> list[str]:
    """n contacts straight into the simulator's state (set-up, not the subject of the test)."""
    emails = [f"{prefix}{i}@example.com" for i in range(n)]
    with sim.lock:
        for i, email in enumerate(emails):
            sim._write_contact(f"{prefix}-{i}", {"properties": {"email": email}}, purge=False, create=True)
    return emails


# -- list and create --------------------------------------------------------------------------------------

def test_list_audiences(call, sim):
    value = assert_ok(call("GET", "/audiences"))["value"]
    by_id = {a["id"]: a for a in value}
    assert set(by_id) == set(DEMO.audiences.values())
    assert by_id[CUSTOMERS]["name"] == "Customers" and by_id[CUSTOMERS]["description"] == "Everyone who bought"
    assert "description" not in by_id[VIP]


def test_create_audience_with_id_from_name_and_already_exists_is_success(call, sim):
    r = assert_ok(call("POST", "/audiences", {"name": "Spring Sále 2025!", "description": "Seasonal"}))
    assert r["audience"] == {"id": "spring-sale-2025", "name": "Spring Sále 2025!", "description": "Seasonal"}
    assert "spring-sale-2025" in [a["id"] for a in assert_ok(call("GET", "/audiences"))["value"]]
    again = assert_ok(call("POST", "/audiences", {"name": "Spring Sále 2025!"}))
    assert again["audience"]["id"] == "spring-sale-2025"
    assert sim.stats()["audiences_created"] == 1
    job = assert_ok(call("GET", f"/jobs/{r['jobId']}"))
    assert job["upstreamIds"]["audienceIds"] == ["spring-sale-2025"]


def test_create_audience_with_explicit_id_and_conflicts(call, sim):
    assert_ok(call("POST", "/audiences", {"name": "Winter", "id": "aud-winter"}))
    assert sim.audiences["aud-winter"]["name"] == "Winter"
    # the same id with another name is a real conflict, not "already exists"
    assert call("POST", "/audiences", {"name": "Summer", "id": "aud-winter"}).status_code == 409
    assert_problem(call("POST", "/audiences", {"name": "!!!"}), 400, "ID_REQUIRED")
    assert_problem(call("POST", "/audiences", {"name": "  "}), 400, "NAME_REQUIRED")


def test_create_audience_replay(call, sim):
    first = call("POST", "/audiences", {"name": "Replay me"}, key="aud-1")
    second = call("POST", "/audiences", {"name": "Replay me"}, key="aud-1")
    assert first.status_code == 200 and second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"


# -- members ----------------------------------------------------------------------------------------------

def test_add_reports_per_contact_in_input_order(call, sim):
    contacts = [
        {"email": DEMO.emails["jan"]},            # already a member of Customers
        {"email": DEMO.emails["anna"]},           # added
        {"email": "ghost@example.com"},           # unknown
        {"externalId": ANNA_ID},                  # the same contact again
        {"externalId": "no-such-contact"},        # unknown
        {"email": DEMO.emails["anna"]},           # the same reference again
    ]
    r = assert_ok(members(call, CUSTOMERS, contacts))
    assert [x["result"] for x in r["results"]] == ["already_member", "added", "not_found", "added", "not_found",
                                                   "added"]
    assert [x["index"] for x in r["results"]] == list(range(6))
    assert [x.get("duplicate", False) for x in r["results"]] == [False, False, False, True, False, True]
    assert r["results"][2] == {"index": 2, "email": "ghost@example.com", "result": "not_found"}
    assert r["results"][4] == {"index": 4, "externalId": "no-such-contact", "result": "not_found"}
    assert r["results"][1]["externalId"] == ANNA_ID
    assert (r["total"], r["added"], r["alreadyMember"], r["notFound"], r["duplicates"]) == (6, 1, 1, 2, 2)
    assert r["message"] == "1 added, 1 already a member, 2 not found, 2 duplicate entries."
    assert r["resultCode"] == "PARTIAL"
    assert sim.members_of(CUSTOMERS) == [JAN_ID, PIET_ID, ANNA_ID]
    assert sim.stats()["audience_contacts_added"] == 1


def test_remove_reports_removed_not_member_not_found(call, sim):
    r = assert_ok(members(call, CUSTOMERS, [{"externalId": JAN_ID}, {"email": DEMO.emails["anna"]},
                                            {"email": "ghost@example.com"}], remove=True))
    assert [x["result"] for x in r["results"]] == ["removed", "not_member", "not_found"]
    assert (r["removed"], r["notMember"], r["notFound"]) == (1, 1, 1)
    assert r["message"] == "1 removed, 1 not a member, 1 not found."
    assert sim.members_of(CUSTOMERS) == [PIET_ID]


def test_single_contact_input_and_all_found_is_ok(call, sim):
    r = assert_ok(call("POST", f"/audiences/{VIP}/members", {"contact": {"email": DEMO.emails["piet"]}}))
    assert r["resultCode"] == "OK" and r["results"] == [{"index": -1, "email": DEMO.emails["piet"],
                                                         "externalId": PIET_ID, "result": "added"}]
    assert PIET_ID in sim.members_of(VIP)


def test_none_found_does_not_call_the_platform(call, sim):
    r = assert_ok(members(call, VIP, [{"email": "a@nowhere.test"}, {"email": "b@nowhere.test"}]))
    assert r["resultCode"] == "NONE_FOUND" and r["notFound"] == 2
    requests = sim.stats()["requests"]
    assert requests["GET /contact/search"] == 2 and ADD_ROUTE not in requests


def test_more_than_10000_contacts_is_400(call, sim):
    r = assert_problem(members(call, CUSTOMERS, [{"externalId": f"c{i}"} for i in range(10_001)]),
                       400, "TOO_MANY_CONTACTS")
    assert r["field"] == "contacts" and "10,000" in r["detail"]
    assert not any("/contact" in route for route in sim.stats()["requests"])


@pytest.mark.parametrize("body, field", [
    ({"contacts": [{"email": DEMO.emails["jan"]}, {}]}, "contacts[1]"),
    ({"contacts": [{"email": "not-an-email"}]}, "contacts[0].email"),
    ({"contacts": []}, "contacts"),
    ({}, "contacts"),
])
def test_invalid_member_input_is_400_naming_the_entry(call, sim, body, field):
    r = call("POST", f"/audiences/{CUSTOMERS}/members", body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


def test_unknown_audience_is_404(call, sim):
    assert_problem(members(call, "aud-nope", [{"externalId": JAN_ID}]), 404, "AUDIENCE_NOT_FOUND")


def test_audience_created_elsewhere_is_found_despite_the_cache(make_client, settings, spotler_sim, sim):
    from tests.conftest import API_KEY

    api = make_client(settings.with_(sandbox_upstream_url=spotler_sim.url, list_cache_seconds=300))
    headers = {"X-API-Key": API_KEY}
    assert api.get("/audiences", headers=headers).status_code == 200
    with sim.lock:
        sim.audiences["aud-new"] = {**sim.audiences[VIP], "externalId": "aud-new", "name": "New", "members": []}
    r = api.post("/audiences/aud-new/members", headers=headers, json={"contacts": [{"externalId": JAN_ID}]})
    assert r.status_code == 200, r.text
    assert sim.members_of("aud-new") == [JAN_ID]


@pytest.mark.parametrize("request_", [
    ("GET", "/audiences", None),
    ("POST", "/audiences", {"name": "Tiered"}),
    ("POST", f"/audiences/{CUSTOMERS}/members", {"contacts": [{"externalId": ANNA_ID}]}),
    ("POST", f"/audiences/{CUSTOMERS}/members/remove", {"contacts": [{"externalId": JAN_ID}]}),
])
def test_product_tier_refusal_is_403_naming_the_products(call, sim, request_):
    sim.tier = "basic"
    method, path, body = request_
    r = assert_problem(call(method, path, body), 403, "AUDIENCES_NOT_IN_PRODUCT")
    assert "Automation" in r["detail"] and "eCommerce" in r["detail"]
    assert sim.members_of(CUSTOMERS) == [JAN_ID, PIET_ID]


def test_replay_with_the_same_key_adds_once(call, sim):
    contacts = [{"externalId": ANNA_ID}, {"email": "ghost@example.com"}]
    first = members(call, VIP, contacts, key="members-1")
    second = members(call, VIP, contacts, key="members-1")
    assert first.status_code == 200 and second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert sim.stats()["requests"][ADD_ROUTE] == 1


def test_hundreds_of_contacts_resolved_in_input_order(call, sim):
    """Many look-ups run on the bounded pool; the answer still follows the input order exactly.
    (Timing for 3,000 and 10,000 contacts: bench/audience_members.py.)"""
    emails = seed_contacts(sim, 300)
    contacts = [{"email": e} if i % 2 else {"externalId": f"bulk-{i}"} for i, e in enumerate(emails)]
    contacts.insert(123, {"email": "missing@example.com"})
    r = assert_ok(members(call, CUSTOMERS, contacts))
    assert (r["total"], r["added"], r["notFound"]) == (301, 300, 1)
    assert [x["index"] for x in r["results"]] == list(range(301))
    assert r["results"][123] == {"index": 123, "email": "missing@example.com", "result": "not_found"}
    added = [x for x in r["results"] if x["result"] == "added"]
    assert [x["externalId"] for x in added] == [f"bulk-{i}" for i in range(300)]
    assert sim.members_of(CUSTOMERS) == [JAN_ID, PIET_ID] + [f"bulk-{i}" for i in range(300)]


# -- resolution on the bounded pool (action level: the point is concurrency, not HTTP) --------------------

class _CountingProvider(Provider):
    name = "counting"

    def __init__(self, missing: set[str], fail: set[str] | None = None) -> None:
        self.missing, self.fail = missing, fail or set()
        self.lock = threading.Lock()
        self.active = self.peak = self.calls = 0
        self.barrier = threading.Barrier(LOOKUP_THREADS, timeout=10)

    def find_contact(self, ref):
        with self.lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
        try:
            if int(ref.external_id) < LOOKUP_THREADS:
                self.barrier.wait()  # the first lookups must all be in flight at the same time
            if ref.external_id in self.fail:
                raise Unavailable("platform down")
            return None if ref.external_id in self.missing else Contact(external_id=ref.external_id)
        finally:
            with self.lock:
                self.active -= 1


def test_lookups_run_in_parallel_on_a_bounded_pool_and_keep_order():
    provider = _CountingProvider(missing={"13", "27"})
    refs = [ContactRef(external_id=str(i)) for i in range(60)]
    found = resolve_many(provider, refs)
    assert provider.peak == LOOKUP_THREADS and provider.calls == 60
    assert [c.external_id if c else None for c in found] == [None if i in (13, 27) else str(i) for i in range(60)]


def test_a_failing_lookup_fails_the_call():
    provider = _CountingProvider(missing=set(), fail={"30"})
    with pytest.raises(Unavailable):
        resolve_many(provider, [ContactRef(external_id=str(i)) for i in range(60)])


def test_bulk_lookup_of_the_provider_is_preferred():
    class Bulk(_CountingProvider):
        def find_contacts(self, refs):
            return [Contact(external_id=r.external_id) for r in refs]

    provider = Bulk(missing=set())
    found = resolve_many(provider, [ContactRef(external_id=str(i)) for i in range(20)])
    assert [c.external_id for c in found] == [str(i) for i in range(20)] and provider.calls == 0
