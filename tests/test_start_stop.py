"""A start that fails leaves no process behind: not the service, not its sandbox simulator. (The clean stop of a
running service is checked at the end of tests/test_procfile_e2e.py.)"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.boot import EXIT_CONFIG

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 30


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPOTLER_", "PIGGY_", "SPOKI_", "API_KEYS", "SANDBOX_", "DATABASE_URL"))}
    env.update({"PROVIDER": "spotler", "ENV_FILE": os.devnull, "WEB_CONCURRENCY": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", **extra})
    return env


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie still answers kill(0): it is gone when its state says so
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return all(_gone(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()
               and _pgid(int(p.name)) == pgid)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {DEADLINE_S} s")
        time.sleep(0.05)


def _web_command() -> str:
    return next(line[len("web:"):].strip() for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("web:"))


def test_port_in_use_stops_at_once_with_one_line_and_no_process_left():
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(["sh", "-c", "exec " + _web_command()], cwd=ROOT, env=_env(PORT=str(port)),
                              capture_output=True, text=True, timeout=120, start_new_session=True)
        # the process group of that start (its session): nothing of it may remain
        assert proc.returncode == EXIT_CONFIG
        output = (proc.stdout + proc.stderr).strip()
        assert output.splitlines() == [output] and f"port {port} is in use" in output, output
        out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
        assert not [line for line in out.splitlines() if f":{port}" in line and "gunicorn" in line]


def test_a_start_that_fails_after_the_sandbox_started_stops_the_sandbox(tmp_path):
    """gunicorn.conf.py starts the simulator once the port is bound; a worker that cannot load the app makes
    gunicorn give up, and the simulator goes with it."""
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    log = tmp_path / "out.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([gunicorn, "service.no_such_module:app", "-c", "gunicorn.conf.py",
                                 "-k", "service.workers.BalancedUvicornWorker", "--bind", "127.0.0.1:0"],
                                cwd=ROOT, env=_env(DATABASE_URL=f"sqlite:///{tmp_path}/l.db"), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert proc.wait(DEADLINE_S) != 0
    finally:
        if proc.poll() is None:  # pragma: no cover - only when the assertion above failed
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    started = re.search(r"sandbox for spotler: platform at \S+ \(pid (\d+)\)", text)
    assert started, text
    _wait_for(lambda: _gone(int(started.group(1))), "the sandbox simulator did not stop")
    _wait_for(lambda: _group_gone(proc.pid), "a process of the failed start is still running")


@pytest.mark.parametrize("provider", ["piggy"])
def test_a_simulator_stops_when_the_process_that_started_it_is_killed(provider):
    """SIGKILL gives the service no chance to clean up: the simulator notices that its parent is gone."""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from service.sandbox.launch import start_process\n"
         f"sim = start_process({provider!r})\n"
         "print(sim.pid, flush=True)\n"
         "sys.stdin.read()\n"],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        simulator_pid = int(parent.stdout.readline())
        assert not _gone(simulator_pid)
    finally:
        parent.kill()
        parent.wait()
    _wait_for(lambda: _gone(simulator_pid), "the simulator outlived the process that started it")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_web(tmp_path: Path, port: int) -> tuple[subprocess.Popen, Path]:
    """The Procfile's web process (sandbox mode, SQLite), in a session of its own, once it answers /health."""
    import httpx

    log = tmp_path / "out.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["sh", "-c", "exec " + _web_command()], cwd=ROOT,
                                env=_env(PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path}/l.db",
                                         WEB_CONCURRENCY="2"),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait_for(ready, "the service did not answer")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, log


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_ctrl_c_stops_everything_quietly(tmp_path):
    """Ctrl+C in the terminal of `make run` signals the whole process group (master, workers, simulator):
    everything stops, nothing warns, nothing is left."""
    proc, log = _start_web(tmp_path, _free_port())
    try:
        # both workers serving (a worker still booting has no handler yet: SIGINT kills it, and the master says so)
        _wait_for(lambda: log.read_text().count("Application startup complete.") >= 2, "a worker did not start")
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(DEADLINE_S) == 0
    finally:
        if proc.poll() is None:  # pragma: no cover - only when an assertion above failed
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    noisy = [line for line in text.splitlines()
             if "[WARNING]" in line or "[ERROR]" in line or "Traceback" in line
             or ('"level": "WARNING"' in line and '"logger": "service"' not in line) or '"level": "ERROR"' in line]
    assert noisy == []
    _wait_for(lambda: _group_gone(proc.pid), "a process of the service is still running")


def test_kill_9_of_the_master_takes_its_workers_with_it_and_frees_the_port(tmp_path):
    """Finding: after ``kill -9`` of the gunicorn master both workers served on for minutes (/health 200, every
    action 503) and held the port, so the next start said it was in use. Now each worker sees within a tick
    that its parent is gone and stops; the port is free within seconds."""
    from service.boot import port_in_use

    port = _free_port()
    proc, _log = _start_web(tmp_path, port)
    try:
        workers = [pid for pid in _children(proc.pid) if "gunicorn" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(workers) == 2, workers
        started = time.monotonic()
        proc.kill()
        proc.wait()
        deadline = 5.0
        while not all(_gone(pid) for pid in workers) or port_in_use("0.0.0.0", port):
            assert time.monotonic() - started < deadline, "the workers outlived their master by 5 s"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
