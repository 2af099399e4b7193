"""Shared HTTP plumbing for every upstream client (Spotler, Piggy, Spoki).

One :class:`requests.Session` per upstream per process: each client builds its session with
:func:`build_session` (lazily, after a possible gunicorn fork; :class:`LazySession` does that for you) and
keeps it for its lifetime. The session carries an :class:`~requests.adapters.HTTPAdapter` whose pool is sized
for the worker's thread count and whose urllib3 ``Retry`` policy is:

* **Idempotent methods only** (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) are retried on 429/500/502/503/504
  and on connection drops after the request was sent. POST is never retried once it reached the server.
* **Connect failures** (refused, connect timeout) are retried for every method, POST included: the request
  was never sent, so a retry cannot double a side effect.
* **Read timeouts are never retried**: a hung upstream would otherwise hold the caller for
  ``(retries + 1) x read_timeout``. The caller gets :class:`UpstreamTimeout` after one read timeout.
* Exponential backoff ``backoff_factor * 2 ** (n - 1)`` (+ jitter) between attempts.
* ``Retry-After`` is honoured when it is at most ``retry_after_max`` seconds. A longer ``Retry-After`` is
  not slept at all: the response goes back to the caller at once, which raises :class:`RateLimited` /
  :class:`Unavailable` carrying the upstream's ``retry_after`` so that Power Automate comes back later
  (sleeping minutes inside a request thread helps nobody).

Worst case time of one call (all attempts fail at connect):
``(max_retries + 1) * connect_timeout + sum(backoffs)``; a read hang costs ``connect + read`` once;
status retries cost at most ``max_retries * max(backoff, retry_after_max)``. :func:`worst_case_seconds`
computes the bound so callers can check it against Power Automate's 120 s limit.

Calls that are not safe to repeat (start an automation, trigger a campaign, change a score by an amount: each
client classifies its calls) are never retried, by urllib3 or anyone, and every client sends them through
:func:`send_unsafe`: it tells the :class:`UnsafeCallGuard` the caller handed down (the job runner notes the call
in the ledger first, so a crashed worker's job is settled instead of run again) and turns an error after which
the request may have been applied into :class:`~service.errors.OutcomeUnknown` (:func:`unsafe_outcome`).

Errors: :func:`map_request_exception` turns a ``requests`` exception into one of our
:mod:`service.providers.errors` types; :func:`error_for_status` gives the default type for an HTTP status
(clients refine it with the platform's own error body); :func:`parse_retry_after` reads the header.

Usage (a client)::

    settings = HttpSettings(connect_timeout=3.05, read_timeout=20, max_retries=3, user_agent="x/1")
    session = LazySession("piggy", settings, auth=None, headers={"Accept": "application/json"})
    try:
        resp = session.get().request("GET", url, timeout=settings.timeout)
    except requests.RequestException as exc:
        raise map_request_exception(exc, upstream="Piggy") from exc
"""

from __future__ import annotations

import email.utils
import errno
import logging
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from service import metrics, telemetry
from service.providers import errors

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpSettings:
    """Transport settings of one upstream. Hashable, so it can key a cache."""

    connect_timeout: float = 3.05
    read_timeout: float = 20.0
    max_retries: int = 3
    backoff_factor: float = 0.5
    backoff_jitter: float = 0.1
    backoff_max: float = 8.0
    retry_after_max: float = 10.0
    pool_maxsize: int = 32
    user_agent: str = "marketing-actions"
    retry_statuses: frozenset[int] = RETRY_STATUSES

    @property
    def timeout(self) -> tuple[float, float]:
        """The ``(connect, read)`` tuple to pass as ``timeout=`` on every call."""
        return (self.connect_timeout, self.read_timeout)

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                raise errors.ConfigValueError(name, "a number of seconds above 0")
        if self.max_retries < 0:
            raise errors.ConfigValueError("max_retries", "a whole number from 0")
        if self.pool_maxsize < 1:
            raise errors.ConfigValueError("pool_maxsize", "a whole number from 1")
        if self.retry_after_max < 0:
            raise errors.ConfigValueError("retry_after_max", "a number of seconds from 0")


class TransportConfig:
    """Mixin for a platform config dataclass with the common transport fields (connect_timeout, read_timeout,
    max_retries, backoff_factor, retry_after_max, pool_maxsize, user_agent)."""

    @property
    def http_settings(self) -> HttpSettings:
        return HttpSettings(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_retries=self.max_retries,
            backoff_factor=self.backoff_factor,
            backoff_jitter=min(0.25, self.backoff_factor / 2),
            retry_after_max=self.retry_after_max,
            pool_maxsize=self.pool_maxsize,
            user_agent=self.user_agent,
        )


def worst_case_seconds(settings: HttpSettings) -> float:
    """Upper bound of one call's wall time under the retry policy (ignores time spent sending bodies)."""
    backoffs = sum(
        min(settings.backoff_max, settings.backoff_factor * 2 ** (n - 1)) + settings.backoff_jitter
        for n in range(1, settings.max_retries + 1)
    )
    per_retry_wait = max(backoffs, settings.max_retries * settings.retry_after_max)
    attempts = settings.max_retries + 1
    return attempts * settings.connect_timeout + settings.read_timeout + per_retry_wait + attempts * 0.05


class PolicyRetry(Retry):
    """urllib3 ``Retry`` that never retries a read timeout and never sleeps a ``Retry-After`` above the cap.

    Both deviations from stock urllib3 keep a call bounded: see the module docstring.
    """

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if isinstance(error, ReadTimeoutError):
            raise error.with_traceback(_stacktrace)
        if response is not None:
            header = response.headers.get("Retry-After")
            if header:
                seconds = parse_retry_after(header)
                if seconds is not None and seconds > self.retry_after_max:
                    # Hand the response back (raise_on_status=False) instead of sleeping the capped value.
                    raise MaxRetryError(_pool, url, reason=None)
        return super().increment(method, url, response, error, _pool, _stacktrace)


def build_retry(settings: HttpSettings) -> Retry:
    n = settings.max_retries
    return PolicyRetry(
        total=n,
        connect=n,
        read=n,
        status=n,
        other=0,
        redirect=n,
        allowed_methods=IDEMPOTENT_METHODS,
        status_forcelist=settings.retry_statuses,
        backoff_factor=settings.backoff_factor,
        backoff_jitter=settings.backoff_jitter,
        backoff_max=settings.backoff_max,
        respect_retry_after_header=True,
        retry_after_max=int(math.ceil(settings.retry_after_max)),
        raise_on_status=False,
        raise_on_redirect=False,
    )


class MeasuredAdapter(HTTPAdapter):
    """The adapter of every upstream session: each call (its urllib3 retries included) is counted by platform
    and outcome, with its time (:mod:`service.metrics`), and traced as a child span of the request's when
    tracing is on (:mod:`service.telemetry`). Every upstream call passes here."""

    def __init__(self, platform: str, **kwargs: Any) -> None:
        self.platform = platform
        super().__init__(**kwargs)

    def send(self, request, *args, **kwargs):
        started = time.perf_counter()
        with telemetry.upstream_span(self.platform, request.method or "", request.url or "") as span:
            try:
                resp = super().send(request, *args, **kwargs)
            except Exception as exc:
                outcome = metrics.upstream_outcome(None, exc)
                metrics.upstream_call(self.platform, outcome, time.perf_counter() - started)
                span.failed(outcome, exc)
                raise
            outcome = metrics.upstream_outcome(resp.status_code)
            metrics.upstream_call(self.platform, outcome, time.perf_counter() - started)
            span.answered(resp.status_code, outcome)
        return resp


def build_session(
    settings: HttpSettings,
    *,
    auth: Any = None,
    headers: dict[str, str] | None = None,
    name: str = "upstream",
) -> requests.Session:
    """A new Session with the retry policy and a pool of ``pool_maxsize`` connections per host; its calls are
    counted under the platform ``name`` (:class:`MeasuredAdapter`).

    Do not mutate the returned session's headers or auth per request (it is shared by threads): pass
    per-request headers to ``request()`` instead. Always pass ``timeout=settings.timeout``.
    """
    session = requests.Session()
    adapter = MeasuredAdapter(
        name,
        pool_connections=4,
        pool_maxsize=settings.pool_maxsize,
        max_retries=build_retry(settings),
        pool_block=False,
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = settings.user_agent
    if headers:
        session.headers.update(headers)
    if auth is not None:
        session.auth = auth
    session.trust_env = False  # no proxies or .netrc picked up behind our back
    return session


class LazySession:
    """Builds the session on first use and again after a fork (one session per upstream per process)."""

    def __init__(self, name: str, settings: HttpSettings, *, auth: Any = None,
                 headers: dict[str, str] | None = None, verify: bool | str | None = None) -> None:
        self.name = name
        self.settings = settings
        self._auth = auth
        self._headers = dict(headers or {})
        self._verify = verify  # a CA bundle path (local sandbox CA), or None for requests' default
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._pid: int | None = None

    def get(self) -> requests.Session:
        pid = os.getpid()
        session = self._session
        if session is not None and self._pid == pid:
            return session
        with self._lock:
            if self._session is None or self._pid != pid:
                session = build_session(self.settings, auth=self._auth, headers=self._headers, name=self.name)
                if self._verify is not None:
                    session.verify = self._verify
                self._session, self._pid = session, pid
                log.debug("built HTTP session for %s (pid %s)", self.name, pid)
            return self._session

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
            self._session = None


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _chain(exc: BaseException) -> Iterable[BaseException]:
    """The exception, its args that are exceptions, MaxRetryError reasons and causes (depth-limited)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 20:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        if isinstance(cur, MaxRetryError) and cur.reason is not None:
            todo.append(cur.reason)
        todo.extend(a for a in getattr(cur, "args", ()) if isinstance(a, BaseException))
        for nxt in (cur.__cause__, cur.__context__):
            if nxt is not None:
                todo.append(nxt)


def _host_port(exc: BaseException) -> tuple[str | None, int | None]:
    """Host and port of the failed request's URL (never its path or query)."""
    url = getattr(getattr(exc, "request", None), "url", None)
    try:
        parts = urlsplit(str(url)) if url else None
        return (parts.hostname, parts.port) if parts else (None, None)
    except ValueError:
        return None, None


def _where(exc: BaseException) -> str:
    host, port = _host_port(exc)
    if not host:
        return "the platform's host"
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown


def _connect_failure(exc: BaseException, chain: list[BaseException]) -> str:
    """Why a connection could not be made, by class of reason (DNS, refused, timed out, unreachable)."""
    where = _where(exc)
    if any(isinstance(e, (NameResolutionError, socket.gaierror)) for e in chain):
        return f"the name {_host_port(exc)[0] or where} could not be resolved (DNS)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"connection refused by {where}"
    if any(isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) for e in chain):
        return f"{where} is unreachable from here (no network route)"
    if isinstance(exc, requests.exceptions.ConnectTimeout) or not any(isinstance(e, NewConnectionError) for e in chain):
        return f"the connection to {where} timed out"
    return f"the connection to {where} failed"


def _tls_failure(exc: BaseException, chain: list[BaseException]) -> str:
    why = " (its certificate is not trusted)" if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) else ""
    return f"TLS handshake failed with {_where(exc)}{why}"


def map_request_exception(exc: requests.RequestException, *, upstream: str) -> errors.ProviderError:
    """Our error for a transport failure. The result has ``request_sent`` (bool) set as an attribute.

    * connect timeout / refused / DNS / TLS (the request never left): :class:`Unavailable`, ``request_sent=False``;
      its message says which class of reason, and where (host and port, never the path), never internals
    * read timeout: :class:`UpstreamTimeout` (the request may have been applied)
    * connection reset or closed after sending: :class:`Unavailable` (the outcome is unknown)
    * a malformed URL: a plain :class:`ProviderError` (configuration)
    """
    chain = list(_chain(exc))
    err: errors.ProviderError
    sent = True
    if isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                        requests.exceptions.InvalidURL)):
        err = errors.ProviderError(f"The {upstream} base URL is not valid; check the configuration.",
                                   code="UPSTREAM_MISCONFIGURED")
        sent = False
    elif isinstance(exc, requests.exceptions.ReadTimeout) or any(isinstance(e, ReadTimeoutError) for e in chain):
        err = errors.UpstreamTimeout(f"{upstream} did not answer in time.")
    elif isinstance(exc, requests.exceptions.ConnectTimeout) or any(
        isinstance(e, (ConnectTimeoutError, NewConnectionError)) for e in chain
    ):
        err = errors.Unavailable(f"{upstream} could not be reached: {_connect_failure(exc, chain)}.")
        sent = False
    elif isinstance(exc, requests.exceptions.SSLError):
        err = errors.Unavailable(f"{upstream} could not be reached: {_tls_failure(exc, chain)}.")
        sent = False
    elif isinstance(exc, requests.exceptions.ConnectionError) or any(isinstance(e, ProtocolError) for e in chain):
        err = errors.Unavailable(f"{upstream} closed the connection without answering.")
    elif isinstance(exc, requests.exceptions.Timeout):
        err = errors.UpstreamTimeout(f"{upstream} did not answer in time.")
    else:
        err = errors.Unavailable(f"The call to {upstream} failed ({type(exc).__name__}).")
    err.request_sent = sent  # type: ignore[attr-defined]
    return err


def error_for_status(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    retry_after: float | None = None,
    details: dict | None = None,
    code: str | None = None,
) -> errors.ProviderError:
    """Default mapping of an upstream HTTP error status to our error types (clients may refine it).

    400/413/422 invalid input, 401 auth failed, 403 forbidden, 404/410 not found, 409/412/417 rejected,
    408/504 timeout, 429 rate limited, other 5xx unavailable.
    """
    kw: dict[str, Any] = {"upstream_status": status, "error_type": error_type, "details": details, "code": code}
    if status == 401:
        return errors.AuthFailed(message, **kw)
    if status == 403:
        return errors.Forbidden(message, **kw)
    if status in (404, 410):
        return errors.NotFound(message, **kw)
    if status in (409, 412, 417):
        return errors.Rejected(message, **kw)
    if status == 429:
        return errors.RateLimited(message, retry_after=retry_after, **kw)
    if status in (408, 504):
        return errors.UpstreamTimeout(message, retry_after=retry_after, **kw)
    if status >= 500:
        return errors.Unavailable(message, retry_after=retry_after, **kw)
    if 400 <= status < 500:
        return errors.InvalidInput(message, **kw)
    return errors.ProviderError(message, **kw)


# ---------------------------------------------------------------------------------------------------------
# Calls that are not safe to repeat
# ---------------------------------------------------------------------------------------------------------


class UnsafeCallGuard(Protocol):
    """Whoever runs the work (the job runner) hands one down with the call (``guard=`` of the provider's
    methods that make a call which is not safe to repeat): told just before such a call is sent. It may raise
    (e.g. the job was taken over): then nothing is sent."""

    def before_unsafe_call(self, call: str) -> None: ...


def send_unsafe(guard: UnsafeCallGuard | None, call: str, send: Callable[[], requests.Response], *,
                upstream: str) -> requests.Response:
    """The one protocol for a call that is not safe to repeat, for every client: tell ``guard`` (None: nobody
    to tell, e.g. a provider used on its own), then ``send()`` (one HTTP exchange; the session never retries
    it once sent), and turn an error after which the request may have been applied - a transport failure
    after sending, a gateway's 502/504 - into :class:`~service.errors.OutcomeUnknown`. Other answers are
    returned for the client to read as usual."""
    if guard is not None:
        guard.before_unsafe_call(call)
    try:
        resp = send()
    except requests.RequestException as exc:
        raise unsafe_outcome(map_request_exception(exc, upstream=upstream), call=call, upstream=upstream) from exc
    except errors.ProviderError as err:  # a client whose send() maps transport errors itself
        raise unsafe_outcome(err, call=call, upstream=upstream) from err
    if resp.status_code in (502, 504):
        raise unsafe_outcome(error_for_status(resp.status_code, f"{upstream}'s gateway answered HTTP "
                                              f"{resp.status_code} to {call}."), call=call, upstream=upstream)
    return resp


def may_have_been_applied(err: errors.ProviderError) -> bool:
    """True when the request behind ``err`` may have been applied by the platform: a transport failure after
    the request was sent (read timeout, connection reset), or a gateway that lost the platform's answer
    (502/504). A 429 or 503 refuses the request and a 500 reports that the platform failed it: not applied."""
    if not isinstance(err, errors.TransientError) or getattr(err, "request_sent", True) is False:
        return False
    if err.upstream_status is None:
        return True
    return err.upstream_status in (502, 504)


def unsafe_outcome(err: errors.ProviderError, *, call: str, upstream: str) -> errors.ProviderError:
    """For a call that is not safe to repeat: :class:`OutcomeUnknown` when the request may have been applied,
    else ``err`` unchanged."""
    if not may_have_been_applied(err):
        return err
    in_flight = isinstance(err, errors.UpstreamTimeout) or err.upstream_status in (502, 504)
    unknown = errors.OutcomeUnknown(f"{upstream} may have applied the request, but its answer did not come back "
                                    f"({err.message.rstrip('.')}).", call=call, in_flight=in_flight,
                                    upstream_status=err.upstream_status)
    unknown.__cause__ = err
    return unknown
