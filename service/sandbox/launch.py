"""Start the simulator that sandbox mode talks to: as a child process (gunicorn master, one per service)
or in this process on a loopback thread (tests, ``create_app()`` without gunicorn)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable

#: well-known, non-secret credentials of the sandbox account (the simulator checks them like the real API)
SANDBOX_CREDENTIALS = {
    "spotler": {"consumer_key": "sandbox-consumer-key", "consumer_secret": "sandbox-consumer-secret"},
    "piggy": {"token": "sandbox-piggy-token"},
    "spoki": {"api_key": "sandbox-spoki-key"},
}

_CLI_ARGS = {
    "spotler": ["--consumer-key", SANDBOX_CREDENTIALS["spotler"]["consumer_key"],
                "--consumer-secret", SANDBOX_CREDENTIALS["spotler"]["consumer_secret"]],
    "piggy": ["--token", SANDBOX_CREDENTIALS["piggy"]["token"]],
    "spoki": ["--api-key", SANDBOX_CREDENTIALS["spoki"]["api_key"]],
}


@dataclass
class RunningSimulator:
    url: str
    stop: Callable[[], None]
    pid: int | None = None
    #: the in-memory simulator object (in-process only), for tests to inspect and control
    simulator: Any = None


def serve_in_thread(app, simulator=None, base_path: str = "") -> RunningSimulator:
    """Serve a simulator's WSGI ``app`` on 127.0.0.1 (ephemeral port) from a daemon thread."""
    from service.sandbox.server import SimulatorServer

    server = SimulatorServer(app).start()
    return RunningSimulator(url=server.url + base_path, stop=server.stop, simulator=simulator)


def start_process(provider: str, extra_args: list[str] | None = None, timeout: float = 20.0) -> RunningSimulator:
    """Run ``python -m service.sandbox.<provider> --port 0`` and read its URL from the first output line."""
    cmd = [sys.executable, "-m", f"service.sandbox.{provider}", "--port", "0", *_CLI_ARGS[provider],
           *(extra_args or [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, bufsize=1)
    prefix = f"{provider.upper()}_SIMULATOR_URL="
    url = None
    for line in proc.stdout:  # blocks until the simulator prints its URL (it does so once listening)
        if line.startswith(prefix):
            url = line[len(prefix):].strip()
            break
    if url is None:
        proc.kill()
        raise RuntimeError(f"the {provider} simulator did not start: {' '.join(cmd)}")

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()

    # keep draining its output so the pipe never fills up
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return RunningSimulator(url=url, stop=stop, pid=proc.pid)


def start_microsoft_process(state_dir: str, timeout: float = 20.0) -> RunningSimulator:
    """Run ``python -m service.sandbox.microsoft`` (Entra ID + Dataverse over HTTPS); ``url`` is the Entra ID
    simulator's, ``simulator`` holds ``{"entra", "dataverse", "ca"}``."""
    from pathlib import Path

    from service.sandbox.microsoft import STATE_FILE_NAME, URL_LINES

    cmd = [sys.executable, "-m", "service.sandbox.microsoft", "--state-file", str(Path(state_dir) / STATE_FILE_NAME)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, bufsize=1)
    found: dict[str, str] = {}
    for line in proc.stdout:  # blocks until the simulators print their URLs (they do so once listening)
        name, sep, value = line.strip().partition("=")
        if sep and name in URL_LINES:
            found[name] = value
            if len(found) == len(URL_LINES):
                break
    if len(found) < len(URL_LINES):
        proc.kill()
        raise RuntimeError(f"the Microsoft simulators did not start: {' '.join(cmd)}")

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()

    import threading

    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    urls = {"entra": found["ENTRA_SIMULATOR_URL"], "dataverse": found["DATAVERSE_SIMULATOR_URL"],
            "ca": found["SANDBOX_CA_BUNDLE"]}
    return RunningSimulator(url=urls["entra"], stop=stop, pid=proc.pid, simulator=urls)


@dataclass
class SandboxSimulators:
    """What :func:`start_sandbox_simulators` started: ``env`` for the workers, ``lines`` for the log."""

    env: dict[str, str]
    lines: list[str]
    running: list[RunningSimulator]

    def stop(self) -> None:
        for sim in reversed(self.running):
            sim.stop()


def start_sandbox_simulators(settings: Any) -> SandboxSimulators:
    """Every simulator sandbox mode talks to, each as ONE child process shared by all workers (the gunicorn
    master calls this once): the platform's, unless ``SANDBOX_UPSTREAM_URL`` is set, and Entra ID + Dataverse,
    unless Microsoft is configured or ``SANDBOX_ENTRA_URL`` is set. They start in parallel. Returns the
    variables the workers need."""
    from concurrent.futures import ThreadPoolExecutor

    ms = settings.microsoft
    want_platform = settings.sandbox and not settings.sandbox_upstream_url
    want_microsoft = settings.sandbox and not ms.configured and not ms.sandbox_entra_url
    with ThreadPoolExecutor(2) as pool:
        platform = pool.submit(start_process, settings.provider) if want_platform else None
        microsoft = pool.submit(start_microsoft_process, ms.sandbox_state_dir) if want_microsoft else None
    running: list[RunningSimulator] = []
    errors = []
    for future in (platform, microsoft):
        if future is None:
            continue
        if future.exception() is not None:
            errors.append(future.exception())
        else:
            running.append(future.result())
    if errors:
        for sim in running:
            sim.stop()
        raise errors[0]
    env: dict[str, str] = {}
    lines: list[str] = []
    if platform is not None:
        sim = platform.result()
        env["SANDBOX_UPSTREAM_URL"] = sim.url
        lines.append(f"sandbox simulator for {settings.provider} at {sim.url} (pid {sim.pid})")
    if microsoft is not None:
        sim = microsoft.result()
        env.update(SANDBOX_ENTRA_URL=sim.simulator["entra"], SANDBOX_DATAVERSE_URL=sim.simulator["dataverse"],
                   SANDBOX_CA_BUNDLE=sim.simulator["ca"])
        lines.append(f"sandbox Entra ID at {sim.simulator['entra']} and Dataverse at {sim.simulator['dataverse']} "
                     f"(pid {sim.pid}); a user token: python -m service.sandbox.entra token")
    return SandboxSimulators(env=env, lines=lines, running=running)


def start_in_process(provider: str) -> RunningSimulator:
    """Serve the provider's simulator on 127.0.0.1 (ephemeral port) from a background thread."""
    module = importlib.import_module(f"service.sandbox.{provider}")
    return module.start_sandbox(**SANDBOX_CREDENTIALS[provider])
