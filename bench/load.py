"""Load generators that record one latency per call: :func:`closed_loop` (asyncio streams on
:class:`RawConnection`, for the HTTP benchmarks) and :func:`threaded_loop` (threads, for the direct client);
:class:`LoadResult` and :func:`pct` summarise them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)  # successful (2xx) calls
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # transport errors by exception name
    elapsed_s: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= int(s) < 300)

    @property
    def failed(self) -> int:
        return sum(self.errors.values()) + sum(n for s, n in self.statuses.items() if not 200 <= int(s) < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed, "statuses": dict(self.statuses), "errors": dict(self.errors),
                "elapsed_s": round(self.elapsed_s, 2), "rate": round(self.rate, 1),
                "p50_ms": pct(self.latencies_ms, 50), "p99_ms": pct(self.latencies_ms, 99)}


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return round(ordered[k], 2)


def _stop_reached(started: float, issued: int, duration: float | None, total: int | None) -> bool:
    if total is not None and issued >= total:
        return True
    return duration is not None and time.perf_counter() - started >= duration


class RawResponse:
    """The little a benchmark needs from an answer: status, headers (lower-case names), body."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class TransportError(Exception):
    """The connection broke or timed out before a complete answer arrived."""


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (loopback benchmarks only).

    httpx's AsyncClient costs several ms of CPU per call on this machine, which made the load generator the
    bottleneck; this costs a few hundred microseconds. Reconnects transparently when the server closed the
    connection between calls.
    """

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        rest = base_url.split("://", 1)[1].rstrip("/")
        host, _, port = rest.partition(":")
        self.host, self.port = host, int(port or 80)
        self.hostport = rest
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, *, json_body: Any = None, headers: dict[str, str] | None = None,
                      body: bytes | None = None) -> RawResponse:
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.hostport}"]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
            if json_body is not None:
                lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        try:
            return await asyncio.wait_for(self._exchange(payload, method), self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            await self.close()
            raise TransportError(type(exc).__name__) from exc

    async def _exchange(self, payload: bytes, method: str) -> RawResponse:
        fresh = self._writer is None
        if fresh:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        try:
            return await self._send_read(payload, method)
        except (ConnectionError, asyncio.IncompleteReadError):
            if fresh:
                raise
            await self.close()  # the server closed an idle keep-alive connection: once more on a new one
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            return await self._send_read(payload, method)

    async def _send_read(self, payload: bytes, method: str) -> RawResponse:
        assert self._reader is not None and self._writer is not None
        self._writer.write(payload)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            content = b""
        elif "content-length" in headers:
            content = await self._reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self._reader.readuntil(b"\r\n")
                    break
                parts.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
            content = b"".join(parts)
        else:
            content = await self._reader.read()
            await self.close()
            return RawResponse(status, headers, content)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return RawResponse(status, headers, content)


async def _closed_loop(call: Callable[[RawConnection, int], Awaitable[RawResponse]], concurrency: int,
                       duration: float | None, total: int | None, base_url: str, timeout: float,
                       ramp_s: float) -> LoadResult:
    res = LoadResult()
    issued = 0
    started = time.perf_counter()

    async def worker(index: int) -> None:
        nonlocal issued
        conn = RawConnection(base_url, timeout)
        if ramp_s and concurrency > 1:
            await asyncio.sleep(ramp_s * index / concurrency)
        try:
            while not _stop_reached(started, issued, duration, total):
                n = issued
                issued += 1
                t0 = time.perf_counter()
                try:
                    resp = await call(conn, n)
                except TransportError as exc:
                    res.errors[str(exc)] += 1
                    continue
                res.statuses[resp.status_code] += 1
                if 200 <= resp.status_code < 300:
                    res.latencies_ms.append((time.perf_counter() - t0) * 1000)
        finally:
            await conn.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    res.elapsed_s = time.perf_counter() - started
    return res


def closed_loop(call: Callable[[RawConnection, int], Awaitable[RawResponse]], *, concurrency: int,
                base_url: str, duration: float | None = None, total: int | None = None,
                timeout: float = 30.0, ramp_s: float = 1.0) -> LoadResult:
    """``concurrency`` callers, each on its own keep-alive connection, sending its next call as soon as the
    previous one is answered, until ``total`` calls were issued or ``duration`` seconds passed.

    Callers join evenly over the first ``ramp_s`` seconds (their connections too): opened all at once, every
    connection tends to land on the one gunicorn worker that wakes first (asyncio accepts a whole batch per
    wake-up), which measures that imbalance rather than the service.
    """
    if duration is None and total is None:
        raise ValueError("give duration or total")
    return asyncio.run(_closed_loop(call, concurrency, duration, total, base_url, timeout, ramp_s))


def threaded_loop(call: Callable[[int], Any], *, concurrency: int, duration: float | None = None,
                  total: int | None = None) -> LoadResult:
    """Same as :func:`closed_loop` with threads and a blocking ``call(n)`` (the direct client). An exception
    counts as an error; anything returned counts as a 200."""
    if duration is None and total is None:
        raise ValueError("give duration or total")
    res = LoadResult()
    lock = threading.Lock()
    counter = iter(range(10**12))
    started = time.perf_counter()

    def worker() -> None:
        while True:
            with lock:
                n = next(counter)
                if _stop_reached(started, n, duration, total):
                    return
            t0 = time.perf_counter()
            try:
                call(n)
            except Exception as exc:  # noqa: BLE001 - counted
                with lock:
                    res.errors[type(exc).__name__] += 1
                continue
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                res.statuses[200] += 1
                res.latencies_ms.append(ms)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    limit = (duration or 0) + 120 if duration else None
    for t in threads:
        t.join(limit)
    res.elapsed_s = time.perf_counter() - started
    return res
