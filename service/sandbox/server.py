"""Run any WSGI app on loopback in a background thread (tests, sandbox mode) or in the foreground.

    with SimulatorServer(app) as base_url:          # ephemeral port
        requests.get(base_url + "/integrationservice/...")

    server = SimulatorServer(app, port=8081).start()  # returns the server; .url is the base URL
    ...
    server.stop()

    SimulatorServer(app, ssl_context=ctx)            # HTTPS (``service.sandbox.tls``): .url is https://...

Uses werkzeug's ``make_server(threaded=True)``: one thread per connection, daemon threads (a handler
that hangs on purpose never blocks ``stop()``), request logging silenced.

For benchmarks, :func:`serve_pooled` serves the same app under gunicorn's threaded workers instead: keep-alive
connections (werkzeug's server answers ``Connection: close`` to every request, so each upstream call paid a TCP
connect and a new server thread) and, optionally, several processes on the one port (one Python process was
the upstream's GIL ceiling). Each process then has its own state: what one process counts or changes, the
others do not see.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

log = logging.getLogger(__name__)


class QuietRequestHandler(WSGIRequestHandler):
    """No access log on stderr (it would print personal data from paths and queries)."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path.split("?", 1)[0], code)

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's signature
        log.debug(message, *args)


class SimulatorServer:
    def __init__(self, app: Callable, host: str = "127.0.0.1", port: int = 0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (``https://`` with an ssl_context; no trailing slash)."""
        if self._server is None:
            raise RuntimeError("server not started")
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self._server.server_port}"

    def _bind(self) -> BaseWSGIServer:
        server = make_server(self.host, self.port, self.app, threaded=True, request_handler=QuietRequestHandler,
                             ssl_context=self.ssl_context)
        server.daemon_threads = True
        self.port = server.server_port
        self._server = server
        return server

    def start(self) -> SimulatorServer:
        """Bind (port 0 = ephemeral) and serve in a daemon thread. Returns self; see :attr:`url`."""
        if self._server is not None:
            return self
        server = self._bind()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"simulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> str:
        return self.start().url

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def serve_foreground(self, on_ready: Callable[[str], None] | None = None, exit_with_parent: bool = False) -> None:
        """Serve in the calling thread until SIGINT/SIGTERM. ``on_ready(url)`` runs once the port is bound.

        ``exit_with_parent``: also stop when the parent process is gone (checked every second), so that a
        simulator started by a service that was killed does not outlive it."""
        server = self._bind()
        done = threading.Event()

        def _terminate(signum, frame):  # noqa: ARG001
            threading.Thread(target=server.shutdown, daemon=True).start()

        def _watch_parent(parent: int) -> None:
            while not done.wait(1.0):
                if os.getppid() != parent:
                    server.shutdown()
                    return

        try:
            signal.signal(signal.SIGTERM, _terminate)
        except ValueError:  # not in the main thread
            pass
        if exit_with_parent:
            threading.Thread(target=_watch_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
        if on_ready is not None:
            on_ready(self.url)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            done.set()
            server.server_close()
            self._server = None


def serve_pooled(app: Callable, host: str = "127.0.0.1", port: int = 0, *, processes: int = 1, threads: int = 256,
                 on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``app`` in the foreground under gunicorn (gthread workers, HTTP/1.1 keep-alive) until SIGTERM /
    SIGINT: ``processes`` workers on one listening socket, ``threads`` requests at a time in each.
    ``on_ready(url)`` runs in the gunicorn master once the port is bound (port 0 = a free port)."""
    from gunicorn.app.base import BaseApplication

    def when_ready(server) -> None:
        bound_host, bound_port = server.LISTENERS[0].sock.getsockname()[:2]
        if on_ready is not None:
            on_ready(f"http://{bound_host}:{bound_port}")

    class _Pooled(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": processes, "worker_class": "gthread",
                               "threads": threads, "keepalive": 75, "timeout": 120, "accesslog": None,
                               "errorlog": "-", "loglevel": "warning", "control_socket_disable": True,
                               "when_ready": when_ready}.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Callable:
            return app

    _Pooled().run()
