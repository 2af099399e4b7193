"""The processes of a benchmark, and what /proc says about them.

* :func:`start_simulator` - the Spotler simulator as its own process (``python -m service.sandbox.spotler`` or
  the fault-mixing wrapper ``python -m bench.simulator``), on an ephemeral loopback port.
* :func:`start_service` - the service started exactly as the Procfile's ``web:`` line (read from the file and
  run through ``sh -c`` with ``PORT`` set, ``WEB_CONCURRENCY=2``), ready once ``/health`` answers 200.
* :func:`start_baseline` - the naive proxy of :mod:`bench.baseline_proxy` (or the floor) under gunicorn.
* :class:`Stack` - starts them and stops what it started (by pid / process group, never by name).
* :func:`worker_pids` / :func:`rss_mb` / :class:`RssSampler` / :func:`connections_per_worker` - per-worker
  memory and connections from ``/proc`` and ``ss``.

Everything binds to 127.0.0.1 and every wait has a deadline. The load is :mod:`bench.load`, the tables
:mod:`bench.report`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
API_KEY = "sandbox"  # accepted in sandbox mode when API_KEYS is empty
HOST = "127.0.0.1"

#: variables that would switch the service to live mode or point it elsewhere
_STRIP_PREFIXES = ("SPOTLER_", "PIGGY_", "SPOKI_", "API_KEYS", "SANDBOX_", "DATABASE_URL", "JOB_LEASE", "JOB_WORKERS",
                   "SYNC_DEADLINE", "IN_PROGRESS_WAIT", "AUTO_MIGRATE",
                   "UPSTREAM_", "WEB_CONCURRENCY", "FLASK_THREADS", "LOG_LEVEL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def web_command(tree: Path = ROOT) -> str:
    """The Procfile's ``web:`` command, verbatim (of the checkout ``tree``)."""
    for line in (tree / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line[len("web:"):].strip()
    raise RuntimeError("Procfile has no web: line")


def clean_env(tree: Path = ROOT, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIP_PREFIXES)}
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(tree)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def kill_group(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class Simulator:
    url: str  # the client's base URL: http://127.0.0.1:PORT/integrationservice
    root: str  # http://127.0.0.1:PORT (control endpoints /__sim__/...)
    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stats(self) -> dict:
        return httpx.get(self.root + "/__sim__/stats", timeout=10).json()

    def stop(self) -> None:
        kill_group(self.proc, 10)


def start_simulator(*, latency_ms: float = 0, jitter_ms: float = 0, args: list[str] | tuple[str, ...] = (),
                    module: str = "service.sandbox.spotler", timeout: float = 30.0, pooled: int = 0) -> Simulator:
    """Run the simulator (sandbox credentials, port 0) as its own process; wait for its URL line.

    ``pooled``: that many gunicorn processes on the one port, keep-alive connections (each process has its own
    state and counters); 0: the stock simulator (werkzeug, one process, a new connection per request)."""
    from service.sandbox.launch import SANDBOX_CREDENTIALS

    creds = SANDBOX_CREDENTIALS["spotler"]
    cmd = [PYTHON, "-m", module, "--host", HOST, "--port", "0", "--consumer-key", creds["consumer_key"],
           "--consumer-secret", creds["consumer_secret"], "--latency-ms", str(latency_ms),
           "--jitter-ms", str(jitter_ms), *args]
    if pooled:
        cmd += ["--pooled", str(pooled)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
    url: list[str] = []

    def read() -> None:
        for line in proc.stdout:  # keeps draining after the URL so the pipe never fills
            if not url and line.startswith("SPOTLER_SIMULATOR_URL="):
                url.append(line.split("=", 1)[1].strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not url:
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_group(proc, 5)
            raise RuntimeError(f"simulator did not start: {' '.join(cmd)}")
        time.sleep(0.02)
    base = url[0]
    root = base.split("/integrationservice", 1)[0]
    return Simulator(url=base, root=root, proc=proc)


@dataclass
class Server:
    name: str
    base_url: str
    proc: subprocess.Popen
    log_path: Path
    started_at: float = 0.0
    ready_after: float = 0.0  # seconds from spawn to the first 200 on the readiness path

    @property
    def master_pid(self) -> int:
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        return worker_pids(self.proc.pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        kill_group(self.proc, 30)


def wait_ready(base_url: str, path: str, proc: subprocess.Popen, deadline_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + deadline_s
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{base_url} exited with {proc.returncode}: "
                                   f"{log_path.read_text(errors='replace')[-3000:]}")
            try:
                if client.get(path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base_url}{path} not ready within {deadline_s} s")
            time.sleep(0.05)


def start_service(*, workdir: Path, upstream_url: str | None = None, workers: int = 2,
                  ready_timeout: float = 60.0, tree: Path = ROOT, **env: Any) -> Server:
    """Start the service exactly as the Procfile's ``web:`` line, in sandbox mode, with its own SQLite ledger.

    ``upstream_url``: a running simulator (SANDBOX_UPSTREAM_URL); None lets gunicorn.conf.py start its own.
    Extra keyword arguments become environment variables (e.g. ``JOB_LEASE_SECONDS=5``). ``tree``: the
    checkout whose service to start (another worktree, to compare two versions in one run; this venv).
    """
    port = free_port()
    variables: dict[str, Any] = dict(WEB_CONCURRENCY=workers, PROVIDER="spotler",
                                     DATABASE_URL=f"sqlite:///{workdir}/ledger.db")
    variables.update(env)
    variables["PORT"] = port
    if upstream_url:
        variables["SANDBOX_UPSTREAM_URL"] = upstream_url
    return _spawn("service", ["sh", "-c", "exec " + web_command(tree)], clean_env(tree, **variables), port,
                  workdir, ready_timeout, cwd=tree)


def start_baseline(*, workdir: Path, upstream_url: str, workers: int = 2, threads: int = 32,
                   ready_timeout: float = 30.0, floor: bool | str = False) -> Server:
    """The naive proxy (:mod:`bench.baseline_proxy`) under gunicorn gthread workers, same worker/thread counts
    as the service (WEB_CONCURRENCY=2, FLASK_THREADS=32); with ``floor``, the floor (:mod:`bench.floor_proxy`:
    the proxy plus validation, idempotency, a SQLite ledger write before the call and an access log); with
    ``floor="all"``, the floor with every guarantee of the service's ledger too (``FLOOR_GUARANTEES=all``)."""
    port = free_port()
    name, module = ("floor", "bench.floor_proxy") if floor else ("baseline", "bench.baseline_proxy")
    if floor == "all":
        name = "floor-all"
    cmd = [str(Path(PYTHON).parent / "gunicorn"), f"{module}:app", "-k", "gthread", "-w", str(workers),
           "--threads", str(threads), "--bind", f"{HOST}:{port}", "--keep-alive", "75"]
    env = clean_env(BASELINE_UPSTREAM_URL=upstream_url, FLOOR_DB=str(workdir / f"{name}.db"),
                    FLOOR_GUARANTEES="all" if floor == "all" else "")
    return _spawn(name, cmd, env, port, workdir, ready_timeout)


def _spawn(name: str, cmd: list[str], env: dict, port: int, workdir: Path, ready_timeout: float,
           cwd: Path = ROOT) -> Server:
    """Start a server process in its own session, log to ``workdir/<name>.log``, wait until /health answers."""
    log_path = workdir / f"{name}.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(name, f"http://{HOST}:{port}", proc, log_path, started_at=started)
    try:
        wait_ready(server.base_url, "/health", proc, ready_timeout, log_path)
    except Exception:
        server.stop()
        raise
    server.ready_after = time.monotonic() - started
    return server


DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def temp_postgres_database(admin_url: str | None = None):
    """A fresh PostgreSQL database for one run (dropped afterwards); yields its SQLAlchemy URL.

    ``admin_url`` (default ``BENCH_POSTGRES_URL`` or the local server as the test suite uses it) must be
    allowed to CREATE DATABASE.
    """
    import uuid

    import psycopg

    admin = admin_url or os.environ.get("BENCH_POSTGRES_URL") or DEFAULT_POSTGRES_ADMIN_URL
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stack(contextlib.ExitStack):
    """ExitStack that also owns a temp directory: ``with Stack() as st: sim = st.sim(...)``."""

    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-")
        self.callback(self._tmp.cleanup)
        self.dir = Path(self._tmp.name)

    def sim(self, **kw: Any) -> Simulator:
        s = start_simulator(**kw)
        self.callback(s.stop)
        return s

    def service(self, **kw: Any) -> Server:
        sub = self.dir / f"service-{len(list(self.dir.glob('service-*')))}"
        sub.mkdir()
        s = start_service(workdir=sub, **kw)
        self.callback(s.stop)
        return s

    def baseline(self, **kw: Any) -> Server:
        s = start_baseline(workdir=self.dir, **kw)
        self.callback(s.stop)
        return s


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                out.extend(int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    except OSError:
        pass
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def worker_pids(master_pid: int) -> list[int]:
    """gunicorn's worker processes: the master's children, minus a sandbox simulator it may have started."""
    return sorted(p for p in children(master_pid) if "service.sandbox" not in _cmdline(p))


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def connections_per_worker(port: str | int) -> dict[str, int]:
    """Established connections on the server's port, by the pid holding them (``ss``)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, timeout=10).stdout
    return dict(Counter(re.findall(r"pid=(\d+)", out)))


def rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's peak resident set size so far."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb / 1024


class RssSampler:
    """Samples the RSS of a server's workers (re-discovered every tick: gunicorn may recycle them) and keeps
    the peak per pid (max of the samples and of VmHWM)."""

    def __init__(self, server: Server, interval: float = 0.5) -> None:
        self.server = server
        self.interval = interval
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tick(self) -> None:
        for pid in self.server.worker_pids():
            value = max(x for x in (rss_mb(pid), peak_rss_mb(pid), 0.0) if x is not None)
            if value:
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), value)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()

    def __enter__(self) -> RssSampler:
        self._tick()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._tick()
        self._stop.set()
        self._thread.join(5)

    @property
    def max_mb(self) -> float:
        return max(self.peaks.values(), default=0.0)
