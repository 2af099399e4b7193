"""Fairness between tenants and the refused-credentials throttle (issue 22, items 1 and 5).

* :class:`TenantBudgets` - per tenant (the keyed hash of platform + account key), at most ``max_concurrent``
  calls running at once and at most ``per_minute`` calls in any window of 60 seconds. ``with
  budgets.admit(tenant): ...`` raises :class:`~service.errors.TenantBudgetExceeded` (429 + ``Retry-After``,
  problem code ``TENANT_BUDGET_EXCEEDED``) when either is used up, so one tenant's 10,000-item "apply to each"
  cannot starve the others. A refused call takes nothing from either budget.
* :class:`RefusedCredentials` - after ``per_minute`` refused credentials from one client (its address or its
  publisher key id) within any 60 seconds, :meth:`~RefusedCredentials.check` raises
  :class:`~service.errors.CredentialsThrottled` (429 + ``Retry-After``) until the oldest refusal leaves the
  window: call it BEFORE any upstream call, and :meth:`~RefusedCredentials.refused` when a credential is
  refused. The service is then no oracle for guessing keys.

Where they are counted (:func:`build_budgets`): with ``REDIS_URL`` on Redis, shared by every worker and
instance; otherwise in this process's memory (the embedded default: one instance). On Redis a tenant's two
budgets are two sorted sets, taken together by ONE Lua script on the server's clock (:data:`_ADMIT`: one round
trip per admit, both or neither) and given back by one ZREM: its leases (a running call's lease is renewed by one
thread per process every third of ``lease_seconds``, so the slot of a killed worker is free again after at most
``lease_seconds``) and its moving window (the times of its calls, trimmed to the window). The refused-credentials
windows (a rare path) are the ``limits`` library's moving windows (its own Lua scripts, stamped by each
instance's clock: keep them NTP-synchronised). In memory the windows are lists of hit times (at most :data:`MEMORY_WINDOW_KEYS` keys) and the concurrency
budget a count per tenant, dropped when it falls to zero (so bounded by the calls running). Keys hold a keyed hash
of the tenant or client (``LEDGER_HASH_KEY``), never the value.

**Redis down: fail open.** A Redis error or timeout (0.5 s) lets the call through unbudgeted, logs one warning,
and skips Redis for the next :data:`DOWN_SECONDS` (no timeout per call meanwhile); never a 500.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cachetools
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from service.errors import CredentialsThrottled, TenantBudgetExceeded

if TYPE_CHECKING:  # pragma: no cover - typing only
    from service.config import Settings

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
#: seconds a caller refused for concurrency waits: slots free as soon as a running call ends
CONCURRENT_RETRY_AFTER = 2
#: after a Redis failure, seconds during which calls pass without asking Redis
DOWN_SECONDS = 5.0
REDIS_TIMEOUT = 0.5
#: credentials accepted lately, kept (as keyed hashes) per process so that a throttle never blocks them
PROVEN_ENTRIES = 20_000
#: in memory: the most tenants and clients whose windows are kept at once (the oldest go first)
MEMORY_WINDOW_KEYS = 50_000
PROVEN_SECONDS = 3600

#: KEYS[1] the tenant's lease set, KEYS[2] its moving window (hit times); ARGV concurrency limit (0: off), lease
#: ms, lease id (also the hit's member), calls per window (0: off), window ms -> {2, 0} both taken, or nothing taken
#: and {0, ms until the first lease expires} (concurrency) / {1, ms until the oldest hit leaves the window} (rate).
#: Expired leases (a killed worker's) and hits out of the window are dropped first; the server's clock decides.
_ADMIT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local limit, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local amount, window = tonumber(ARGV[4]), tonumber(ARGV[5])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= limit then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, tonumber(first[2]) - now}
  end
end
if amount > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= amount then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {1, tonumber(first[2]) + window - now}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], window)
end
if limit > 0 then
  redis.call('ZADD', KEYS[1], now + lease_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], lease_ms)
end
return {2, 0}
"""
#: KEYS[1] a lease set; ARGV lease ms, lease ids...: each lease still held runs ``lease ms`` from now again
_RENEW = """
local t = redis.call('TIME')
local until_ = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


def _seconds(delta: float, window: int) -> int:
    """A Retry-After: whole seconds, at least 1, at most the window."""
    return min(window, max(1, math.ceil(delta)))


class _Store:
    """Where budgets are counted: the moving windows and the concurrency slots."""

    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, hash_key: bytes = b"") -> None:
        self._hash_key = hash_key[:64]

    def key(self, kind: str, ident: str) -> str:
        """The name a tenant or client is counted under: a keyed hash (an address is no key in clear)."""
        return kind + ":" + hashlib.blake2b(ident.encode(), digest_size=16, key=self._hash_key).hexdigest()

    def available(self) -> bool:
        return True

    def failed(self, exc: BaseException) -> None:  # pragma: no cover - memory never fails
        raise exc

    def hit(self, item: RateLimitItem, key: str, *, consume: bool = True) -> int | None:
        """None when the window has room (one taken when ``consume``), else the seconds until it has."""
        raise NotImplementedError

    def admit(self, key: str, limit: int, item: RateLimitItem | None) -> tuple[object | None, str | None, int]:
        """Take a concurrent slot (``limit`` 0: none) and one call of ``item``'s window (None: none), both or
        neither: ``(token for release or None, None, 0)``, or ``(None, "concurrent" | "per_minute", seconds)``."""
        token = None
        if limit:
            token, wait = self.acquire(key, limit)
            if token is None:
                return None, "concurrent", wait
        if item is not None:
            wait = self.hit(item, key)  # type: ignore[assignment]
            if wait is not None:
                if token is not None:
                    self.release(key, token)
                return None, "per_minute", wait
        return token, None, 0

    def acquire(self, key: str, limit: int) -> tuple[object | None, int]:
        raise NotImplementedError

    def release(self, key: str, token: object) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _MemoryStore(_Store):
    """One process: moving windows of its own and a count of running calls per tenant."""

    def __init__(self, hash_key: bytes = b"") -> None:
        super().__init__(hash_key)
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()
        #: the moving windows (of at most WINDOW_SECONDS): per key the times of the hits still inside the window
        #: (a key idle for a whole window is dropped). Not ``limits``' MemoryStorage for these: it starts a timer thread after every hit
        #: that walks every key (bench.hosted_tenants: +2.7 ms CPU per call once 10,000 tenants had called)
        self._windows: cachetools.TTLCache = cachetools.TTLCache(maxsize=MEMORY_WINDOW_KEYS, ttl=WINDOW_SECONDS)

    def hit(self, item: RateLimitItem, key: str, *, consume: bool = True) -> int | None:
        window = item.get_expiry()
        now = time.monotonic()
        name = key + "|" + item.namespace  # one string per key and budget (a list of floats each: ~100 bytes)
        with self._lock:
            hits = self._windows.get(name)
            if hits is None:
                hits = []
            self._windows[name] = hits  # (re)set: dropped only after a whole window without a hit
            del hits[:bisect.bisect_right(hits, now - window)]
            if len(hits) < item.amount:
                if consume:
                    hits.append(now)
                return None
            return _seconds(hits[0] + window - now, window)

    def acquire(self, key: str, limit: int) -> tuple[object | None, int]:
        with self._lock:
            n = self._running.get(key, 0)
            if n >= limit:
                return None, CONCURRENT_RETRY_AFTER
            self._running[key] = n + 1
        return key, 0

    def release(self, key: str, token: object) -> None:
        with self._lock:
            n = self._running.pop(key, 0) - 1
            if n > 0:
                self._running[key] = n


class _RedisStore(_Store):
    """Every worker and instance: ``limits``' Redis storage and the lease sets (module doc); fails open."""

    _OPEN = object()  # the token of a call let through while Redis was away

    def __init__(self, url: str, prefix: str, lease_seconds: float, hash_key: bytes = b"") -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        super().__init__(hash_key)
        self.limiter = MovingWindowRateLimiter(RedisStorage(url, connection_pool=self.redis.connection_pool,
                                                            key_prefix=prefix + ":rate", wrap_exceptions=True))
        self.errors = (redis.RedisError, StorageError, OSError)
        self.prefix = prefix
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self._admit = self.redis.register_script(_ADMIT)
        self._renew = self.redis.register_script(_RENEW)
        self._leases: dict[str, str] = {}  # lease id -> its set's key, while the call runs
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def hit(self, item: RateLimitItem, key: str, *, consume: bool = True) -> int | None:
        """The refused-credentials windows: ``limits``' moving windows on Redis (fails open)."""
        if not self.available():
            return None
        try:
            if self.limiter.hit(item, key) if consume else self.limiter.test(item, key):
                return None
            reset = self.limiter.get_window_stats(item, key).reset_time
        except self.errors as exc:
            self.failed(exc)
            return None
        return _seconds(reset - time.time(), item.get_expiry())

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            first = self.available()
            self._down_until = time.monotonic() + DOWN_SECONDS
        if first:
            log.warning("budgets: Redis unreachable (%s); calls pass unbudgeted (fail open) for %g s",
                        type(exc).__name__, DOWN_SECONDS)

    def admit(self, key: str, limit: int, item: RateLimitItem | None) -> tuple[object | None, str | None, int]:
        """Both budgets in one round trip (:data:`_ADMIT`); the keys share a hash tag (one Redis Cluster slot)."""
        if not self.available() or not (limit or item is not None):
            return (self._OPEN if limit else None), None, 0
        lease, slots = uuid.uuid4().hex, f"{self.prefix}:slots:{{{key}}}"
        window_ms = item.get_expiry() * 1000 if item is not None else 0
        try:
            verdict, wait_ms = self._admit(keys=[slots, f"{self.prefix}:minute:{{{key}}}"],
                                           args=[limit, self.lease_ms, lease, item.amount if item else 0, window_ms])
        except self.errors as exc:
            self.failed(exc)
            return self._OPEN, None, 0
        if verdict == 0:
            return None, "concurrent", _seconds(min(int(wait_ms) / 1000, CONCURRENT_RETRY_AFTER),
                                                CONCURRENT_RETRY_AFTER)
        if verdict == 1:
            return None, "per_minute", _seconds(int(wait_ms) / 1000, window_ms // 1000)
        if not limit:
            return None, None, 0
        with self._lock:
            self._leases[lease] = slots
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_loop, name="budget-leases", daemon=True)
                self._renewer.start()
        return lease, None, 0

    def release(self, key: str, token: object) -> None:
        if token is self._OPEN:
            return
        with self._lock:
            slots = self._leases.pop(token, None)  # type: ignore[call-overload]
        if slots is None:
            return
        try:
            self.redis.zrem(slots, token)
        except self.errors as exc:  # the lease then ends on its own
            self.failed(exc)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_ms / 3000):
            with self._lock:
                by_set: dict[str, list[str]] = {}
                for lease, slots in self._leases.items():
                    by_set.setdefault(slots, []).append(lease)
            if not by_set:
                continue
            try:
                pipe = self.redis.pipeline(transaction=False)
                for slots, leases in by_set.items():
                    self._renew(keys=[slots], args=[self.lease_ms, *leases], client=pipe)
                pipe.execute()
            except self.errors as exc:
                self.failed(exc)

    def close(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=2)
        self.redis.close()


class TenantBudgets:
    """Concurrent calls and calls per window of each tenant (module doc); 0 turns a budget off."""

    def __init__(self, store: _Store, *, max_concurrent: int, per_minute: int,
                 window_seconds: int = WINDOW_SECONDS) -> None:
        self._store = store
        self.max_concurrent = max_concurrent
        self.window = window_seconds
        self._item = RateLimitItemPerSecond(per_minute, window_seconds, namespace="tenant") if per_minute else None

    @contextlib.contextmanager
    def admit(self, tenant: str | None) -> Iterator[None]:
        """Run one call of ``tenant`` within its budgets; TenantBudgetExceeded when either is used up. ``None``
        (single mode: the service's own account, no other tenant to be fair to) is not budgeted."""
        if tenant is None:
            yield
            return
        key = self._store.key("tenant", tenant)
        token, budget, wait = self._store.admit(key, self.max_concurrent, self._item)
        if budget == "concurrent":
            raise TenantBudgetExceeded(
                f"This connection's platform account already has {self.max_concurrent} calls running, the most "
                f"it may run at once. Retry in {wait} seconds.", budget="concurrent", retry_after=wait)
        if budget is not None:
            raise TenantBudgetExceeded(
                f"This connection's platform account has made {self._item.amount} calls in the last "  # type: ignore[union-attr]
                f"{self.window} seconds, the most it may make. Retry in {wait} seconds.",
                budget="per_minute", retry_after=wait)
        try:
            yield
        finally:
            if token is not None:
                self._store.release(key, token)


class RefusedCredentials:
    """The throttle of refused credentials per client (module doc); ``per_minute`` 0 turns it off."""

    def __init__(self, store: _Store, *, per_minute: int, window_seconds: int = WINDOW_SECONDS) -> None:
        self._store = store
        self._item = RateLimitItemPerSecond(per_minute, window_seconds, namespace="refused") if per_minute else None
        #: keyed hashes of credentials accepted lately (this process): they pass even while their client is
        #: throttled, so a key-guesser behind a shared address (Power Platform's gateway) blocks only credentials
        #: nobody has used yet, never the makers already connected - and learns nothing from their answers
        self._proven: cachetools.TTLCache = cachetools.TTLCache(maxsize=PROVEN_ENTRIES, ttl=PROVEN_SECONDS)

    def check(self, client: str, credential: str | None = None) -> None:
        """CredentialsThrottled when ``client`` presented its most refused credentials within the window, unless
        ``credential`` (a keyed hash of what it presents now) was accepted lately."""
        if self._item is None or (credential is not None and credential in self._proven):
            return
        wait = self._store.hit(self._item, self._store.key("client", client), consume=False)
        if wait is not None:
            raise CredentialsThrottled(
                f"Too many refused credentials came from this client within {self._item.get_expiry()} seconds. "
                f"Check the connection's keys, then retry in {wait} seconds.", retry_after=wait)

    def refused(self, client: str) -> None:
        """Count one refused credential of ``client``."""
        if self._item is not None:
            self._store.hit(self._item, self._store.key("client", client))

    def accepted(self, credential: str) -> None:
        """``credential`` (a keyed hash) was accepted: it is not throttled for PROVEN_SECONDS."""
        self._proven[credential] = True


@dataclass
class Budgets:
    """What :attr:`service.runtime.Runtime.budgets` holds: both, on one store."""

    tenants: TenantBudgets
    refused: RefusedCredentials
    store: _Store

    @property
    def shared(self) -> bool:
        """True when counted on Redis (every worker and instance), False in this process's memory."""
        return isinstance(self.store, _RedisStore)

    def close(self) -> None:
        self.store.close()


def open_store(redis_url: str = "", *, prefix: str = "marketing-actions", lease_seconds: float = 30.0,
               hash_key: bytes = b"") -> _Store:
    """Redis when ``redis_url`` is given (nothing is sent before the first call), else this process's memory.
    ``hash_key`` keys the hashes that name tenants and clients (every instance of a deployment: the same)."""
    if redis_url:
        return _RedisStore(redis_url, prefix, lease_seconds, hash_key)
    return _MemoryStore(hash_key)


def build_budgets(settings: Settings) -> Budgets:
    s = settings
    store = open_store(s.redis_url, prefix=s.redis_key_prefix, lease_seconds=s.tenant_lease_seconds,
                       hash_key=s.ledger_hash_key.encode())
    return Budgets(TenantBudgets(store, max_concurrent=s.tenant_max_concurrent, per_minute=s.tenant_calls_per_minute),
                   RefusedCredentials(store, per_minute=s.refused_credentials_per_minute), store)
