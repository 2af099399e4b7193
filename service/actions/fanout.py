"""One thread pool per process for the actions' fan-outs (contact lookups of a bulk audience change, the feeds
of one trigger poll, a poll's mailing names): made once, on first use after a fork, not per request. Each
fan-out keeps its own bound (:func:`map_bounded`), so that a call never takes more of the pool than it used to
have threads of its own."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: threads of the shared pool (a bulk job's lookups take 8 of them, a trigger poll's feeds 2)
POOL_THREADS = 32

_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def pool() -> ThreadPoolExecutor:
    """This process's fan-out pool (built again in a forked child: threads do not survive a fork)."""
    global _pool
    made = _pool
    pid = os.getpid()
    if made is None or made[0] != pid:
        with _lock:
            made = _pool
            if made is None or made[0] != pid:
                made = _pool = (pid, ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="fanout"))
    return made[1]


def submit(fn: Callable[..., R], *args: Any) -> Future[R]:
    return pool().submit(fn, *args)


def map_bounded(fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``[fn(x) for x in items]`` with at most ``threads`` of them running at once, in order."""
    n = max(1, min(threads, len(items)))
    parts = [list(items[i::n]) for i in range(n)]
    futures = [submit(lambda part: [fn(x) for x in part], part) for part in parts]
    out: list[Any] = [None] * len(items)
    for i, future in enumerate(futures):
        out[i::n] = future.result()
    return out
