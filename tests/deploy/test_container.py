"""The container image (Dockerfile) and compose.yaml, checked without a container daemon (there is none here:
docs/deploy.md says the image has not been built on this machine). What can be checked: the image runs the
Procfile's command, installs requirements.txt, runs as a user that is not root, and its port, health check and
compose file agree; the health check's own command tells a healthy service from a dead one."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _one(name: str) -> str:
    values = [rest for word, rest in _instructions() if word == name]
    assert len(values) == 1, (name, values)
    return values[0]


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _instructions():
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    return env


def _web_command() -> str:
    return next(line[len("web:"):].strip() for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("web:"))


def test_a_slim_python_311_base():
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", _one("FROM")), _one("FROM")


def test_its_command_is_the_procfiles():
    assert json.loads(_one("CMD")) == ["/bin/sh", "-c", "exec " + _web_command()]


def test_it_installs_requirements_txt_before_it_copies_the_code():
    steps = _instructions()
    copy_req = steps.index(("COPY", "requirements.txt ./"))
    install = next(i for i, (w, r) in enumerate(steps) if w == "RUN" and "pip install -r requirements.txt" in r)
    copy_all = steps.index(("COPY", ". ."))
    assert copy_req < install < copy_all
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored and "var" in ignored  # no secret, no local state in the image


def test_it_runs_as_a_user_that_is_not_root():
    users = [rest for word, rest in _instructions() if word == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    created = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert re.search(rf"useradd .*\b{users[-1]}\b", created)


def test_port_health_check_and_compose_agree():
    port = _env()["PORT"]
    assert _one("EXPOSE") == port
    health = _one("HEALTHCHECK")
    assert "/health" in health and "os.environ['PORT']" in health  # the port the command binds ($PORT)
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app = compose["services"]["app"]
    assert app["environment"]["PORT"] == port
    assert [p.rsplit(":", 1)[1] for p in app["ports"]] == [port]
    assert {"postgres", "redis"} <= set(compose["services"])
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    database_url = app["environment"]["DATABASE_URL"].replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}",
                                                               "pw")
    settings = Settings.from_env({"DATABASE_URL": database_url, "PORT": port})
    assert "@postgres:5432/" in settings.database_url
    assert app["environment"]["REDIS_URL"].startswith("redis://redis:6379/")


def _health_check_command() -> list[str]:
    return json.loads(_one("HEALTHCHECK").split("CMD", 1)[1])


def test_the_health_check_tells_a_healthy_service_from_a_dead_one():
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    command = [sys.executable if c == "python" else c for c in _health_check_command()]
    try:
        port = str(server.server_address[1])
        up = subprocess.run(command, env={**os.environ, "PORT": port}, capture_output=True, timeout=30)
        assert up.returncode == 0, up.stderr
    finally:
        server.shutdown()
        server.server_close()
    down = subprocess.run(command, env={**os.environ, "PORT": port}, capture_output=True, timeout=30)
    assert down.returncode != 0


def test_the_docs_say_the_image_was_not_built_here():
    text = (ROOT / "docs" / "deploy.md").read_text()
    assert "has not been built" in text
