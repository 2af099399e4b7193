"""Hosted mode's fairness through the API (issue 22, items 1 and 5): refused credentials from one client are
throttled before any platform call (and a throttled client learns nothing, while makers already connected go on),
and each tenant's budget of calls is its own - counted on the real Redis by two instances of the app."""

from __future__ import annotations

import uuid

from service.actions.tenancy import check_connection
from service.sandbox.launch import SANDBOX_ACCOUNTS
from tests.actions import test_budgets
from tests.api import test_hosted
from tests.api.support import assert_ok, assert_problem
from tests.api.test_hosted import PIGGY, SHOP_A, SHOP_B

hosted_settings = test_hosted.hosted_settings  # the fixtures: the hosted app's settings, the test Redis
redis_url = test_budgets.redis_url  # (skipped locally when Redis is absent, a failure in CI)


def _auth_failures(spotler_sim, index: int) -> int:
    return spotler_sim.accounts[SANDBOX_ACCOUNTS["spotler"][index]["name"]].stats()["auth_failures"]


def test_refused_platform_credentials_are_throttled_before_the_platform_is_asked(make_client, hosted_settings,
                                                                                 spotler_sim):
    api = make_client(hosted_settings.with_(refused_credentials_per_minute=2))
    assert api.get("/automations", headers=SHOP_B).status_code == 200  # a maker connected before the attack
    for attempt in ("guess-1", "guess-2"):
        assert_problem(api.get("/automations", headers={**SHOP_A, "X-Platform-Secret": attempt}), 401,
                       "PLATFORM_CREDENTIALS_REFUSED")
    asked = _auth_failures(spotler_sim, 0)
    throttled = api.get("/automations", headers={**SHOP_A, "X-Platform-Secret": "guess-3"})
    body = assert_problem(throttled, 429, "TOO_MANY_REFUSED_CREDENTIALS")
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60 and "guess" not in str(body)
    assert _auth_failures(spotler_sim, 0) == asked  # the platform was not asked: no oracle
    # the right credentials, never used from here before, are throttled too (else the guess that hits is told)
    assert_problem(api.get("/automations", headers=SHOP_A), 429, "TOO_MANY_REFUSED_CREDENTIALS")
    # the maker connected before goes on
    assert api.get("/automations", headers=SHOP_B).status_code == 200


def test_refused_publisher_keys_are_throttled_and_the_right_key_in_use_is_not(make_client, hosted_settings):
    key = "publisher-key-" + "0" * 16
    api = make_client(hosted_settings.with_(api_keys=(key,), refused_credentials_per_minute=2))
    assert api.get("/automations", headers={**SHOP_A, "X-API-Key": key}).status_code == 200
    assert [api.get("/automations", headers={**SHOP_A, "X-API-Key": f"wrong-{i}-" + key}).status_code
            for i in range(2)] == [401, 401]
    answer = api.get("/automations", headers={**SHOP_A, "X-API-Key": "wrong-3-" + key})
    assert_problem(answer, 429, "TOO_MANY_REFUSED_CREDENTIALS")
    assert api.get("/automations", headers={**SHOP_A, "X-API-Key": key}).status_code == 200


def test_each_tenant_has_its_own_budget_across_two_instances_on_redis(make_client, hosted_settings, redis_url):
    shared = hosted_settings.with_(redis_url=redis_url, redis_key_prefix="test-" + uuid.uuid4().hex[:12],
                                   tenant_calls_per_minute=3)
    first, second = make_client(shared), make_client(shared)  # two instances of the service, one Redis
    assert first.app_.runtime.budgets.shared
    for api in (first, second, first):
        assert_ok(api.get("/automations", headers=SHOP_A))
    over = second.get("/automations", headers=SHOP_A)
    body = assert_problem(over, 429, "TENANT_BUDGET_EXCEEDED")
    assert 1 <= int(over.headers["Retry-After"]) <= 60 and "60 seconds" in body["detail"]
    # other tenants, of the same platform and of another, are not slowed down
    assert second.get("/automations", headers=SHOP_B).status_code == 200
    assert first.get("/connection", headers=PIGGY).status_code == 200


def test_a_tenants_concurrent_calls_are_bounded_and_given_back(make_client, hosted_settings):
    api = make_client(hosted_settings.with_(tenant_max_concurrent=1))
    budgets = api.app_.runtime.budgets.tenants
    tenant = api.app_.runtime.hosted.tenant(check_connection(SHOP_A["X-Platform"], SHOP_A["X-Platform-Key"],
                                                             SHOP_A["X-Platform-Secret"]))
    with budgets.admit(tenant):  # a call of the tenant is running (as a slow one would)
        held = api.get("/automations", headers=SHOP_A)
        assert_problem(held, 429, "TENANT_BUDGET_EXCEEDED")
        assert api.get("/automations", headers=SHOP_B).status_code == 200
    for _ in range(3):  # every request gave its slot back, also the refused ones
        assert api.get("/automations", headers=SHOP_A).status_code == 200
