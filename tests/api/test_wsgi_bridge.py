"""The ASGI -> WSGI bridge: one thread-pool call per request, and an early answer past the deadline when the
app offers one (the job runner's 202 while the work goes on in the request's thread)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from service.api.wsgi_bridge import DEADLINE_KEY, BufferedWSGIBridge

WAIT = 30


def call(bridge: BufferedWSGIBridge, body: bytes = b"{}") -> tuple[int, dict[str, str], bytes]:
    scope = {"type": "http", "method": "POST", "path": "/x", "root_path": "", "query_string": b"",
             "http_version": "1.1", "scheme": "http", "server": ("testserver", 80), "client": ("127.0.0.1", 5),
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(asyncio.wait_for(bridge(scope, receive, send), WAIT))
    start, body_msg = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body_msg["body"]


def slow_app(release: threading.Event, early=None, done: list | None = None):
    """A WSGI app that offers ``early`` (if given) and answers 200 once ``release`` is set."""
    class Early:  # the EarlyAnswer the app holds while it works
        def answer_now(self):
            return early()

    def app(environ, start_response):
        deadline = environ[DEADLINE_KEY]
        if early is not None:
            deadline.hold(Early())
        release.wait(WAIT)
        deadline.release()
        start_response("200 OK", [("Content-Type", "application/json")])
        if done is not None:
            done.append(threading.get_ident())
        return [json.dumps({"own": True, "body": environ["wsgi.input"].read().decode()}).encode()]
    return app


def test_the_apps_answer_within_the_deadline_is_sent_as_it_is():
    release = threading.Event()
    release.set()
    bridge = BufferedWSGIBridge(slow_app(release, early=lambda: (202, {"X": "early"}, b"{}")), workers=2,
                                deadline_seconds=5)
    status, headers, body = call(bridge, b'{"a": 1}')
    assert status == 200 and json.loads(body) == {"own": True, "body": '{"a": 1}'} and "x" not in headers
    bridge.close()


def test_past_the_deadline_the_offered_early_answer_is_sent_and_the_apps_own_is_dropped():
    release, done = threading.Event(), []
    asked = []

    def early():
        asked.append(threading.get_ident())
        return 202, {"Content-Type": "application/json", "Location": "http://testserver/jobs/j1/result"}, b'{"e":1}'

    bridge = BufferedWSGIBridge(slow_app(release, early, done), workers=2, deadline_seconds=0.1)
    status, headers, body = call(bridge)
    assert status == 202 and headers["location"] == "http://testserver/jobs/j1/result" and body == b'{"e":1}'
    assert headers["content-length"] == "7"
    assert asked and asked[0] != threading.get_ident()  # asked off the event loop's thread
    assert not done  # the app is still working
    release.set()
    bridge.executor.shutdown(wait=True)  # the app finishes its work; its answer goes nowhere, no error
    assert len(done) == 1


def test_when_the_work_is_finishing_the_bridge_waits_for_the_apps_own_answer():
    release = threading.Event()

    def early():
        release.set()  # "finishing": nothing to give up
        return None

    bridge = BufferedWSGIBridge(slow_app(release, early), workers=2, deadline_seconds=0.05)
    status, _, body = call(bridge)
    assert status == 200 and json.loads(body)["own"] is True
    bridge.close()


def test_an_early_answer_that_fails_is_raised_to_the_error_handlers_and_the_app_finishes_quietly():
    release, done = threading.Event(), []

    def early():
        raise RuntimeError("ledger away")

    bridge = BufferedWSGIBridge(slow_app(release, early, done), workers=2, deadline_seconds=0.05)
    with pytest.raises(RuntimeError, match="ledger away"):
        call(bridge)
    release.set()
    bridge.executor.shutdown(wait=True)
    assert len(done) == 1


def test_a_request_that_offers_nothing_is_awaited_past_the_deadline():
    release = threading.Event()
    timer = threading.Timer(0.3, release.set)
    timer.start()
    bridge = BufferedWSGIBridge(slow_app(release), workers=2, deadline_seconds=0.05)
    status, _, body = call(bridge)
    assert status == 200 and json.loads(body)["own"] is True
    timer.join()
    bridge.close()


def test_without_a_deadline_the_environ_has_none():
    seen = []

    def app(environ, start_response):
        seen.append(DEADLINE_KEY in environ)
        start_response("204 No Content", [])
        return []

    bridge = BufferedWSGIBridge(app, workers=1)
    status, _, _ = call(bridge)
    assert status == 204 and seen == [False]
    bridge.close()
