"""Per-tenant budgets and the refused-credentials throttle (service/actions/budgets.py), in memory and on the real
Redis at 127.0.0.1:6379 (``TEST_REDIS_URL``): skipped locally when it is absent, FAILS in CI (``CI=true``), as the
PostgreSQL tests do. Each Redis test uses a key prefix of its own (deleted afterwards). The cross-process tests
drive a child process over pipes: it answers each command once it is done."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from service.actions.budgets import RefusedCredentials, TenantBudgets, open_store
from service.actions.problems import to_problem
from service.config import ConfigError, Settings
from service.errors import CredentialsThrottled, TenantBudgetExceeded
from service.runtime import Runtime
from tests.databases import unavailable

ROOT = Path(__file__).resolve().parents[2]
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
TENANT = "t-" + "a" * 62  # the shape of a keyed hash
OTHER = "t-" + "b" * 62


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis for tests not reachable at {TEST_REDIS_URL}: {exc}")
    finally:
        client.close()
    return TEST_REDIS_URL


@pytest.fixture
def prefix(redis_url):
    import redis

    prefix = "test-budgets-" + uuid.uuid4().hex[:12]
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + ":*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def store(request):
    """Each budget test runs on both stores."""
    if request.param == "memory":
        s = open_store()
    else:
        s = open_store(request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("prefix"))
    yield s
    s.close()


def _refusal(cm) -> TenantBudgetExceeded:
    with pytest.raises(TenantBudgetExceeded) as info:
        with cm:
            pass
    return info.value


def test_concurrency_budget_refuses_one_more_and_frees_on_exit(store):
    budgets = TenantBudgets(store, max_concurrent=2, per_minute=0)
    with contextlib.ExitStack() as stack:
        stack.enter_context(budgets.admit(TENANT))
        stack.enter_context(budgets.admit(TENANT))
        refused = _refusal(budgets.admit(TENANT))
        assert refused.budget == "concurrent" and 1 <= refused.retry_after <= 60
        with budgets.admit(OTHER):  # another tenant is not starved
            pass
    with pytest.raises(RuntimeError):  # a call that fails gives its slot back too
        with budgets.admit(TENANT):
            raise RuntimeError("boom")
    with budgets.admit(TENANT), budgets.admit(TENANT):
        pass


def test_rate_budget_moving_window_and_refused_calls_take_nothing(store):
    budgets = TenantBudgets(store, max_concurrent=1, per_minute=3)
    with budgets.admit(TENANT):
        _refusal(budgets.admit(TENANT))  # refused for concurrency: not counted as a call
    for _ in range(2):
        with budgets.admit(TENANT):
            pass
    refused = _refusal(budgets.admit(TENANT))
    assert refused.budget == "per_minute" and 1 <= refused.retry_after <= 60
    with budgets.admit(TENANT[::-1]):  # the budget is per tenant
        pass
    with budgets.admit(OTHER):  # a refusal for the rate gave its concurrent slot back (max_concurrent=1)
        pass


def test_a_window_ends_after_its_retry_after(store):
    budgets = TenantBudgets(store, max_concurrent=0, per_minute=2, window_seconds=1)
    for _ in range(2):
        with budgets.admit(TENANT):
            pass
    wait = _refusal(budgets.admit(TENANT)).retry_after
    assert wait == 1  # >= 1 and <= the window
    time.sleep(wait + 0.05)  # the window's own time, as a flow honouring Retry-After waits
    with budgets.admit(TENANT):
        pass


def test_refused_credentials_throttle_per_client_for_the_window(store):
    throttle = RefusedCredentials(store, per_minute=3, window_seconds=1)
    for _ in range(3):
        throttle.check("203.0.113.7")
        throttle.refused("203.0.113.7")
    with pytest.raises(CredentialsThrottled) as info:
        throttle.check("203.0.113.7")
    assert 1 <= info.value.retry_after <= 1
    throttle.check("203.0.113.8")  # another client
    time.sleep(info.value.retry_after + 0.05)
    throttle.check("203.0.113.7")  # the window is over


def test_budgets_turned_off_with_zero(store):
    budgets = TenantBudgets(store, max_concurrent=0, per_minute=0)
    throttle = RefusedCredentials(store, per_minute=0)
    with budgets.admit(TENANT), budgets.admit(TENANT):
        throttle.refused("c")
        throttle.check("c")


def test_refusals_are_429_problems_naming_the_budget_not_the_tenant():
    store = open_store()
    budgets = TenantBudgets(store, max_concurrent=1, per_minute=1)
    with budgets.admit(TENANT):
        concurrent = to_problem(_refusal(budgets.admit(TENANT)))
    per_minute = to_problem(_refusal(budgets.admit(TENANT)))
    throttle = RefusedCredentials(store, per_minute=1)
    throttle.refused("198.51.100.1")
    with pytest.raises(CredentialsThrottled) as info:
        throttle.check("198.51.100.1")
    throttled = to_problem(info.value)
    for problem, word in ((concurrent, "at once"), (per_minute, "60 seconds"), (throttled, "refused credentials")):
        assert problem.status == 429 and problem.transient
        assert 1 <= int(problem.headers["Retry-After"]) <= 60
        assert word in problem.detail and f"{problem.headers['Retry-After']} seconds" in problem.detail
        assert TENANT not in problem.detail and "198.51.100.1" not in problem.detail
    assert concurrent.code == per_minute.code == "TENANT_BUDGET_EXCEEDED"
    assert throttled.code == "TOO_MANY_REFUSED_CREDENTIALS"
    store.close()


def test_redis_down_fails_open_with_one_warning(caplog):
    store = open_store("redis://127.0.0.1:1/0", prefix="down")  # nothing listens on port 1
    budgets = TenantBudgets(store, max_concurrent=1, per_minute=1)
    throttle = RefusedCredentials(store, per_minute=1)
    with caplog.at_level(logging.WARNING, logger="service.actions.budgets"):
        with budgets.admit(TENANT), budgets.admit(TENANT):  # over both budgets, yet let through
            throttle.refused("c")
            throttle.refused("c")
            throttle.check("c")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "fail open" in warnings[0].getMessage()
    store.close()


def test_runtime_builds_budgets_from_settings(redis_url, prefix):
    memory = Runtime(Settings())
    assert memory.budgets is memory.budgets and not memory.budgets.shared
    memory.close()
    shared = Runtime(Settings.from_env({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix,
                                        "TENANT_MAX_CONCURRENT": "1"}))
    assert shared.budgets.shared
    with shared.budgets.tenants.admit(TENANT):
        _refusal(shared.budgets.tenants.admit(TENANT))
    shared.close()
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": "http://redis:6379"})


# -- across processes (Redis) ------------------------------------------------------------------------------------

CHILD = r"""
import sys
import threading
from service.actions.budgets import TenantBudgets, open_store
from service.errors import TenantBudgetExceeded

url, prefix, lease, concurrent, rate = sys.argv[1:6]
budgets = TenantBudgets(open_store(url, prefix=prefix, lease_seconds=float(lease)),
                        max_concurrent=int(concurrent), per_minute=int(rate))
held = []
print("ready", flush=True)
for line in sys.stdin:
    command, *args = line.split()
    if command == "admit":
        cm = budgets.admit(args[0])
        try:
            cm.__enter__()
        except TenantBudgetExceeded as exc:
            print("refused", exc.budget, exc.retry_after, flush=True)
        else:
            held.append(cm)
            print("ok", flush=True)
    elif command == "release":
        held.pop().__exit__(None, None, None)
        print("ok", flush=True)
"""


class Child:
    """Another process with its own budgets on the same Redis; each command's answer comes back on a pipe."""

    def __init__(self, *args) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, *map(str, args)], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.proc.stdout.readline().strip() == "ready"

    def __call__(self, *command: str) -> list[str]:
        self.proc.stdin.write(" ".join(command) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def child_factory():
    children = []

    def make(*args) -> Child:
        children.append(Child(*args))
        return children[-1]

    yield make
    for c in children:
        c.close()


def test_two_processes_share_one_budget(redis_url, prefix, child_factory):
    child = child_factory(redis_url, prefix, 30, 2, 5)
    store = open_store(redis_url, prefix=prefix)
    budgets = TenantBudgets(store, max_concurrent=2, per_minute=5)
    assert child("admit", TENANT) == ["ok"]
    with budgets.admit(TENANT):  # two running: one in each process
        assert child("admit", TENANT)[:2] == ["refused", "concurrent"]
        _refusal(budgets.admit(TENANT))
        assert child("admit", OTHER) == ["ok"]  # other tenants unaffected
    assert child("admit", TENANT) == ["ok"]  # the slot this process gave back
    for _ in range(3):
        assert child("release") == ["ok"]
    for _ in range(2):  # calls so far: the child's 2 + this process's 1 (+ 1 of OTHER): 2 more make 5
        with budgets.admit(TENANT):
            pass
    refused = child("admit", TENANT)
    assert refused[:2] == ["refused", "per_minute"] and 1 <= int(refused[2]) <= 60
    store.close()


def test_a_killed_process_slot_is_freed_after_its_lease(redis_url, prefix, child_factory):
    import redis

    lease = 1.0
    child = child_factory(redis_url, prefix, lease, 1, 0)
    store = open_store(redis_url, prefix=prefix, lease_seconds=lease)
    budgets = TenantBudgets(store, max_concurrent=1, per_minute=0)
    raw = redis.Redis.from_url(redis_url)
    assert child("admit", TENANT) == ["ok"]
    (slots,) = raw.keys(prefix + ":slots:*")
    ((_, first_expiry),) = raw.zrange(slots, 0, 0, withscores=True)

    def redis_ms() -> float:
        seconds, micros = raw.time()
        return seconds * 1000 + micros / 1000

    while redis_ms() <= first_expiry + 100:  # past the first lease: the live child renewed it
        time.sleep(0.05)
    assert _refusal(budgets.admit(TENANT)).budget == "concurrent"
    child.proc.kill()
    child.proc.wait(timeout=10)
    refused = _refusal(budgets.admit(TENANT))  # still held until the lease runs out
    assert 1 <= refused.retry_after <= lease
    time.sleep(refused.retry_after + 0.05)
    with budgets.admit(TENANT):  # freed, without the dead process
        pass
    raw.close()
    store.close()


def test_on_redis_both_budgets_are_two_keyed_sets_taken_together(redis_url, prefix):
    """One script takes the lease and the window's hit, or neither: the keys name a keyed hash (never the
    tenant), share one hash tag (one Redis Cluster slot) and expire by themselves."""
    import redis

    store = open_store(redis_url, prefix=prefix, hash_key=b"k" * 32)
    budgets = TenantBudgets(store, max_concurrent=1, per_minute=2)
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    with budgets.admit(TENANT):
        assert _refusal(budgets.admit(TENANT)).budget == "concurrent"
        (slots,), (minute,) = raw.keys(prefix + ":slots:*"), raw.keys(prefix + ":minute:*")
        assert len(raw.keys(prefix + ":*")) == 2 and TENANT not in slots + minute
        assert slots.split("{")[1] == minute.split("{")[1]
        assert raw.zcard(slots) == 1 and raw.zcard(minute) == 1  # the refused call took neither
        assert 0 < raw.pttl(slots) <= 30_000 and 0 < raw.pttl(minute) <= 60_000
    assert raw.zcard(slots) == 0  # released
    with budgets.admit(TENANT):
        pass
    assert _refusal(budgets.admit(TENANT)).budget == "per_minute"
    assert raw.zcard(slots) == 0 and raw.zcard(minute) == 2  # refused for the rate: no lease left behind
    raw.close()
    store.close()


def test_concurrent_admits_never_exceed_the_budget(store):
    """Many threads at once (on Redis: one Lua script per admit): exactly the budget gets in."""
    budgets = TenantBudgets(store, max_concurrent=3, per_minute=0)
    start, done = threading.Barrier(12), threading.Event()
    admitted, refused = [], []

    def one() -> None:
        start.wait()
        try:
            with budgets.admit(TENANT):
                admitted.append(1)
                done.wait(10)
        except TenantBudgetExceeded:
            refused.append(1)
            if len(refused) == 9:
                done.set()

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert (len(admitted), len(refused)) == (3, 9)
    with budgets.admit(TENANT), budgets.admit(TENANT), budgets.admit(TENANT):  # all three given back
        pass


def test_single_mode_is_not_budgeted():
    store = open_store()
    budgets = TenantBudgets(store, max_concurrent=1, per_minute=1)
    with budgets.admit(None), budgets.admit(None), budgets.admit(None):
        pass
    store.close()


def test_the_http_layer_answers_a_throttled_client_429_problem(monkeypatch, settings, make_client):
    """Raised where the credentials are checked (as hosted mode will), before any platform call."""
    from service.api import security
    from tests.conftest import API_KEY

    store = open_store()
    throttle = RefusedCredentials(store, per_minute=2)
    real = security.check_api_key

    def check(apikey, required_scopes=None, request=None):
        client = request.client.host
        throttle.check(client)
        info = real(apikey, required_scopes, request)
        if info is None:
            throttle.refused(client)
        return info

    monkeypatch.setattr(security, "check_api_key", check)
    client = make_client(settings)
    assert [client.get("/automations", headers={"X-API-Key": "wrong-" + API_KEY}).status_code
            for _ in range(2)] == [401, 401]
    answer = client.get("/automations", headers={"X-API-Key": API_KEY})  # even the right key, for the window
    assert answer.status_code == 429 and answer.headers["content-type"] == "application/problem+json"
    assert 1 <= int(answer.headers["retry-after"]) <= 60
    assert answer.json()["code"] == "TOO_MANY_REFUSED_CREDENTIALS"
    store.close()


def test_a_redis_that_never_answers_costs_one_timeout_then_nothing(caplog):
    """Accepts the connection, never answers: the call waits the store's timeout once, then passes; the calls
    after it do not ask Redis for a while (fail open, no timeout per call)."""
    import socket

    from service.actions import budgets as module

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        store = open_store(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", prefix="silent")
        budgets = TenantBudgets(store, max_concurrent=1, per_minute=1)
        with caplog.at_level(logging.WARNING, logger="service.actions.budgets"):
            started = time.monotonic()
            with budgets.admit(TENANT):
                first = time.monotonic() - started
                with budgets.admit(TENANT):
                    rest = time.monotonic() - started - first
        assert module.REDIS_TIMEOUT <= first < module.REDIS_TIMEOUT + 1 and rest < 0.1
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        store.close()
