"""The shared session factory and error mapping (service.providers.http), against a tiny loopback app."""

from __future__ import annotations

import email.utils
import socket
import time

import pytest
import requests

from service.providers import errors
from service.providers.http import (
    HttpSettings,
    LazySession,
    build_session,
    error_for_status,
    map_request_exception,
    parse_retry_after,
    worst_case_seconds,
)
from service.sandbox.faults import FaultInjector
from service.sandbox.server import SimulatorServer


class Counting:
    """A WSGI app that answers 200 'ok' and counts calls per method."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        self.calls[method] = self.calls.get(method, 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]


@pytest.fixture
def upstream():
    app = Counting()
    faults = FaultInjector(app)
    with SimulatorServer(faults) as url:
        yield url, app, faults


FAST = HttpSettings(connect_timeout=1, read_timeout=1, max_retries=2, backoff_factor=0.01, backoff_jitter=0,
                    retry_after_max=2)


def _call(session, settings, method, url):
    try:
        return session.request(method, url, timeout=settings.timeout)
    except requests.RequestException as exc:
        raise map_request_exception(exc, upstream="Test") from exc


def test_settings_validate_and_bound_the_worst_case():
    with pytest.raises(ValueError):
        HttpSettings(read_timeout=0)
    with pytest.raises(ValueError):
        HttpSettings(max_retries=-1)
    default = HttpSettings()
    assert default.timeout == (3.05, 20.0)
    assert worst_case_seconds(default) < 120  # Power Automate's synchronous limit
    assert worst_case_seconds(HttpSettings(max_retries=0)) < worst_case_seconds(default)


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), (" 0 ", 0.0), ("1.5", 1.5), ("soon", None), ("", None),
                                                 (None, None)])
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after(when) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after(past) == 0.0


@pytest.mark.parametrize(("status", "cls"), [
    (400, errors.InvalidInput), (401, errors.AuthFailed), (403, errors.Forbidden), (404, errors.NotFound),
    (409, errors.Rejected), (417, errors.Rejected), (429, errors.RateLimited), (500, errors.Unavailable),
    (503, errors.Unavailable), (504, errors.UpstreamTimeout), (302, errors.ProviderError),
])
def test_error_for_status(status, cls):
    err = error_for_status(status, "msg", error_type="X", retry_after=4)
    assert type(err) is cls
    assert (err.upstream_status, err.error_type, err.message) == (status, "X", "msg")
    if isinstance(err, errors.TransientError):
        assert err.retry_after == 4


def test_idempotent_get_is_retried_on_503(upstream):
    url, app, faults = upstream
    faults.configure(fail_rate=1, fail_status=503, retry_after=0, times=2)
    session = build_session(FAST)
    assert _call(session, FAST, "GET", url + "/x").status_code == 200
    assert faults.stats()["seen"] == 3
    assert app.calls == {"GET": 1}


def test_post_is_not_retried_on_status(upstream):
    url, app, faults = upstream
    faults.configure(fail_rate=1, fail_status=503, retry_after=0, times=1)
    session = build_session(FAST)
    assert _call(session, FAST, "POST", url + "/x").status_code == 503
    assert faults.stats()["seen"] == 1


def test_retries_are_capped_then_the_last_answer_is_returned(upstream):
    url, app, faults = upstream
    faults.configure(fail_rate=1, fail_status=500)
    session = build_session(FAST)
    assert _call(session, FAST, "GET", url + "/x").status_code == 500
    assert faults.stats()["seen"] == FAST.max_retries + 1


def test_long_retry_after_is_not_slept(upstream):
    url, app, faults = upstream
    faults.configure(fail_rate=1, fail_status=429, retry_after=60)
    session = build_session(FAST)
    started = time.monotonic()
    resp = _call(session, FAST, "GET", url + "/x")
    assert time.monotonic() - started < 1
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "60"
    assert faults.stats()["seen"] == 1


def test_read_timeout_is_not_retried_and_maps_to_upstream_timeout(upstream):
    url, app, faults = upstream
    faults.configure(hang_rate=1, hang_seconds=3, hang_then="fail")
    settings = HttpSettings(connect_timeout=1, read_timeout=0.3, max_retries=3, backoff_factor=0.01)
    session = build_session(settings)
    started = time.monotonic()
    with pytest.raises(errors.UpstreamTimeout) as info:
        _call(session, settings, "GET", url + "/x")
    faults.release_hangs()
    assert time.monotonic() - started < 1.5
    assert faults.stats()["seen"] == 1
    assert info.value.request_sent is True


def test_reset_maps_to_unavailable(upstream):
    url, app, faults = upstream
    faults.configure(reset_rate=1)
    session = build_session(HttpSettings(max_retries=0))
    with pytest.raises(errors.Unavailable) as info:
        _call(session, HttpSettings(), "POST", url + "/x")
    assert info.value.request_sent is True


def test_refused_connection_maps_to_unavailable_not_sent():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    session = build_session(FAST)
    with pytest.raises(errors.Unavailable) as info:
        _call(session, FAST, "POST", f"http://127.0.0.1:{port}/x")
    assert info.value.request_sent is False


def test_malformed_url_is_a_configuration_error():
    with pytest.raises(errors.ProviderError) as info:
        _call(build_session(FAST), FAST, "GET", "not a url")
    assert info.value.code == "UPSTREAM_MISCONFIGURED"


def test_session_defaults(upstream):
    url, _, _ = upstream
    session = build_session(HttpSettings(pool_maxsize=7, user_agent="ua/1"), headers={"Accept": "application/json"})
    adapter = session.get_adapter("http://x")
    assert adapter._pool_maxsize == 7
    assert adapter.max_retries.allowed_methods == frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
    assert session.headers["User-Agent"] == "ua/1"
    assert session.headers["Accept"] == "application/json"
    assert session.trust_env is False


def test_lazy_session_is_built_once_per_process(monkeypatch):
    lazy = LazySession("t", FAST)
    first = lazy.get()
    assert lazy.get() is first
    import service.providers.http as http_mod

    monkeypatch.setattr(http_mod.os, "getpid", lambda: -1)  # as if we were in a forked worker
    assert lazy.get() is not first
    lazy.close()


def test_a_connect_timeout_says_timed_out_and_where():
    """No loopback server can be made to hang in connect on demand: the exception requests raises for one is built
    as requests builds it (urllib3's ConnectTimeoutError as the reason, the prepared request attached)."""
    from urllib3.exceptions import ConnectTimeoutError

    request = requests.Request("GET", "https://api.example.test:8443/v1/contacts?key=abc").prepare()
    exc = requests.exceptions.ConnectTimeout(ConnectTimeoutError(None, "timed out"), request=request)
    err = map_request_exception(exc, upstream="Spotler")
    assert isinstance(err, errors.Unavailable) and err.request_sent is False
    assert err.message == "Spotler could not be reached: the connection to api.example.test:8443 timed out."
