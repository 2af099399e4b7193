"""A small thread-safe TTL cache for upstream lists (dropdowns, field definitions), per process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


#: what :meth:`TTLCache.peek` answers for a key it does not hold (or holds no longer)
MISSING = object()


class TTLCache:
    """``get(key, load)`` answers from memory for ``ttl`` seconds after ``load()`` filled it (ttl 0: no caching)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._data.get(key)
            if hit and self.clock() < hit[0]:
                return hit[1]
        value = load()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Hold ``value`` for ``key`` for ``ttl`` seconds. Past ``max_entries`` keys, expired ones are dropped
        (and all of them if that is not enough): memory stays bounded whatever the keys."""
        if self.ttl <= 0:
            return
        with self._lock:
            now = self.clock()
            if key not in self._data and len(self._data) >= self.max_entries:
                self._data = {k: hit for k, hit in self._data.items() if now < hit[0]}
                if len(self._data) >= self.max_entries:
                    self._data.clear()
            self._data[key] = (now + self.ttl, value)

    def peek(self, key: Hashable) -> Any:
        """The value held for ``key`` if it is still fresh, else :data:`MISSING` (never loads)."""
        with self._lock:
            hit = self._data.get(key)
            if hit and self.clock() < hit[0]:
                return hit[1]
        return MISSING

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
