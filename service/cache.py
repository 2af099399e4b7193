"""A thread-safe TTL cache for upstream lists (dropdowns, field definitions) and shared feed reads, per process:
:class:`cachetools.TTLCache` (bounded: past ``max_entries`` the expired entries go first, then the least recently
used) behind a lock, with the read-through ``get(key, load)`` the actions use."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import cachetools

#: what :meth:`TTLCache.peek` answers for a key it does not hold (or holds no longer)
MISSING = object()


class TTLCache:
    """``get(key, load)`` answers from memory for ``ttl`` seconds after ``load()`` filled it (ttl 0: no caching).
    ``clock`` may be replaced (tests): the entries' times are read through it."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._data: cachetools.TTLCache = cachetools.TTLCache(maxsize=max_entries, ttl=max(ttl, 0.0),
                                                              timer=self._now)
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self.clock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        value = self.peek(key)
        if value is not MISSING:
            return value
        value = load()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Hold ``value`` for ``key`` for ``ttl`` seconds."""
        if self.ttl <= 0:
            return
        with self._lock:
            self._data[key] = value

    def peek(self, key: Hashable) -> Any:
        """The value held for ``key`` if it is still fresh, else :data:`MISSING` (never loads)."""
        with self._lock:
            return self._data.get(key, MISSING)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
