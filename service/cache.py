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

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._data.get(key)
            if hit and self.clock() < hit[0]:
                return hit[1]
        value = load()
        if self.ttl > 0:
            with self._lock:
                self._data[key] = (self.clock() + self.ttl, value)
        return value

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
