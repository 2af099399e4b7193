"""The gunicorn worker class of the Procfile: ``-k service.workers.BalancedUvicornWorker``.

A plain uvicorn worker accepts every pending connection of the shared listening socket as soon as its event loop
wakes up. Power Automate, a load balancer and our benchmarks keep connections open (keep-alive), so a burst of
new connections stays where it landed: 21/11 or 32/0 across two workers were measured, and the busier worker
(one GIL) queued while the other idled - a p99 of 2.8x the direct call at 32 concurrent callers.

This worker accepts a new connection only while no other live worker holds fewer open connections. Every
worker publishes its count of open connections and a heartbeat on a small board in shared memory (a
``multiprocessing`` array the gunicorn master creates before it forks the first worker; each worker claims a
slot by its pid). Ties accept (the kernel hands the connection to whichever worker calls ``accept`` first);
a worker whose heartbeat is older than :data:`LIVE_SECONDS` does not count, and a connection nobody else
accepted within :data:`MAX_DEFER_SECONDS` is accepted anyway, so a stuck or dead worker never holds new
connections back. Any number of workers (``WEB_CONCURRENCY``), any machine size: the rule is "least
connections", nothing is tuned for a core count.

Every worker also watches its parent: when the gunicorn master is gone (``kill -9``, a crash, the OOM killer),
the worker notices within a tick (0.1 s: its parent pid changed) and stops gracefully - its requests in flight
are answered, the shared listening socket is closed - instead of serving on, unsupervised, and holding the
port (a plain uvicorn worker only looked every ``timeout / 2`` = 65 s, and then only to notify).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import select
import socket
import time
from typing import Any

from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

#: a worker whose heartbeat is older than this is not counted (dead, or stuck in a long pause)
LIVE_SECONDS = 2.0
#: a pending connection is accepted regardless of the counts after this long (nobody else took it)
MAX_DEFER_SECONDS = 0.1
#: how often a worker that may not accept looks again while connections are pending
RECHECK_SECONDS = 0.002

log = logging.getLogger(__name__)


class ConnectionBoard:
    """Open connections and heartbeat per worker, in memory shared by the master and every worker it forks.

    ``slots`` rows of (pid, open connections, heartbeat on the monotonic clock, which all processes of the
    machine share). A worker claims a free row (pid 0, or a pid whose heartbeat is stale) under a lock.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._pid = multiprocessing.RawArray(ctypes.c_long, slots)
        self._conns = multiprocessing.RawArray(ctypes.c_long, slots)
        self._beat = multiprocessing.RawArray(ctypes.c_double, slots)
        self._lock = multiprocessing.Lock()

    def claim(self, pid: int, now: float | None = None) -> int | None:
        """A row for ``pid`` (None when the board is full: that worker then accepts like a plain one)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for i in range(self.slots):
                if self._pid[i] == pid or self._pid[i] == 0 or now - self._beat[i] > LIVE_SECONDS:
                    self._pid[i], self._conns[i], self._beat[i] = pid, 0, now
                    return i
        return None

    def release(self, slot: int, pid: int) -> None:
        with self._lock:
            if self._pid[slot] == pid:
                self._pid[slot], self._conns[slot], self._beat[slot] = 0, 0, 0.0

    def publish(self, slot: int, connections: int, now: float | None = None) -> None:
        self._conns[slot] = connections
        self._beat[slot] = time.monotonic() if now is None else now

    def may_accept(self, slot: int, now: float | None = None) -> bool:
        """True when no other live worker holds fewer open connections than ``slot``."""
        now = time.monotonic() if now is None else now
        mine = self._conns[slot]
        pids, conns, beats = self._pid, self._conns, self._beat
        for i in range(self.slots):
            if i != slot and pids[i] and conns[i] < mine and now - beats[i] <= LIVE_SECONDS:
                return False
        return True

    def counts(self) -> dict[int, int]:
        """pid -> open connections of the rows in use (for logs and tests)."""
        return {self._pid[i]: self._conns[i] for i in range(self.slots) if self._pid[i]}


class _BalancedListener:
    """Accepts connections from one listening socket for a uvicorn server, one at a time, while the board says
    this worker may. Looks like an ``asyncio.Server`` to uvicorn's shutdown (``close`` / ``wait_closed``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol_factory, ssl, board,
                 slot: int, counter: _Counter) -> None:
        self.loop = loop
        self.sock = sock
        self.protocol_factory = protocol_factory
        self.ssl = ssl
        self.board = board
        self.slot = slot
        self.counter = counter
        self.closed = False
        self._blocked_since: float | None = None
        self._watching = False
        self._tasks: set[asyncio.Task] = set()
        sock.setblocking(False)
        self._watch()

    def _watch(self) -> None:
        if not self.closed and not self._watching:
            self.loop.add_reader(self.sock.fileno(), self._on_readable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self.loop.remove_reader(self.sock.fileno())
            self._watching = False

    def _on_readable(self) -> None:
        while not self.closed:
            now = time.monotonic()
            if not self.board.may_accept(self.slot, now):
                if self._blocked_since is None:
                    self._blocked_since = now
                if now - self._blocked_since < MAX_DEFER_SECONDS:
                    self._unwatch()
                    self.loop.call_later(RECHECK_SECONDS, self._recheck)
                    return
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                self._blocked_since = None
                return
            except OSError:  # EMFILE, ECONNABORTED...: try again on the next wake-up
                return
            self._blocked_since = None
            conn.setblocking(False)
            self.counter.opened()
            task = self.loop.create_task(self._serve(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _recheck(self) -> None:
        if self.closed:
            return
        with contextlib.suppress(OSError, ValueError):
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:  # the other workers took them: wait for the next one
                self._blocked_since = None
        self._watch()
        if self._blocked_since is not None:
            self._on_readable()

    async def _serve(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.protocol_factory, sock=conn, ssl=self.ssl)
        except Exception:  # noqa: BLE001 - a failed TLS handshake or a reset: the connection is gone
            self.counter.closed()
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self.closed = True
        self._unwatch()

    async def wait_closed(self) -> None:
        return None


class _Counter:
    """This worker's open connections, published to the board on every change."""

    def __init__(self, board: ConnectionBoard, slot: int) -> None:
        self.board = board
        self.slot = slot
        self.value = 0

    def opened(self) -> None:
        self.value += 1
        self.board.publish(self.slot, self.value)

    def closed(self) -> None:
        self.value = max(0, self.value - 1)
        self.board.publish(self.slot, self.value)


class ParentWatchingServer(Server):
    """uvicorn's Server that stops gracefully once its parent (the gunicorn master, ``ppid``) is gone."""

    def __init__(self, config, ppid: int) -> None:
        super().__init__(config)
        self.ppid = ppid

    async def on_tick(self, counter: int) -> bool:
        if os.getppid() != self.ppid and not self.should_exit:
            log.warning("the gunicorn master (pid %s) is gone: worker %s stops", self.ppid, os.getpid())
            self.should_exit = True
        return await super().on_tick(counter)


class BalancedServer(ParentWatchingServer):
    """uvicorn's Server, accepting through :class:`_BalancedListener` when given gunicorn's sockets."""

    def __init__(self, config, ppid: int, board: ConnectionBoard, slot: int) -> None:
        super().__init__(config, ppid)
        self.board = board
        self.slot = slot
        self.counter = _Counter(board, slot)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None:  # not under gunicorn: nothing to balance
            return await super().startup(sockets)
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            raise SystemExit(3)
        config = self.config
        counter = self.counter

        def create_protocol(_loop=None):
            protocol = config.http_protocol_class(config=config, server_state=self.server_state,
                                                  app_state=self.lifespan.state, _loop=_loop)
            lost = protocol.connection_lost

            def connection_lost(exc):
                counter.closed()
                lost(exc)

            protocol.connection_lost = connection_lost
            return protocol

        loop = asyncio.get_running_loop()
        self.servers = [_BalancedListener(loop, sock, create_protocol, config.ssl, self.board, self.slot, counter)
                        for sock in sockets]
        self.started = True

    async def on_tick(self, counter: int) -> bool:
        self.board.publish(self.slot, self.counter.value)  # heartbeat (every 0.1 s)
        return await super().on_tick(counter)


class BalancedUvicornWorker(UvicornWorker):
    """uvicorn worker that takes a new connection only while no other live worker holds fewer (module doc)."""

    _board: ConnectionBoard | None = None  # created in the gunicorn master, inherited by every fork

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # runs in the master, before the fork
        if BalancedUvicornWorker._board is None:
            BalancedUvicornWorker._board = ConnectionBoard(max(64, 4 * int(self.cfg.workers or 1)))

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        board = BalancedUvicornWorker._board
        pid = os.getpid()
        slot = board.claim(pid) if board is not None else None
        if slot is None:  # no board (or full): accepts like a plain uvicorn worker
            server: ParentWatchingServer = ParentWatchingServer(config=self.config, ppid=self.ppid)
        else:
            server = BalancedServer(config=self.config, ppid=self.ppid, board=board, slot=slot)
        self._install_sigquit_handler()
        try:
            await server.serve(sockets=self.sockets)
        finally:
            if slot is not None:
                board.release(slot, pid)
        if not server.started:
            from gunicorn.arbiter import Arbiter

            raise SystemExit(Arbiter.WORKER_BOOT_ERROR)
