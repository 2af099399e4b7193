"""Tags and scores through the API against the Spotler simulator (tag routes are the provider's assumed ones)."""

from __future__ import annotations

import pytest

from service.sandbox.spotler import DEMO
from tests.api.support import assert_ok, assert_problem

JAN_ID = DEMO.contacts["jan"]
PIET_ID = DEMO.contacts["piet"]
PIET = {"email": DEMO.emails["piet"]}


def test_list_tags(call, sim):
    value = assert_ok(call("GET", "/tags"))["value"]
    assert [t["name"] for t in value] == list(DEMO.tags)


@pytest.mark.parametrize("tags", ["loyal,vip", "loyal;vip", ["loyal", "vip"], ["loyal, vip", "loyal"], " loyal ,,vip "])
def test_add_tags_creates_new_tags_with_score(call, sim, tags):
    r = assert_ok(call("POST", "/contacts/tags", {"contact": PIET, "tags": tags, "score": 5}))
    assert r["tags"] == ["loyal", "vip"] and r["contact"]["externalId"] == PIET_ID
    assert sim.tags_of(PIET_ID) == {"loyal": 5, "vip": 5}
    assert "loyal" in [t["name"] for t in assert_ok(call("GET", "/tags"))["value"]]


def test_add_tag_without_score_keeps_other_tags(call, sim):
    before = sim.tags_of(JAN_ID)
    assert_ok(call("POST", "/contacts/tags", {"contact": {"externalId": JAN_ID}, "tags": "churn-risk"}))
    assert sim.tags_of(JAN_ID) == {**before, "churn-risk": None}


def test_remove_tags_removes_their_scores(call, sim):
    assert sim.tags_of(JAN_ID) == {"vip": 10, "newsletter": None}
    r = assert_ok(call("POST", "/contacts/tags/remove", {"contact": {"externalId": JAN_ID}, "tags": "vip"}))
    assert r["tags"] == ["vip"]
    assert sim.tags_of(JAN_ID) == {"newsletter": None}
    assert_ok(call("POST", "/contacts/tags/remove", {"contact": {"externalId": JAN_ID}, "tags": ["newsletter", "x"]}))
    assert sim.tags_of(JAN_ID) == {}


@pytest.mark.parametrize("mode, score, expected", [("set", 7, 7), ("increase", 5, 15), ("decrease", 4, 6)])
def test_set_score_modes(call, sim, mode, score, expected):
    r = assert_ok(call("POST", "/contacts/scores", {"contact": {"externalId": JAN_ID}, "tag": "vip", "score": score,
                                                    "mode": mode}))
    assert r["score"] == expected and r["mode"] == mode and r["tag"] == "vip"
    assert sim.tags_of(JAN_ID)["vip"] == expected


def test_set_score_default_mode_is_set(call, sim):
    r = assert_ok(call("POST", "/contacts/scores", {"contact": PIET, "tag": "vip", "score": 3}))
    assert r["mode"] == "set" and sim.tags_of(PIET_ID)["vip"] == 3


@pytest.mark.parametrize("path, body, code, field", [
    ("/contacts/tags", {"tags": ""}, "INVALID_LIST", "tags"),
    ("/contacts/tags", {"tags": " , ; "}, "INVALID_LIST", "tags"),
    ("/contacts/tags", {"tags": {"name": "vip"}}, "INVALID_LIST", "tags"),
    ("/contacts/tags", {"tags": ["x" * 256]}, "INVALID_LIST", "tags"),
    ("/contacts/tags", {"tags": [f"t{i}" for i in range(101)]}, "TOO_MANY_ITEMS", "tags"),
    ("/contacts/tags/remove", {"tags": []}, "INVALID_LIST", "tags"),
    ("/contacts/scores", {"tag": " ", "score": 1}, "TAG_REQUIRED", "tag"),
    ("/contacts/scores", {"tag": "vip", "score": -3, "mode": "increase"}, "INVALID_SCORE", "score"),
])
def test_invalid_input_is_400_naming_the_field(call, sim, path, body, code, field):
    r = assert_problem(call("POST", path, {"contact": PIET, **body}), 400, code)
    assert r["field"] == field
    assert sim.stats()["tags_added"] == sim.stats()["tags_removed"] == sim.stats()["score_changes"] == 0


def test_schema_rejects_wrong_types(call, sim):
    r = call("POST", "/contacts/scores", {"contact": PIET, "tag": "vip", "score": "abc"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    r = call("POST", "/contacts/scores", {"contact": PIET, "tag": "vip", "score": 1, "mode": "double"})
    assert r.status_code == 400


@pytest.mark.parametrize("path, body", [
    ("/contacts/tags", {"tags": "vip"}),
    ("/contacts/tags/remove", {"tags": "vip"}),
    ("/contacts/scores", {"tag": "vip", "score": 1}),
])
def test_unknown_contact_is_404(call, sim, path, body):
    assert_problem(call("POST", path, {"contact": {"email": "ghost@example.com"}, **body}), 404, "CONTACT_NOT_FOUND")


def test_replayed_score_increase_happens_once(call, sim):
    body = {"contact": {"externalId": JAN_ID}, "tag": "vip", "score": 5, "mode": "increase"}
    first = call("POST", "/contacts/scores", body, key="score-1")
    second = call("POST", "/contacts/scores", body, key="score-1")
    assert first.status_code == 200 and second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert sim.tags_of(JAN_ID)["vip"] == 15
    assert sim.stats()["score_changes"] == 1


def test_replayed_add_tag(call, sim):
    body = {"contact": PIET, "tags": "loyal"}
    first = call("POST", "/contacts/tags", body, key="tag-1")
    second = call("POST", "/contacts/tags", body, key="tag-1")
    assert second.json() == first.json() and second.headers["Idempotent-Replayed"] == "true"
    assert sim.stats()["tags_added"] == 1
