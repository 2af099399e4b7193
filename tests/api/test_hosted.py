"""Hosted mode (TENANCY=hosted, issue 22) through the API: the connection's headers, refused credentials, and the
isolation of tenants - two accounts of one platform (the Spotler simulator's "Demo shop" and "Second shop") and
accounts of different platforms - on every stateful surface, on SQLite and PostgreSQL. The simulators run on
loopback sockets with several demo accounts each (service.sandbox.accounts) and the real provider clients talk
to them."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from service.sandbox.launch import SANDBOX_ACCOUNTS
from tests.api.support import assert_ok, assert_problem


def _headers(platform: str, index: int) -> dict[str, str]:
    entry = SANDBOX_ACCOUNTS[platform][index]
    if platform == "spotler":
        return {"X-Platform": "spotler", "X-Platform-Key": entry["consumer_key"],
                "X-Platform-Secret": entry["consumer_secret"]}
    return {"X-Platform": platform, "X-Platform-Key": entry["token" if platform == "piggy" else "api_key"]}


SHOP_A, SHOP_B = _headers("spotler", 0), _headers("spotler", 1)
PIGGY = _headers("piggy", 0)
SPOKI = _headers("spoki", 0)


def hosted(settings, spotler_sim, piggy_sim, spoki_sim, **changes):
    return settings.with_(tenancy="hosted", api_keys=(), upstream_max_retries=0, sandbox_upstream_urls=(
        f"spotler={spotler_sim.url}", f"piggy={piggy_sim.url}", f"spoki={spoki_sim.url}"), **changes)


@pytest.fixture
def hosted_settings(settings, spotler_sim, piggy_sim, spoki_sim, sim):
    for running in (spotler_sim, piggy_sim, spoki_sim):
        for account in running.accounts.values():
            account.reset()
    return hosted(settings, spotler_sim, piggy_sim, spoki_sim)


@pytest.fixture
def api(make_client, hosted_settings):
    return make_client(hosted_settings)


@pytest.fixture
def db_api(make_client, hosted_settings, empty_db_url):
    """The hosted app on each database backend (migrated by the service itself)."""
    return make_client(hosted_settings.with_(database_url=empty_db_url))


def relative(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + "?" + parts.query


# -- the connection's headers ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "status", "parameter"), [
    ({}, 401, "Platform"),
    ({"X-Platform": "mailchimp", "X-Platform-Key": "k"}, 400, "Platform"),
    ({"X-Platform": "spotler"}, 401, "Platform key"),
    ({"X-Platform": "spotler", "X-Platform-Key": SHOP_A["X-Platform-Key"]}, 401, "Platform secret"),
    ({**SHOP_A, "X-Platform-Key": "two words"}, 400, "Platform key"),
    ({**SHOP_A, "X-Platform-Secret": "x" * 513}, 400, "Platform secret"),
    ({"X-Platform": "piggy"}, 401, "Platform key"),
    ({"X-Platform": "spoki", "X-Platform-Key": "bad\tkey"}, 400, "Platform key"),
])
def test_missing_or_malformed_connection_is_a_problem_naming_the_parameter(api, headers, status, parameter):
    code = "PLATFORM_CREDENTIALS_MISSING" if status == 401 else "PLATFORM_CREDENTIALS_INVALID"
    body = assert_problem(api.get("/automations", headers=headers), status, code)
    assert body["parameter"] == parameter and f"'{parameter}'" in body["detail"]
    assert "X-Platform" not in body["detail"]  # the maker's words: the connection's parameter


def test_one_deployment_serves_every_platform_and_ignores_a_secret_the_platform_has_none_of(api):
    assert assert_ok(api.get("/connection", headers=SHOP_A))["provider"] == "spotler"
    assert assert_ok(api.get("/connection", headers={**PIGGY, "X-Platform-Secret": "ignored"}))["provider"] == "piggy"
    assert assert_ok(api.get("/connection", headers=SPOKI))["provider"] == "spoki"
    # what a platform lacks is still said up front, per platform
    assert_problem(api.get("/tags", headers=PIGGY), 400, "NOT_SUPPORTED_BY_PLATFORM")
    assert api.get("/tags", headers=SHOP_A).status_code == 200


def test_refused_credentials_are_a_401_naming_the_platform_and_never_reuse_the_right_client(api, spotler_sim):
    right = api.get("/automations", headers=SHOP_A)
    assert right.status_code == 200
    wrong_secret = {**SHOP_A, "X-Platform-Secret": "not-the-secret"}
    for path in ("/automations", "/connection"):
        body = assert_problem(api.get(path, headers=wrong_secret), 401, "PLATFORM_CREDENTIALS_REFUSED")
        assert body["platform"] == "spotler" and "Spotler" in body["detail"]
        assert "not-the-secret" not in str(body)
    # a write: recorded as failed with the same 401 (never a 5xx, never the secret)
    key = {"Idempotency-Key": "fixed-after-the-refusal"}
    write = api.put("/contacts", json={"contact": {"email": "x@example.com"}}, headers={**wrong_secret, **key})
    assert_problem(write, 401, "PLATFORM_CREDENTIALS_REFUSED")
    # the maker fixes the secret: the same call runs (nothing was done), it does not replay the refusal
    fixed = api.put("/contacts", json={"contact": {"email": "x@example.com"}}, headers={**SHOP_A, **key})
    assert fixed.status_code == 200 and "Idempotent-Replayed" not in fixed.headers
    assert assert_problem(api.get("/connection", headers={**PIGGY, "X-Platform-Key": "nope"}), 401,
                          "PLATFORM_CREDENTIALS_REFUSED")["platform"] == "piggy"
    assert api.get("/automations", headers=SHOP_A).json() == right.json()  # the right account is unharmed


def test_publisher_key_is_required_when_set(make_client, hosted_settings):
    api = make_client(hosted_settings.with_(api_keys=("publisher-key-0123456789",)))
    assert api.get("/automations", headers=SHOP_A).status_code == 401
    assert api.get("/automations", headers={**SHOP_A, "X-API-Key": "publisher-key-0123456789"}).status_code == 200


# -- isolation: dropdowns and caches ----------------------------------------------------------------------

def test_dropdowns_are_the_tenants_own_also_inside_the_cache_ttl(make_client, hosted_settings):
    api = make_client(hosted_settings.with_(list_cache_seconds=300))
    names = {}
    for label, headers in (("a", SHOP_A), ("b", SHOP_B), ("a2", SHOP_A), ("b2", SHOP_B)):
        names[label] = sorted(a["name"] for a in assert_ok(api.get("/automations", headers=headers))["value"])
    assert names["a"] == names["a2"] and names["b"] == names["b2"]
    assert names["a"] and names["b"] and not set(names["a"]) & set(names["b"])
    tags_a = {t["name"] for t in assert_ok(api.get("/tags", headers=SHOP_A))["value"]}
    tags_b = {t["name"] for t in assert_ok(api.get("/tags", headers=SHOP_B))["value"]}
    assert tags_a != tags_b


# -- isolation: jobs and idempotency keys ------------------------------------------------------------------

def test_jobs_are_the_tenants_own(db_api):
    api = db_api
    job_a = assert_ok(api.put("/contacts", json={"contact": {"email": "only.a@example.com"}},
                              headers=SHOP_A))["jobId"]
    job_p = assert_ok(api.put("/contacts", json={"contact": {"email": "only.p@example.com"}},
                              headers=PIGGY))["jobId"]
    assert api.get(f"/jobs/{job_a}", headers=SHOP_A).status_code == 200
    for other in (SHOP_B, PIGGY, SPOKI):
        assert_problem(api.get(f"/jobs/{job_a}", headers=other), 404, "JOB_NOT_FOUND")
        assert_problem(api.get(f"/jobs/{job_a}/result", headers=other), 404, "JOB_NOT_FOUND")
    listed = {
        "a": [j["jobId"] for j in api.get("/jobs", headers=SHOP_A).json()["value"]],
        "b": [j["jobId"] for j in api.get("/jobs", headers=SHOP_B).json()["value"]],
        "p": [j["jobId"] for j in api.get("/jobs", headers=PIGGY).json()["value"]],
    }
    assert listed == {"a": [job_a], "b": [], "p": [job_p]}


def test_same_idempotency_key_and_body_from_two_tenants_are_two_jobs_and_two_side_effects(db_api, spotler_sim):
    api = db_api
    body = {"contact": {"email": "twice@example.com"}, "fields": {"city": "Delft"}}
    a, b = (spotler_sim.accounts[SANDBOX_ACCOUNTS["spotler"][i]["name"]] for i in (0, 1))
    before = (a.stats()["contacts_created"], b.stats()["contacts_created"])
    key = {"Idempotency-Key": "same-key-for-both"}
    first = assert_ok(api.put("/contacts", json=body, headers={**SHOP_A, **key}))
    second = assert_ok(api.put("/contacts", json=body, headers={**SHOP_B, **key}))
    assert first["jobId"] != second["jobId"]
    assert first["contact"]["created"] and second["contact"]["created"]
    assert (a.stats()["contacts_created"], b.stats()["contacts_created"]) == (before[0] + 1, before[1] + 1)
    replay = api.put("/contacts", json=body, headers={**SHOP_B, **key})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json()["jobId"] == second["jobId"]
    assert b.stats()["contacts_created"] == before[1] + 1


# -- isolation: polling triggers ----------------------------------------------------------------------------

def test_a_trigger_location_with_another_tenants_connection_reveals_nothing(db_api):
    api = db_api
    first = api.get("/triggers/contacts/added", headers=SHOP_A)
    assert first.status_code == 202
    location = relative(first.headers["location"])
    body = assert_problem(api.get(location, headers=SHOP_B), 400, "TRIGGER_STATE_FOREIGN")
    assert set(body) <= {"type", "title", "status", "detail", "code", "field", "requestId"}
    # the same account key with a wrong secret: the platform's refusal, nothing of the state's feed
    assert_problem(api.get(location, headers={**SHOP_A, "X-Platform-Secret": "wrong"}), 401,
                   "PLATFORM_CREDENTIALS_REFUSED")
    assert api.get(location, headers=SHOP_A).status_code == 202


def test_a_poll_without_the_connections_headers_is_the_states_tenants(db_api, spotler_sim):
    api = db_api
    first = api.get("/triggers/contacts/added", headers=SHOP_B)
    assert first.status_code == 202
    # a contact added in account B after the trigger started, none in A
    assert_ok(api.put("/contacts", json={"contact": {"email": "new.in.b@example.com"}}, headers=SHOP_B))
    assert_ok(api.put("/contacts", json={"contact": {"email": "new.in.a@example.com"}}, headers=SHOP_A))
    polled = api.get(relative(first.headers["location"]))  # no platform headers at all
    assert polled.status_code == 200, polled.text
    emails = [item.get("email") for item in polled.json()["value"]]
    assert emails == ["new.in.b@example.com"]


def test_a_poll_without_headers_of_a_tenant_with_no_stored_credentials_is_401(make_client, hosted_settings,
                                                                                 spotler_sim, tmp_path):
    one = make_client(hosted_settings)
    first = one.get("/triggers/contacts/added", headers=SHOP_A)
    other_db = make_client(hosted_settings.with_(database_url=f"sqlite:///{tmp_path}/other.db"))
    assert_problem(other_db.get(relative(first.headers["location"])), 401, "PLATFORM_CREDENTIALS_MISSING")
    assert_problem(one.get("/triggers/contacts/added?state=forged"), 400, "TRIGGER_STATE_INVALID")


def test_trigger_feed_caches_are_the_tenants_own_inside_their_ttl(make_client, hosted_settings):
    api = make_client(hosted_settings.with_(trigger_feed_cache_seconds=60, list_cache_seconds=60))
    started = {name: api.get("/triggers/contacts/added", headers=h) for name, h in (("a", SHOP_A), ("b", SHOP_B))}
    assert {r.status_code for r in started.values()} == {202}
    for name, h in (("a", SHOP_A), ("b", SHOP_B)):
        assert_ok(api.put("/contacts", json={"contact": {"email": f"feed.{name}@example.com"}}, headers=h))
    got = {}
    for name, h in (("a", SHOP_A), ("b", SHOP_B)):
        r = api.get(relative(started[name].headers["location"]), headers=h)
        got[name] = [item.get("email") for item in (r.json()["value"] if r.status_code == 200 else [])]
    assert got == {"a": ["feed.a@example.com"], "b": ["feed.b@example.com"]}
