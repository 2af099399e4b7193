"""Foundation behaviour through the whole ASGI stack (Connexion test client)."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.providers.base import Provider
from tests.conftest import API_KEY

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def assert_problem(resp, status: int, code: str):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert PROBLEM_KEYS <= body.keys(), body
    assert body["status"] == status
    assert body["code"] == code
    return body


class ControlledProvider(Provider):
    """Test double for the platform (the point here is our HTTP layer, not the upstream): ``ping`` runs
    a function the test supplies."""

    name = "spotler"

    def __init__(self, ping):
        self._ping = ping

    def ping(self):
        return self._ping()


def use_provider(client, provider):
    client.app_.runtime._provider = provider


def test_health_is_public_and_reports_mode(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert {k: body[k] for k in ("status", "provider", "mode")} == {"status": "ok", "provider": "spotler", "mode": "sandbox"}
    assert "StartAutomation" in body["supportedOperations"]


def test_spec_and_ui_are_served(client):
    spec = client.get("/swagger.json")
    assert spec.status_code == 200 and spec.json()["swagger"] == "2.0"
    ui = client.get("/ui/")
    assert ui.status_code == 200 and "swagger-ui" in ui.text.lower()


@pytest.mark.parametrize("headers, detail_part", [
    ({}, "No authorization token provided"),
    ({"X-API-Key": "wrong"}, "not valid"),
    ({"X-API-Key": API_KEY + "x"}, "not valid"),
])
def test_missing_or_wrong_key_is_401_problem(client, headers, detail_part):
    body = assert_problem(client.get("/capabilities", headers=headers), 401, "UNAUTHORIZED")
    assert detail_part in body["detail"]
    assert "X-API-Key" in body["detail"]


def test_valid_key_is_accepted(client, auth):
    use_provider(client, ControlledProvider(lambda: {"account": "acme"}))
    r = client.get("/connection", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok" and r.json()["account"] == "acme"


def test_sandbox_without_api_keys_accepts_sandbox_key(make_client, settings):
    c = make_client(settings.with_(api_keys=()))
    use_provider(c, ControlledProvider(lambda: {}))
    assert c.get("/connection", headers={"X-API-Key": "sandbox"}).status_code == 200
    assert_problem(c.get("/connection", headers={"X-API-Key": API_KEY}), 401, "UNAUTHORIZED")


def test_unknown_path_is_404_problem(client):
    body = assert_problem(client.get("/no/such/thing"), 404, "NOT_FOUND")
    assert body["requestId"]


def test_wrong_method_is_405_problem(client):
    r = client.delete("/health")
    assert_problem(r, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in r.headers["allow"]


def test_unknown_query_parameter_is_400_naming_it(client, auth):
    body = assert_problem(client.get("/capabilities?bogus=1", headers=auth), 400, "UNKNOWN_PARAMETER")
    assert "bogus" in body["detail"]


def test_body_over_limit_is_413_problem(make_client, settings):
    c = make_client(settings.with_(max_body_bytes=2048))
    r = c.post("/health", content=b"{" + b" " * 5000 + b"}", headers={"content-type": "application/json"})
    assert_problem(r, 413, "PAYLOAD_TOO_LARGE")


def test_unexpected_exception_is_500_with_request_id_and_no_trace(client, auth):
    def boom():
        raise RuntimeError("secret internals at line 42")

    use_provider(client, ControlledProvider(boom))
    r = client.get("/connection", headers={**auth, "X-Request-ID": "req-500-check"})
    body = assert_problem(r, 500, "INTERNAL_ERROR")
    assert body["requestId"] == "req-500-check"
    assert "req-500-check" in body["detail"]
    assert "secret internals" not in r.text and "Traceback" not in r.text


@pytest.mark.parametrize("header", ["x-ms-client-tracking-id", "x-ms-correlation-id", "X-Request-ID"])
def test_request_id_is_taken_from_caller_and_echoed(client, header):
    r = client.get("/health", headers={header: "abc-123_XYZ"})
    assert r.headers["x-request-id"] == "abc-123_XYZ"


def test_request_id_is_generated_when_absent_and_unique(client):
    a = client.get("/health").headers["x-request-id"]
    b = client.get("/health").headers["x-request-id"]
    assert a and b and a != b


def test_unsafe_request_id_is_replaced(client):
    r = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"


def test_logs_are_json_with_request_id_and_ms_headers(client, capsys):
    client.get("/health", headers={"X-Request-ID": "log-check-1", "x-ms-workflow-run-id": "run-7",
                                   "x-ms-apihub-authorization-token": "sekrit"})
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    mine = [x for x in lines if x.get("requestId") == "log-check-1"]
    assert mine, lines
    access = [x for x in mine if x["msg"] == "request"][0]
    assert access["status"] == 200 and access["path"] == "/health"
    assert access["msHeaders"]["x-ms-workflow-run-id"] == "run-7"
    assert access["msHeaders"]["x-ms-apihub-authorization-token"] == "[redacted]"
    assert "sekrit" not in json.dumps(lines)


def test_provider_errors_become_mapped_problems(client, auth):
    from service.providers.errors import UpstreamTimeout

    def slow():
        raise UpstreamTimeout("Spotler did not answer within 20 s.")

    use_provider(client, ControlledProvider(slow))
    r = client.get("/connection", headers=auth)
    assert_problem(r, 504, "UPSTREAM_TIMEOUT")
    assert int(r.headers["retry-after"]) > 0


@pytest.mark.parametrize("threads", [24])
def test_flask_thread_pool_lets_slow_requests_overlap(make_client, settings, auth, threads):
    """N requests that block in the handler until all N are inside it at once: with Connexion's fixed
    10-thread pool this deadlocks (barrier times out); with FLASK_THREADS >= N they all pass."""
    c = make_client(settings.with_(flask_threads=threads))
    barrier = threading.Barrier(threads, timeout=20)
    inside = []

    def wait_for_all():
        inside.append(threading.get_ident())
        barrier.wait()
        return {}

    use_provider(c, ControlledProvider(wait_for_all))
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda _: c.get("/connection", headers=auth).status_code, range(threads)))
    assert results == [200] * threads
    assert len(set(inside)) == threads  # each request ran on its own worker thread, concurrently


def test_default_pool_of_ten_would_not_overlap_more_than_ten(make_client, settings, auth):
    """The same barrier with 11 parties on a 10-thread pool cannot complete: proves the knob matters."""
    c = make_client(settings.with_(flask_threads=10))
    barrier = threading.Barrier(11, timeout=2)

    def wait_for_all():
        barrier.wait()
        return {}

    use_provider(c, ControlledProvider(wait_for_all))
    with ThreadPoolExecutor(11) as pool:
        codes = list(pool.map(lambda _: c.get("/connection", headers=auth).status_code, range(11)))
    assert 500 in codes  # the barrier broke: never more than 10 handlers ran at once


def test_capabilities_lists_every_operation(client, auth):
    class Partial(ControlledProvider):
        unsupported = {"AddTag": "No tags here."}

    use_provider(client, Partial(lambda: {}))
    body = client.get("/capabilities", headers=auth).json()
    ops = {o["operationId"]: o for o in body["operations"]}
    assert ops["AddTag"] == {"operationId": "AddTag", "category": "tags", "supported": False, "reason": "No tags here."}
    assert ops["StartAutomation"]["supported"] is True
    health = client.get("/health").json()
    assert health["supportedOperations"] == [o for o, v in ops.items() if v["supported"]]


def test_no_logging_handler_duplication(make_client, settings):
    make_client(settings)
    make_client(settings)
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "marketing-actions-json"]
    assert len(ours) == 1
