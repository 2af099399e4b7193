"""The real app on a real socket: uvicorn on 127.0.0.1:<ephemeral> in a daemon thread (tests that need the service
reachable by another process or a simulator's own HTTP client)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from service.app import create_app
from service.config import Settings

START_TIMEOUT_S = 20.0


@contextlib.contextmanager
def serve_app(settings: Settings) -> Iterator[tuple[str, object]]:
    """``(base_url, app)`` while the block runs; the app's lifespan ends with it."""
    import uvicorn

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, name="test-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (server.started and server.servers):  # readiness: uvicorn has bound its socket
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
