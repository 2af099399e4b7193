"""Permissions through the API against the Spotler simulator."""

from __future__ import annotations

import pytest

from service.sandbox.spotler import DEMO
from tests.api.support import assert_ok, assert_problem

PIET = {"email": DEMO.emails["piet"]}
BITS = {name: str(bit) for name, bit in DEMO.permissions.items()}


def permission_state(call, **ref) -> dict[str, bool]:
    """{bit: enabled} as GetContact shows it (Spotler's [{bit, enabled, description}])."""
    fields = assert_ok(call("GET", "/contacts", **ref))["fields"]
    return {str(e["bit"]): e["enabled"] for e in fields.get("permissions", [])}


def test_list_permissions(call, sim):
    value = assert_ok(call("GET", "/permissions"))["value"]
    assert value == [{"name": name, "value": bit} for name, bit in BITS.items()]


@pytest.mark.parametrize("permissions", ["Events", "events", ["3"], "3", ["Events"]])
def test_subscribe_by_name_or_bit_leaves_others(call, sim, permissions):
    before = permission_state(call, **PIET)
    r = assert_ok(call("POST", "/contacts/permissions", {"contact": PIET, "permissions": permissions}))
    assert r["changed"] == [{"name": "Events", "value": BITS["Events"], "enabled": True}]
    after = permission_state(call, **PIET)
    assert after[BITS["Events"]] is True
    assert {k: v for k, v in after.items() if k != BITS["Events"]} == before
    assert {p["value"]: p["enabled"] for p in r["permissions"]} == {**{b: False for b in BITS.values()}, **after}


def test_unsubscribe_several_keeps_the_rest(call, sim):
    jan = {"externalId": DEMO.contacts["jan"]}
    assert permission_state(call, **jan) == {BITS["Newsletter"]: True, BITS["Offers"]: True}
    r = assert_ok(call("POST", "/contacts/permissions", {"contact": jan, "permissions": "Offers;Events",
                                                         "enabled": False}))
    assert {c["name"]: c["enabled"] for c in r["changed"]} == {"Offers": False, "Events": False}
    after = permission_state(call, **jan)
    assert after[BITS["Newsletter"]] is True
    assert after[BITS["Offers"]] is False
    assert after.get(BITS["Events"], False) is False
    assert "unsubscribed" in r["message"]


def test_unknown_permission_is_400_listing_the_options(call, sim):
    body = assert_problem(call("POST", "/contacts/permissions", {"contact": PIET, "permissions": "Newsletter;Sms"}),
                          400, "UNKNOWN_PERMISSION")
    assert body["field"] == "permissions" and body["unknown"] == ["Sms"]
    assert {o["name"] for o in body["options"]} == set(BITS)
    assert sim.stats()["contacts_updated"] == 0


@pytest.mark.parametrize("permissions", ["", " ; ", [], [{"name": "Events"}], True])
def test_malformed_permissions_are_400(call, sim, permissions):
    r = call("POST", "/contacts/permissions", {"contact": PIET, "permissions": permissions})
    body = assert_problem(r, 400, r.json()["code"])
    assert body["code"] in ("INVALID_LIST", "UNKNOWN_PERMISSION")
    assert body["field"] == "permissions"


def test_unknown_contact_is_404(call, sim):
    assert_problem(call("POST", "/contacts/permissions", {"contact": {"email": "ghost@example.com"},
                                                          "permissions": "Events"}), 404, "CONTACT_NOT_FOUND")


def test_replay_with_the_same_key(call, sim):
    body = {"contact": PIET, "permissions": ["Events"], "enabled": True}
    first = call("POST", "/contacts/permissions", body, key="perm-1")
    second = call("POST", "/contacts/permissions", body, key="perm-1")
    assert first.status_code == 200 and second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert sim.stats()["contacts_updated"] == 1
