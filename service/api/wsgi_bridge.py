"""ASGI -> WSGI bridge for the Flask app behind Connexion: one thread-pool call per request.

Connexion 3.3's FlaskApp serves Flask through ``a2wsgi.WSGIMiddleware``, which hops between the event loop and
the worker thread for every read of the request body and every chunk of the answer (``run_coroutine_threadsafe``
plus an ``asyncio.Queue`` per request). Our bodies are small and capped (``MAX_BODY_BYTES``, enforced by the
request middleware before this point) and our answers are JSON documents, so this bridge reads the whole body
on the event loop, runs the WSGI app *and* collects its answer in ONE call on the thread pool, and sends the
buffered answer. Same environ as a2wsgi (``asgi.scope`` included), the context variables of the request
(request id, runtime) copied into the thread.

**An answer before the app is done** (``deadline_seconds``): every request gets a :class:`Deadline` in its
environ (``DEADLINE_KEY``). A write action whose work runs in the request's own thread (the job runner's
``RunningCall``) holds there an :class:`EarlyAnswer` while the work runs: after ``deadline_seconds`` the bridge
asks it (``answer_now()``, off the event loop), and if it hands back an answer - the job runner's 202 with its
``Location`` - the bridge sends that one, while the thread goes on with the work and its own, later answer is
dropped. Requests that hold nothing there (reads, work on the runner's own threads) are simply awaited.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

#: where a request's :class:`Deadline` is in its WSGI environ
DEADLINE_KEY = "marketing_actions.deadline"
#: how often the bridge looks again, after the deadline, for a request whose early answer is not ready yet
_LOOK_AGAIN_SECONDS = 0.5


class _Answer:
    __slots__ = ("status", "headers", "body", "exc_info")

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.exc_info = None

    @classmethod
    def of(cls, status: int, headers: dict[str, str], body: bytes) -> _Answer:
        answer = cls()
        answer.status = status
        answer.headers = [(k.lower().encode("latin1"), str(v).encode("latin1")) for k, v in headers.items()
                          if k.lower() != "content-length"]
        answer.headers.append((b"content-length", str(len(body)).encode("latin1")))
        answer.body = [body]
        return answer


class EarlyAnswer(Protocol):
    """What an app holds in its :class:`Deadline` while it can give up waiting for its work."""

    def answer_now(self) -> tuple[int, dict[str, str], bytes] | None:
        """``(status, headers, body)`` to send now, or None when the work is finishing anyway and its own answer
        is moments away."""


class Deadline:
    """The app's way to answer before its thread is done (module doc): ``hold`` while the work runs,
    ``release`` when it is done."""

    __slots__ = ("early",)

    def __init__(self) -> None:
        self.early: EarlyAnswer | None = None

    def hold(self, early: EarlyAnswer) -> None:
        self.early = early

    def release(self) -> None:
        self.early = None


def build_environ(scope: dict, body: bytes) -> dict:
    """The WSGI environ of an ASGI HTTP scope (as a2wsgi builds it), the body already read."""
    script_name = scope.get("root_path", "").encode("utf8").decode("latin1")
    path_info = scope["path"].encode("utf8").decode("latin1")
    if path_info.startswith(script_name):
        path_info = path_info[len(script_name):]
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "asgi.scope": scope,
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope["query_string"].decode("ascii"),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or 0),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stdout,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client is not None:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin1")
        if name == "content-length":
            key = "CONTENT_LENGTH"
        elif name == "content-type":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin1")
        if key in environ:
            value = environ[key] + "," + value
        environ[key] = value
    return environ


class BufferedWSGIBridge:
    """ASGI app serving a WSGI app (module doc); ``workers`` threads run the WSGI app."""

    def __init__(self, app, workers: int = 32, deadline_seconds: float | None = None) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="WSGI")
        self.deadline_seconds = deadline_seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        environ = build_environ(scope, b"".join(chunks))
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        deadline = None
        if self.deadline_seconds is not None:  # in the environ before the app's thread can look for it
            deadline = environ[DEADLINE_KEY] = Deadline()
        future = loop.run_in_executor(self.executor, context.run, self._run, environ)
        answer = await (future if deadline is None else self._in_time(loop, future, deadline))
        await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        await send({"type": "http.response.body", "body": b"".join(answer.body)})
        if answer.exc_info is not None:  # as a2wsgi: the app reported an error along with its answer
            raise answer.exc_info[1].with_traceback(answer.exc_info[2])

    async def _in_time(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future, deadline: Deadline) -> _Answer:
        """The app's answer; past the deadline, its early answer if it offers one (module doc)."""
        wait = self.deadline_seconds
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(future), wait)
            except asyncio.TimeoutError:
                pass
            early = deadline.early
            if early is None:  # nothing to give up (yet): keep waiting, and look again now and then
                wait = _LOOK_AGAIN_SECONDS
                continue
            try:
                parts = await loop.run_in_executor(None, early.answer_now)
            except BaseException:  # e.g. the ledger is away: Connexion's error handlers answer it (a 503)
                future.add_done_callback(_dropped)
                raise
            if parts is None:  # the work is finishing: its own answer comes next
                return await future
            future.add_done_callback(_dropped)
            return _Answer.of(*parts)

    def _run(self, environ: dict) -> _Answer:
        answer = _Answer()

        def start_response(status: str, headers, exc_info=None):
            answer.exc_info = exc_info
            answer.status = int(status.split(" ", 1)[0])
            answer.headers = [(k.strip().encode("latin1").lower(), v.strip().encode("latin1")) for k, v in headers]
            return answer.body.append

        iterable = self.app(environ, start_response)
        try:
            for chunk in iterable:
                if chunk:
                    answer.body.append(chunk)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        return answer

    def close(self) -> None:
        self.executor.shutdown(wait=False)


def _dropped(future: asyncio.Future) -> None:
    """The app's own answer after an early one was sent: nothing to send; an error is retrieved (not logged as
    "never retrieved": the work's outcome is in the ledger)."""
    if not future.cancelled():
        future.exception()
