"""Fault injection as WSGI middleware, reusable by every simulator.

    app = FaultInjector(inner_app, FaultConfig(latency_ms=50, fail_rate=0.1, fail_status=503))

Faults (applied to requests that match ``methods`` / ``path_prefix`` / ``path_regex`` / ``body_regex``):

* ``latency_ms`` + uniform ``jitter_ms``: added before every matching request.
* ``fail_rate`` / ``fail_status`` (429, 500, 503, ...): answer with that status and ``error_body``; 429 and
  503 carry ``Retry-After: retry_after`` (seconds; None = no header).
* ``hang_rate`` / ``hang_seconds``: wait that long before answering, then ``hang_then``: ``proceed``
  (handle the request: the side effect happens after the client gave up), ``fail`` (503) or ``reset``.
* ``reset_rate``: close the connection without answering. ``reset_phase`` ``before`` (nothing is done) or
  ``after`` (the request is handled, the answer is thrown away: a "did it happen?" failure).
* ``times``: how many faults to inject before going quiet (None = no limit): makes tests deterministic,
  e.g. ``FaultConfig(fail_rate=1, fail_status=503, times=2)`` fails exactly the next two requests.
* ``seed``: seeds the random draws.

One draw per request picks at most one of reset / hang / fail, in that order of the cumulative rates.

Control endpoints (never subject to faults), under ``control_prefix`` (default ``/__sim__``):

* ``GET /__sim__/faults``: the current config; ``POST /__sim__/faults`` (JSON): replace it (absent keys
  take their defaults); ``DELETE /__sim__/faults``: no faults.
* ``GET /__sim__/stats``: ``{"faults": {"seen": n, "injected": {...}}, **stats_provider()}``.
* Any other ``/__sim__/...`` path goes to the wrapped app (simulators add ``/__sim__/reset`` etc.).

A reset closes the socket through ``environ["werkzeug.socket"]`` (werkzeug's dev server) and raises
``ConnectionAbortedError``, which werkzeug treats as a dropped connection (no 500 written).
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_KINDS = ("reset", "hang", "fail")


@dataclass
class FaultConfig:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_rate: float = 0.0
    fail_status: int = 503
    retry_after: float | None = 1.0
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    hang_then: str = "proceed"
    reset_rate: float = 0.0
    reset_phase: str = "before"
    times: int | None = None
    methods: list[str] = field(default_factory=list)
    path_prefix: str = ""
    path_regex: str = ""
    #: only requests whose body matches (e.g. '"mode": ?"INCREASE"' for one kind of score change)
    body_regex: str = ""
    seed: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("fail_rate", "hang_rate", "reset_rate"):
            v = getattr(self, name)
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.fail_rate + self.hang_rate + self.reset_rate > 1.0 + 1e-9:
            raise ValueError("fail_rate + hang_rate + reset_rate must not exceed 1")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.hang_seconds < 0:
            raise ValueError("latency_ms, jitter_ms and hang_seconds must be >= 0")
        if not 400 <= int(self.fail_status) <= 599:
            raise ValueError("fail_status must be a 4xx or 5xx status")
        if self.hang_then not in ("proceed", "fail", "reset"):
            raise ValueError("hang_then must be proceed, fail or reset")
        if self.reset_phase not in ("before", "after"):
            raise ValueError("reset_phase must be before or after")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0")
        for name in ("path_regex", "body_regex"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                raise ValueError(f"{name} is not a valid regular expression: {exc}") from None
        self.methods = [m.upper() for m in self.methods]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultConfig:
        if not isinstance(data, dict):
            raise ValueError("fault config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault option(s): {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.jitter_ms or self.fail_rate or self.hang_rate or self.reset_rate)


class FaultInjector:
    def __init__(
        self,
        app: Callable,
        config: FaultConfig | None = None,
        *,
        control_prefix: str = "/__sim__",
        stats_provider: Callable[[], dict[str, Any]] | None = None,
        error_body: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.control_prefix = control_prefix.rstrip("/")
        self.stats_provider = stats_provider
        self.error_body = error_body or {"message": "Simulated upstream failure"}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._config = FaultConfig()
        self._rng = random.Random()
        self._remaining: int | None = None
        self._seen = 0
        self._injected: dict[str, Any] = {}
        self.configure(config or FaultConfig())

    # -- configuration ------------------------------------------------------------------------------------
    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig | dict[str, Any] | None = None, **changes: Any) -> FaultConfig:
        """Replace the fault config (a FaultConfig, a dict, or keyword arguments)."""
        if config is None:
            config = FaultConfig(**changes)
        elif isinstance(config, dict):
            config = FaultConfig.from_dict({**config, **changes})
        elif changes:
            config = FaultConfig.from_dict({**config.to_dict(), **changes})
        config.validate()
        with self._lock:
            self._config = config
            self._remaining = config.times
            self._rng = random.Random(config.seed)
        return config

    def clear(self) -> None:
        self.configure(FaultConfig())

    def release_hangs(self) -> None:
        """Wake every request currently hanging (they continue as ``hang_then`` says)."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"seen": self._seen, "injected": json.loads(json.dumps(self._injected))}

    def reset_stats(self) -> None:
        with self._lock:
            self._seen = 0
            self._injected = {}

    # -- WSGI ---------------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path == self.control_prefix or path.startswith(self.control_prefix + "/"):
            return self._control(environ, start_response, path[len(self.control_prefix):])
        method = environ.get("REQUEST_METHOD", "GET").upper()
        body = peek_body(environ) if self._config.body_regex else None
        with self._lock:
            self._seen += 1
            cfg = self._config
            matched = cfg.active and self._matches(cfg, method, path) and (
                not cfg.body_regex or re.search(cfg.body_regex, (body or b"").decode("utf-8", "replace")) is not None)
            kind = self._draw(cfg) if matched else None
            delay = 0.0
            if matched and (cfg.latency_ms or cfg.jitter_ms):
                delay = (cfg.latency_ms + self._rng.uniform(0, cfg.jitter_ms)) / 1000.0
                self._count("latency")
            if kind:
                self._count(kind if kind != "fail" else f"status_{cfg.fail_status}")
            release = self._release
        if delay:
            release.wait(delay)
        if kind == "reset":
            return self._reset(environ, start_response, after=cfg.reset_phase == "after")
        if kind == "hang":
            release.wait(cfg.hang_seconds)
            if cfg.hang_then == "fail":
                return self._fail(start_response, 503, cfg.retry_after)
            if cfg.hang_then == "reset":
                return self._reset(environ, start_response, after=False)
        if kind == "fail":
            return self._fail(start_response, cfg.fail_status, cfg.retry_after)
        return self.app(environ, start_response)

    @staticmethod
    def _matches(cfg: FaultConfig, method: str, path: str) -> bool:
        if cfg.methods and method not in cfg.methods:
            return False
        if cfg.path_prefix and not path.startswith(cfg.path_prefix):
            return False
        if cfg.path_regex and not re.search(cfg.path_regex, path):
            return False
        return True

    def _draw(self, cfg: FaultConfig) -> str | None:
        if self._remaining is not None and self._remaining <= 0:
            return None
        roll = self._rng.random()
        threshold = 0.0
        chosen = None
        for kind, rate in zip(_KINDS, (cfg.reset_rate, cfg.hang_rate, cfg.fail_rate), strict=True):
            threshold += rate
            if rate and roll < threshold:
                chosen = kind
                break
        if chosen and self._remaining is not None:
            self._remaining -= 1
        return chosen

    def _count(self, key: str) -> None:
        self._injected[key] = self._injected.get(key, 0) + 1

    def _fail(self, start_response: Callable, status: int, retry_after: float | None) -> list[bytes]:
        body = json.dumps(self.error_body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if retry_after is not None and status in (429, 503):
            headers.append(("Retry-After", str(int(retry_after)) if float(retry_after).is_integer()
                            else str(retry_after)))
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [body]

    def _reset(self, environ: dict, start_response: Callable, *, after: bool) -> list[bytes]:
        if after:
            result = self.app(environ, lambda status, headers, exc_info=None: (lambda data: None))
            try:
                for _ in result:
                    pass
            finally:
                if hasattr(result, "close"):
                    result.close()
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise ConnectionAbortedError("simulated connection reset")

    # -- control endpoints --------------------------------------------------------------------------------
    def _control(self, environ: dict, start_response: Callable, sub: str) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        sub = sub.rstrip("/")
        if sub == "/faults":
            if method == "GET":
                return _json(start_response, 200, self.config.to_dict())
            if method == "DELETE":
                self.clear()
                return _json(start_response, 200, self.config.to_dict())
            if method in ("POST", "PUT"):
                try:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    raw = environ["wsgi.input"].read(length) if length else b"{}"
                    cfg = self.configure(json.loads(raw or b"{}"))
                except (ValueError, TypeError) as exc:
                    return _json(start_response, 400, {"message": str(exc)})
                return _json(start_response, 200, cfg.to_dict())
            return _json(start_response, 405, {"message": "method not allowed"})
        if sub == "/stats" and method == "GET":
            out: dict[str, Any] = {"faults": self.stats()}
            if self.stats_provider is not None:
                out.update(self.stats_provider())
            return _json(start_response, 200, out)
        return self.app(environ, start_response)


_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def peek_body(environ: dict) -> bytes:
    """Read the request body and put it back so the wrapped app still sees it."""
    import io

    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _json(start_response: Callable, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(f"{status} {_REASONS.get(status, 'OK' if status < 400 else 'Error')}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
