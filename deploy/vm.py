"""Run the service in production on one VM: instances of the Procfile's ``web`` process behind nginx (TLS).

    .venv/bin/python -m deploy.vm --cert /etc/letsencrypt/live/HOST/fullchain.pem \\
        --key /etc/letsencrypt/live/HOST/privkey.pem [--listen 0.0.0.0:443] [--ports 8001,8002] [--run-dir var/deploy]

``make deploy DEPLOY_ARGS="--cert ... --key ..."`` runs the same with the settings file; docs/deploy.md is the
guide (the settings a publisher must set, a systemd unit, how to update, back up and rotate). What it does:

1. Checks everything before it starts anything: every setting (as the service does; ``PUBLIC_HOST`` is required
   here: it is the certificate's name and the host every absolute URL the service hands out names), nginx, the
   certificate and key, that each port is free, and that the job ledger's database answers and is migrated.
   Each failure is one line and a non-zero exit.
2. Sandbox mode only: starts the simulators once, shared by every instance (each instance would otherwise start
   its own, and a contact created through one would be unknown to the other).
3. Starts each instance - the Procfile's command with ``PORT`` = its port and ``BIND_ADDRESS=127.0.0.1`` (only
   nginx reaches it) - in a process group of its own, and waits until each answers ``/health``.
4. Renders ``deploy/nginx.conf`` into the run directory, checks it (``nginx -t``) and runs nginx in the
   foreground; prints one line saying where it serves.
5. Supervises: an instance that exits is started again (after 1 s, doubling up to 30 s while it keeps failing
   within a minute); if nginx exits, everything stops (exit 1: systemd restarts the whole).

Signals: ``SIGTERM``/``SIGINT`` stop gracefully (nginx first, finishing its requests, then every instance
finishing its own), exit 0. ``SIGHUP``: nginx reloads (a renewed certificate), then the instances restart one at
a time, the next once the previous answers again: an update or a changed setting without downtime.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from service.boot import EXIT_CONFIG, ledger_or_exit, port_in_use, settings_or_exit
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf"
#: how long an instance may take to answer /health after it was started
READY_SECONDS = 90.0
#: a SIGTERM'd instance has gunicorn's graceful_timeout (30 s) to finish its requests; then it is killed
STOP_SECONDS = 40.0
RESTART_DELAYS = (1.0, 30.0)  # first delay, largest delay
HEALTHY_RUN_SECONDS = 60.0  # an instance that ran this long before it exited starts again after the first delay
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an http_proxy


def say(message: str) -> None:
    print(f"deploy: {message}", file=sys.stderr, flush=True)


def fail(message: str, status: int = EXIT_CONFIG) -> SystemExit:
    print(f"marketing-actions deploy: {message}", file=sys.stderr, flush=True)
    return SystemExit(status)


def _die_with_us(sig: int = signal.SIGTERM):
    """A ``preexec_fn``: the child gets ``sig`` when this process is gone (Linux ``PR_SET_PDEATHSIG``; kept
    across ``exec``), so a killed supervisor leaves no nginx or instance behind holding the ports."""
    if not sys.platform.startswith("linux"):
        return None

    def arm() -> None:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG

    return arm


def web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line[len("web:"):].strip()
    raise fail("the Procfile has no web: line")


def public_host(settings: Settings) -> tuple[str, str]:
    """``(host[:port], host)`` from PUBLIC_HOST (a scheme or a trailing slash are dropped)."""
    value = settings.public_host.split("://", 1)[-1].rstrip("/")
    if not value:
        raise fail("Missing setting PUBLIC_HOST (required here: the host name of the certificate, which Power "
                   "Platform calls; for example actions.example.com, or actions.example.com:8443 when nginx "
                   "does not listen on 443).")
    return value, value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT (for example 0.0.0.0:443)")
    return host.strip("[]") or "0.0.0.0", int(port)


def _ports(value: str) -> list[int]:
    try:
        ports = [int(p) for p in value.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of ports") from None
    if not ports or len(set(ports)) != len(ports) or not all(0 < p < 65536 for p in ports):
        raise argparse.ArgumentTypeError(f"{value!r}: give one distinct port (1-65535) per instance")
    return ports


@dataclass
class Instance:
    number: int
    port: int
    proc: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0
    next_start: float | None = None

    @property
    def name(self) -> str:
        return f"instance {self.number} (127.0.0.1:{self.port})"

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(["sh", "-c", "exec " + web_command()], cwd=ROOT, stdin=subprocess.DEVNULL,
                                     env={**env, "PORT": str(self.port), "BIND_ADDRESS": "127.0.0.1"},
                                     start_new_session=True, preexec_fn=_die_with_us())
        self.started, self.next_start = time.monotonic(), None
        say(f"{self.name} started, pid {self.proc.pid}")

    def healthy(self) -> bool:
        try:
            with _DIRECT.open(f"http://127.0.0.1:{self.port}/health", timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False

    def wait_ready(self, deadline_seconds: float = READY_SECONDS) -> bool:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            if self.healthy():
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """SIGTERM to its process group (gunicorn finishes the requests in flight), SIGKILL after STOP_SECONDS."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop within {STOP_SECONDS:g} s: killed")
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group (a stuck worker)
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def render_nginx(args: argparse.Namespace, settings: Settings, run_dir: Path) -> Path:
    shown, name = public_host(settings)
    host, port = args.listen
    values = {
        "RUN_DIR": str(run_dir),
        "LISTEN": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "SERVER_NAME": name,
        "PUBLIC_HOST": shown,
        "CERT": str(Path(args.cert).resolve()),
        "KEY": str(Path(args.key).resolve()),
        "BODY_LIMIT": str(settings.max_body_bytes + 64 * 1024),
        "UPSTREAM_SERVERS": "\n".join(f"        server 127.0.0.1:{p} max_fails=0;"
                                      for p in args.ports),
    }
    text = re.sub(r"@@([A-Z_]+)@@", lambda m: values.get(m.group(1), m.group(0)), TEMPLATE.read_text())
    unknown = sorted(set(re.findall(r"@@([A-Z_]+)@@", text)))
    if unknown:
        raise fail(f"{TEMPLATE} names values deploy/vm.py does not know: {', '.join(unknown)}")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    conf = run_dir / "nginx.conf"
    conf.write_text(text)
    return conf


class Deployment:
    def __init__(self, args: argparse.Namespace, settings: Settings, nginx: str, run_dir: Path) -> None:
        self.args, self.settings, self.nginx_bin, self.run_dir = args, settings, nginx, run_dir
        self.instances = [Instance(i + 1, p) for i, p in enumerate(args.ports)]
        # the instances run on this interpreter (the Procfile says `python`): its virtualenv's bin first on PATH
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.sandbox = None
        self.nginx: subprocess.Popen | None = None
        self.signal: int | None = None

    def nginx_args(self, conf: Path) -> list[str]:
        # -e: its error log before it reads the configuration (the packaged default, /var/log/nginx, is root's)
        return ["-e", "stderr", "-p", str(self.run_dir), "-c", str(conf)]

    def _on_signal(self, signum, _frame) -> None:
        self.signal = signum

    @staticmethod
    def _abort(signum, _frame) -> None:  # while starting: stop what was started (main's finally)
        raise SystemExit(0 if signum in (signal.SIGTERM, signal.SIGINT) else 1)

    def start(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._abort)
        if self.settings.sandbox:
            from service.sandbox.launch import start_sandbox

            self.sandbox = start_sandbox(self.settings)
            self.env.update(self.sandbox.env)
            say(f"sandbox simulators shared by every instance: {self.sandbox.describe()}")
        conf = render_nginx(self.args, self.settings, self.run_dir)
        check = subprocess.run([self.nginx_bin, "-t", "-q", *self.nginx_args(conf)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise fail(f"nginx refused {conf}: {' '.join(check.stderr.split())}", 1)
        for instance in self.instances:
            instance.start(self.env)
        for instance in self.instances:
            if not instance.wait_ready():
                raise fail(f"{instance.name} did not answer /health (its output above says why)", 1)
        self.nginx = subprocess.Popen([self.nginx_bin, *self.nginx_args(conf)],
                                      stdin=subprocess.DEVNULL, preexec_fn=_die_with_us())
        host, port = self.args.listen
        deadline = time.monotonic() + 15
        while not _accepts("127.0.0.1" if host in ("0.0.0.0", "::") else host, port):
            if self.nginx.poll() is not None or time.monotonic() > deadline:
                raise fail(f"nginx did not start on {host}:{port} (its output above says why)", 1)
            time.sleep(0.1)
        shown, _ = public_host(self.settings)
        say(f"serving https://{shown}/ through nginx (pid {self.nginx.pid}, {host}:{port}) to "
            + ", ".join(f"127.0.0.1:{i.port} (pid {i.proc.pid})" for i in self.instances))

    def supervise(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        while True:
            if self.signal in (signal.SIGTERM, signal.SIGINT):
                return 0
            if self.signal == signal.SIGHUP:
                self.signal = None
                self.reload()
            if self.nginx.poll() is not None:
                say(f"nginx exited with status {self.nginx.returncode}: stopping")
                return 1
            now = time.monotonic()
            for instance in self.instances:
                if instance.next_start is None and instance.proc.poll() is not None:
                    ran = now - instance.started
                    instance.failures = 0 if ran >= HEALTHY_RUN_SECONDS else instance.failures + 1
                    delay = min(RESTART_DELAYS[1], RESTART_DELAYS[0] * 2 ** max(0, instance.failures - 1))
                    instance.next_start = now + delay
                    say(f"{instance.name} exited with status {instance.proc.returncode} after {ran:.1f} s: "
                        f"starting it again in {delay:g} s")
                elif instance.next_start is not None and now >= instance.next_start:
                    instance.start(self.env)
            time.sleep(0.1)

    def reload(self) -> None:
        say("SIGHUP: nginx reloads its configuration and certificate; the instances restart one at a time")
        conf = render_nginx(self.args, self.settings, self.run_dir)
        with contextlib.suppress(ProcessLookupError):
            self.nginx.send_signal(signal.SIGHUP)
        for instance in self.instances:
            if self.signal in (signal.SIGTERM, signal.SIGINT):
                return
            instance.stop()
            instance.start(self.env)
            if not instance.wait_ready():
                say(f"{instance.name} did not answer /health after the restart: the others keep serving "
                    f"(nginx config {conf})")
                return
        say("rolling restart done: " + ", ".join(f"127.0.0.1:{i.port} (pid {i.proc.pid})" for i in self.instances))

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful: finish the requests in flight
            try:
                self.nginx.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for instance in self.instances:
            instance.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
        say("stopped")


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy.vm", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--cert", required=True, help="the TLS certificate (PEM, with its chain) for PUBLIC_HOST")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--listen", type=_listen, default=_listen("0.0.0.0:443"), metavar="HOST:PORT",
                        help="where nginx listens for HTTPS")
    parser.add_argument("--ports", type=_ports, default=_ports("8001,8002"),
                        help="one local port per instance (127.0.0.1 only)")
    parser.add_argument("--run-dir", default="var/deploy",
                        help="nginx's rendered configuration, pid file, temporary files and access log")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx", help="the nginx binary")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    settings = settings_or_exit()
    public_host(settings)
    trusted = {ip.strip() for ip in settings.forwarded_allow_ips.split(",")}
    if not trusted & {"127.0.0.1", "*"}:
        raise fail(f"FORWARDED_ALLOW_IPS={settings.forwarded_allow_ips!r} does not trust 127.0.0.1, where nginx "
                   "connects from: the service would not see https as the scheme (leave the default 127.0.0.1).")
    if not os.access(args.nginx, os.X_OK):
        raise fail(f"nginx not found at {args.nginx} (install it: apt-get install nginx; or give --nginx PATH)")
    for label, path in (("--cert", args.cert), ("--key", args.key)):
        if not os.access(path, os.R_OK):
            raise fail(f"{label} {path}: no such file, or not readable by this user")
    host, port = args.listen
    for h, p in [("127.0.0.1", p) for p in args.ports] + [(host, port)]:
        if port_in_use(h, p):
            raise fail(f"port {p} is in use (another deployment?): stop that process or choose other ports")
    ledger_or_exit(settings)
    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    deployment = Deployment(args, settings, args.nginx, run_dir)
    try:
        deployment.start()
        return deployment.supervise()
    finally:
        deployment.stop()


if __name__ == "__main__":
    sys.exit(main())
