"""The generic fault-injection middleware, over real loopback sockets."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from service.sandbox.faults import FaultConfig, FaultInjector
from service.sandbox.server import SimulatorServer


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.paths.append(environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]


@pytest.fixture
def env():
    app = Recorder()
    faults = FaultInjector(app, stats_provider=lambda: {"app_calls": len(app.paths)},
                           error_body={"errorType": "BACKEND_EXCEPTION", "message": "boom"})
    with SimulatorServer(faults) as url:
        yield url, app, faults


def get(url, **kw):
    return requests.get(url, timeout=kw.pop("timeout", 3), **kw)


@pytest.mark.parametrize("bad", [
    {"fail_rate": 1.5}, {"fail_rate": 0.6, "hang_rate": 0.6}, {"fail_status": 200}, {"hang_then": "explode"},
    {"reset_phase": "during"}, {"latency_ms": -1}, {"times": -1}, {"path_regex": "("},
])
def test_invalid_config_is_refused(bad):
    with pytest.raises(ValueError):
        FaultConfig(**bad)
    with pytest.raises(ValueError):
        FaultConfig.from_dict({"nonsense": 1})


def test_no_faults_by_default(env):
    url, app, faults = env
    assert get(url + "/a").status_code == 200
    assert faults.stats() == {"seen": 1, "injected": {}}


def test_latency_with_jitter(env):
    url, app, faults = env
    faults.configure(latency_ms=200, jitter_ms=50, seed=1)
    started = time.monotonic()
    assert get(url + "/a").status_code == 200
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 1.0
    assert faults.stats()["injected"]["latency"] == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_failures_with_status_and_retry_after(env, status):
    url, app, faults = env
    faults.configure(fail_rate=1, fail_status=status, retry_after=7, times=2)
    answers = [get(url + "/a") for _ in range(3)]
    assert [r.status_code for r in answers] == [status, status, 200]
    assert answers[0].json() == {"errorType": "BACKEND_EXCEPTION", "message": "boom"}
    assert answers[0].headers.get("Retry-After") == ("7" if status in (429, 503) else None)
    assert app.paths == ["GET /a"]  # failures never reached the app


def test_fail_rate_is_a_rate(env):
    url, app, faults = env
    faults.configure(fail_rate=0.5, fail_status=503, seed=42)
    codes = [get(url + "/a").status_code for _ in range(40)]
    assert 5 <= codes.count(503) <= 35
    assert codes.count(200) == len(app.paths)


def test_reset_before_closes_without_answer_and_skips_the_app(env):
    url, app, faults = env
    faults.configure(reset_rate=1, times=1)
    with pytest.raises(requests.ConnectionError):
        get(url + "/a")
    assert app.paths == []
    assert get(url + "/a").status_code == 200


def test_reset_after_runs_the_app_then_drops_the_answer(env):
    url, app, faults = env
    faults.configure(reset_rate=1, reset_phase="after", times=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(url + "/do", json={}, timeout=3)
    assert app.paths == ["POST /do"]


def test_hang_past_the_client_timeout_then_proceed(env):
    url, app, faults = env
    faults.configure(hang_rate=1, hang_seconds=10, times=1)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        get(url + "/slow", timeout=(1, 0.3))
    assert time.monotonic() - started < 1.5
    assert app.paths == []
    faults.release_hangs()
    deadline = time.monotonic() + 3
    while not app.paths and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.paths == ["GET /slow"]  # the hung request was handled after the client gave up


def test_filters_by_method_and_path(env):
    url, app, faults = env
    faults.configure(fail_rate=1, fail_status=500, methods=["post"], path_prefix="/api")
    assert get(url + "/api/x").status_code == 200
    assert requests.post(url + "/other", timeout=3).status_code == 200
    assert requests.post(url + "/api/x", timeout=3).status_code == 500
    faults.configure(fail_rate=1, fail_status=500, path_regex=r"/items/\d+$")
    assert get(url + "/items/12").status_code == 500
    assert get(url + "/items/ab").status_code == 200


def test_control_endpoints(env):
    url, app, faults = env
    r = requests.post(url + "/__sim__/faults", json={"fail_rate": 1, "fail_status": 429, "times": 1}, timeout=3)
    assert r.status_code == 200 and r.json()["fail_status"] == 429
    assert get(url + "/__sim__/faults").json()["fail_rate"] == 1  # control paths are never faulted
    assert get(url + "/a").status_code == 429
    stats = get(url + "/__sim__/stats").json()
    assert stats["faults"] == {"seen": 1, "injected": {"status_429": 1}}
    assert stats["app_calls"] == 0
    bad = requests.post(url + "/__sim__/faults", json={"fail_rate": 3}, timeout=3)
    assert bad.status_code == 400
    assert requests.delete(url + "/__sim__/faults", timeout=3).json()["fail_rate"] == 0
    assert get(url + "/__sim__/other").status_code == 200  # unknown control paths go to the app
    assert app.paths == ["GET /__sim__/other"]


def test_server_context_and_stop():
    app = Recorder()
    server = SimulatorServer(app).start()
    url = server.url
    assert get(url + "/x").status_code == 200
    server.stop()
    with pytest.raises(requests.ConnectionError):
        get(url + "/x", timeout=(0.5, 0.5))
    with pytest.raises(RuntimeError):
        _ = server.url
