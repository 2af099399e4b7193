"""How a platform simulator sends its webhooks: from a background thread, after the call that caused them has
answered, retried on a non-2xx answer or no answer like the platform would (Piggy: at most 5 retries with
growing intervals [C]; Spoki: not documented, the same is assumed [G]).

Every attempt is recorded (:meth:`WebhookSender.sent`) so that tests can wait for a condition on it, and the
last bodies can be sent again as they were (:meth:`WebhookSender.redeliver`: a platform's repeat).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

#: seconds between the attempts of one webhook (the first try is at once); tests make them short
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass
class _Job:
    id: int
    url: str
    body: bytes
    headers: Callable[[int], dict[str, str]]
    meta: dict[str, Any]
    attempt: int = 0


@dataclass
class WebhookSender:
    name: str
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    timeout: float = 5.0
    _queue: list = field(default_factory=list, init=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _ids: Any = field(default_factory=itertools.count, init=False, repr=False)
    _sent: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    _jobs: list[_Job] = field(default_factory=list, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _session: requests.Session = field(default_factory=requests.Session, init=False, repr=False)

    def send(self, url: str, body: bytes, headers: Callable[[int], dict[str, str]], **meta: Any) -> int:
        """Queue a webhook; ``headers(attempt)`` signs each attempt (a timestamped signature is fresh each time)."""
        job = _Job(next(self._ids), url, body, headers, meta)
        with self._cond:
            self._jobs.append(job)
            del self._jobs[:-50]
            self._push(time.monotonic(), job)
        return job.id

    def redeliver(self, count: int = 1) -> int:
        """Send the last ``count`` webhooks again, body unchanged (what a platform does after a lost answer)."""
        with self._cond:
            jobs = self._jobs[-count:] if count > 0 else []
            for job in jobs:
                self._push(time.monotonic(), _Job(next(self._ids), job.url, job.body, job.headers,
                                                  {**job.meta, "repeat_of": job.id}))
        return len(jobs)

    def sent(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(x) for x in self._sent]

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def reset(self) -> None:
        with self._cond:
            self._queue.clear()
            self._sent.clear()
            self._jobs.clear()

    # -- the thread ---------------------------------------------------------------------------------------
    def _push(self, at: float, job: _Job) -> None:
        heapq.heappush(self._queue, (at, job.id, job))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-webhooks", daemon=True)
            self._thread.start()
        self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue or self._queue[0][0] > time.monotonic():
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                _, _, job = heapq.heappop(self._queue)
            self._attempt(job)

    def _attempt(self, job: _Job) -> None:
        job.attempt += 1
        status, error = 0, None
        try:
            resp = self._session.post(job.url, data=job.body, headers={"Content-Type": "application/json",
                                                                       **job.headers(job.attempt)},
                                      timeout=self.timeout, allow_redirects=False)
            status = resp.status_code
            resp.close()
        except requests.RequestException as exc:
            error = type(exc).__name__
        with self._cond:
            self._sent.append({"id": job.id, "url": job.url, "attempt": job.attempt, "status": status,
                               "error": error, **job.meta})
            del self._sent[:-1000]
            if not 200 <= status < 300 and job.attempt <= len(self.retry_delays):
                self._push(time.monotonic() + self.retry_delays[job.attempt - 1], job)
