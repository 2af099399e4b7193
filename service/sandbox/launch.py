"""Start the simulators sandbox mode talks to: as child processes (gunicorn master, one set per service)
or in this process on a loopback thread (tests, ``create_app()`` without gunicorn).

:func:`start_sandbox` / :func:`stop_sandbox` are the one pair the gunicorn master calls: they start (and stop)
every simulator a sandbox deployment needs, and hand the workers their URLs as environment variables. A
simulator that fails to start stops the ones already started, so a failed start leaves no process behind; a
simulator process also stops by itself when the process that started it is gone (``--exit-with-parent``).
"""

from __future__ import annotations

import importlib
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from service.sandbox.commands import python_command

#: the demo accounts of each platform simulator: well-known, non-secret credentials (the simulators check them
#: like the real APIs) and a name. The first account of each platform is the historical sandbox account (single
#: mode uses it); the others have other data (``demo_second`` of each simulator), for hosted mode and its tests.
SANDBOX_ACCOUNTS: dict[str, list[dict[str, str]]] = {
    "spotler": [
        {"name": "Demo shop", "consumer_key": "sandbox-consumer-key", "consumer_secret": "sandbox-consumer-secret"},
        {"name": "Second shop", "consumer_key": "sandbox-consumer-key-2",
         "consumer_secret": "sandbox-consumer-secret-2"},
    ],
    "piggy": [
        {"name": "Demo loyalty", "token": "sandbox-piggy-token"},
        {"name": "Second loyalty", "token": "sandbox-piggy-token-2"},
    ],
    "spoki": [
        {"name": "Demo WhatsApp", "api_key": "sandbox-spoki-key"},
        {"name": "Second studio", "api_key": "sandbox-spoki-key-2"},
    ],
}

#: the credentials of each platform's first (historical) sandbox account
SANDBOX_CREDENTIALS = {provider: {k: v for k, v in accounts[0].items() if k != "name"}
                       for provider, accounts in SANDBOX_ACCOUNTS.items()}

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
    #: the in-memory simulator object (in-process only), for tests to inspect and control: the first account's
    simulator: Any = None
    #: account name -> its in-memory simulator (in-process only; every account of SANDBOX_ACCOUNTS)
    accounts: dict[str, Any] = field(default_factory=dict)


def serve_in_thread(app, simulator=None, base_path: str = "") -> RunningSimulator:
    """Serve a simulator's WSGI ``app`` on 127.0.0.1 (ephemeral port) from a daemon thread. An
    :class:`~service.sandbox.accounts.AccountDispatcher` ``app`` fills ``accounts`` (and ``simulator``, if not
    given, with its first account's)."""
    from service.sandbox.accounts import AccountDispatcher
    from service.sandbox.server import SimulatorServer

    accounts = {}
    if isinstance(app, AccountDispatcher):
        accounts = {a.name: a.simulator for a in app.accounts}
        simulator = simulator if simulator is not None else app.first.simulator
    server = SimulatorServer(app).start()
    return RunningSimulator(url=server.url + base_path, stop=server.stop, simulator=simulator, accounts=accounts)


def start_process(provider: str, extra_args: list[str] | None = None, timeout: float = 20.0) -> RunningSimulator:
    """Run ``python -m service.sandbox.<provider> --port 0 --exit-with-parent`` (every demo account of
    ``SANDBOX_ACCOUNTS[provider]``; ``--accounts first`` in ``extra_args``: the first alone) and read its URL from its
    first output lines (printed once it listens). Raises RuntimeError, with no process left, when it does not
    print one within ``timeout`` seconds."""
    cmd = [sys.executable, "-m", f"service.sandbox.{provider}", "--port", "0", "--exit-with-parent",
           *_CLI_ARGS[provider], *(extra_args or [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, bufsize=1)
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:  # hands over the lines, then keeps the pipe from filling up
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, name=f"{provider}-simulator-output", daemon=True).start()

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover - the simulator ignores SIGTERM
            proc.kill()
            proc.wait()

    prefix = f"{provider.upper()}_SIMULATOR_URL="
    deadline = time.monotonic() + timeout
    url = None
    while url is None:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:  # output closed (it exited) or no URL in time
            stop()
            raise RuntimeError(f"the {provider} simulator did not start (exit status {proc.returncode}): "
                               f"{' '.join(cmd)}")
        if line.startswith(prefix):
            url = line[len(prefix):].strip()
    return RunningSimulator(url=url, stop=stop, pid=proc.pid)


def start_microsoft_process(state_dir: str, timeout: float = 20.0) -> RunningSimulator:
    """Run ``python -m service.sandbox.microsoft`` (Entra ID + Dataverse over HTTPS); ``url`` is the Entra ID
    simulator's, ``simulator`` holds ``{"entra", "dataverse", "ca"}``."""
    from pathlib import Path

    from service.sandbox.microsoft import STATE_FILE_NAME, URL_LINES

    cmd = [sys.executable, "-m", "service.sandbox.microsoft", "--exit-with-parent",
           "--state-file", str(Path(state_dir) / STATE_FILE_NAME)]
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
class Sandbox:
    """The simulators of one sandbox deployment, started together and stopped together."""

    #: name -> running simulator ("platform" is the configured platform's)
    simulators: dict[str, RunningSimulator] = field(default_factory=dict)
    #: the environment variables the workers need to reach them (e.g. SANDBOX_UPSTREAM_URL)
    env: dict[str, str] = field(default_factory=dict)
    #: only the process that started the simulators stops them (not a forked worker that inherited this)
    owner_pid: int = field(default_factory=os.getpid)

    def add(self, name: str, simulator: RunningSimulator, **env: str) -> None:
        self.simulators[name] = simulator
        self.env.update(env)

    def describe(self) -> str:
        parts = []
        for name, sim in self.simulators.items():
            if name == "microsoft":
                parts.append(f"Entra ID at {sim.simulator['entra']} and Dataverse at {sim.simulator['dataverse']} "
                             f"(pid {sim.pid}; a user token: {python_command()} -m service.sandbox.entra token)")
            else:
                parts.append(f"{name} at {sim.url} (pid {sim.pid})")
        return ", ".join(parts) or "none"

    def stop(self) -> None:
        if os.getpid() != self.owner_pid:
            return
        while self.simulators:
            _, simulator = self.simulators.popitem()  # last started, first stopped
            simulator.stop()


def start_sandbox(settings: Any) -> Sandbox:
    """Start every simulator sandbox mode needs, as child processes of this one, in parallel: the platform's
    (unless ``SANDBOX_UPSTREAM_URL`` already points at a running one; hosted mode: every platform's, unless
    ``SANDBOX_UPSTREAM_URLS`` names it, their URLs in ``SANDBOX_UPSTREAM_URLS``) and Entra ID + Dataverse (unless
    Microsoft is configured or ``SANDBOX_ENTRA_URL`` is set); nothing in live mode. Put ``sandbox.env`` into the workers'
    environment. If one fails to start, the ones already started are stopped and the error is raised."""
    from concurrent.futures import ThreadPoolExecutor

    sandbox = Sandbox()
    if not settings.sandbox:
        return sandbox
    ms = settings.microsoft
    hosted = getattr(settings, "hosted", False)  # TENANCY=hosted: every platform's simulator
    if hosted:
        running = getattr(settings, "sandbox_urls", {})
        wanted = [p for p in sorted(SANDBOX_ACCOUNTS) if p not in running]
    else:
        wanted = [] if settings.sandbox_upstream_url else [settings.provider]
    want_microsoft = not ms.configured and not ms.sandbox_entra_url
    with ThreadPoolExecutor(1 + len(wanted)) as pool:
        platforms = {p: pool.submit(start_process, p) for p in wanted}
        microsoft = pool.submit(start_microsoft_process, ms.sandbox_state_dir) if want_microsoft else None
    errors = []
    urls = dict(getattr(settings, "sandbox_urls", {})) if hosted else {}
    for name, platform in platforms.items():
        if platform.exception() is not None:
            errors.append(platform.exception())
        elif hosted:
            sim = platform.result()
            urls[name] = sim.url
            sandbox.add(name, sim)
        else:
            sim = platform.result()
            sandbox.add("platform", sim, SANDBOX_UPSTREAM_URL=sim.url)
    if hosted and platforms:
        sandbox.env["SANDBOX_UPSTREAM_URLS"] = ",".join(f"{p}={u}" for p, u in sorted(urls.items()))
    if microsoft is not None:
        if microsoft.exception() is not None:
            errors.append(microsoft.exception())
        else:
            sim = microsoft.result()
            sandbox.add("microsoft", sim, SANDBOX_ENTRA_URL=sim.simulator["entra"],
                        SANDBOX_DATAVERSE_URL=sim.simulator["dataverse"], SANDBOX_CA_BUNDLE=sim.simulator["ca"])
    if errors:
        sandbox.stop()
        raise errors[0]
    return sandbox


def stop_sandbox(sandbox: Sandbox | None) -> None:
    """Stop what :func:`start_sandbox` started (safe to call twice, or with None)."""
    if sandbox is not None:
        sandbox.stop()


def demo_contacts(provider: str) -> list[dict[str, str]]:
    """The contacts of the platform simulator's demo account (e-mail, externalId, name, note)."""
    return importlib.import_module(f"service.sandbox.{provider}.demo").demo_contacts()


#: platform -> the credential fields a hosted connection sends as X-Platform-Key and X-Platform-Secret
_KEY_FIELDS = {"spotler": ("consumer_key", "consumer_secret"), "piggy": ("token", None), "spoki": ("api_key", None)}


def sandbox_accounts() -> list[dict]:
    """Every demo account of every platform simulator, as hosted sandbox mode lists them (``GET /sandbox``):
    platform, name, ``key`` and ``secret`` (what the connection's X-Platform-Key / X-Platform-Secret carry; no
    secret for Piggy and Spoki) and the account's demo contacts."""
    out = []
    for platform, accounts in SANDBOX_ACCOUNTS.items():
        key_field, secret_field = _KEY_FIELDS[platform]
        for index, entry in enumerate(accounts):
            item = {"platform": platform, "name": entry["name"], "key": entry[key_field]}
            if secret_field:
                item["secret"] = entry[secret_field]
            item["contacts"] = account_contacts(platform, index)
            out.append(item)
    return out


def account_contacts(provider: str, index: int) -> list[dict[str, str]]:
    """The contacts of a platform's demo account ``index`` of ``SANDBOX_ACCOUNTS`` (0: the historical one)."""
    if index == 0:
        return demo_contacts(provider)
    return importlib.import_module(f"service.sandbox.{provider}.demo_second").demo_contacts()


def start_in_process(provider: str) -> RunningSimulator:
    """Serve the provider's simulator, with every demo account of ``SANDBOX_ACCOUNTS[provider]``, on 127.0.0.1
    (ephemeral port) from a background thread; ``.simulator`` is the first account's, ``.accounts`` all."""
    module = importlib.import_module(f"service.sandbox.{provider}")
    return module.start_sandbox(**SANDBOX_CREDENTIALS[provider])
