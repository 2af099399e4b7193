"""Every bad setting stops the service with ONE line naming the variable, its value (secrets hidden) and what is
allowed, and a non-zero exit status; no traceback. One case per kind of variable in-process, then the real
ways of starting: the Procfile (before gunicorn reads WEB_CONCURRENCY), gunicorn with gunicorn.conf.py, and
``create_app()`` from ``python -c``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.boot import EXIT_CONFIG, settings_or_exit

ROOT = Path(__file__).resolve().parent.parent
LIVE = {"SPOTLER_CONSUMER_KEY": "ck-live", "SPOTLER_CONSUMER_SECRET": "cs-live-secret",
        "API_KEYS": "k" * 20, "LEDGER_HASH_KEY": "h" * 40}


@pytest.mark.parametrize("kind, env, variable, shown, allowed", [
    ("int", {"FLASK_THREADS": "abc"}, "FLASK_THREADS", "'abc'", "a whole number from 1 to 512"),
    ("int (gunicorn)", {"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY", "'two'", "a whole number from 1 to 64"),
    ("number (platform)", {"SPOTLER_READ_TIMEOUT": "soon"}, "SPOTLER_READ_TIMEOUT", "'soon'", "a number"),
    ("enum", {"PROVIDER": "mailchimp"}, "PROVIDER", "'mailchimp'", "one of spotler, piggy, spoki"),
    ("enum (platform)", {"SPOKI_LIST_REMOVE_KEY": "names", "PROVIDER": "spoki"}, "SPOKI_LIST_REMOVE_KEY",
     "'names'", "ids, phones or emails"),
    ("URL", {"SANDBOX_UPSTREAM_URL": "localhost:8081"}, "SANDBOX_UPSTREAM_URL", "'localhost:8081'",
     "an http:// or https:// URL"),
    ("URL (platform)", {"SPOTLER_BASE_URL": "restapi.mailplus.nl"}, "SPOTLER_BASE_URL", "'restapi.mailplus.nl'",
     "an http:// or https:// URL"),
    ("database URL, password masked", {"DATABASE_URL": "mysql://app:s3cr3t-pw@db/ledger"}, "DATABASE_URL",
     "'mysql://app:***@db/ledger'", "postgresql+psycopg://"),
    ("JSON template", {"SPOTLER_BODY_TAG_ADD": '{"tags": "{tags}"'}, "SPOTLER_BODY_TAG_ADD",
     "'{\"tags\": \"{tags}\"'", "a JSON template"),
    ("route", {"SPOTLER_ROUTE_TAG_LIST": "FETCH tag/list"}, "SPOTLER_ROUTE_TAG_LIST", "'FETCH tag/list'",
     "'METHOD path'"),
    ("int (Microsoft)", {"ENTRA_TOKEN_LEEWAY_SECONDS": "900"}, "ENTRA_TOKEN_LEEWAY_SECONDS", "'900'",
     "a whole number from 0 to 300"),
    ("boolean", {"VALIDATE_RESPONSES": "maybe"}, "VALIDATE_RESPONSES", "'maybe'", "true or false"),
    ("boolean (platform)", {"PROVIDER": "piggy", "PIGGY_LIST_ALL_AUTOMATIONS": "perhaps"},
     "PIGGY_LIST_ALL_AUTOMATIONS", "'perhaps'", "true or false"),
    ("secret", {**LIVE, "API_KEYS": "short-secret-1"}, "API_KEYS", "<hidden, 14 characters>",
     "keys of at least 16 characters"),
    ("missing secret", {k: v for k, v in LIVE.items() if k != "LEDGER_HASH_KEY"}, "LEDGER_HASH_KEY", None,
     "a random secret of 32+ characters"),
])
def test_one_line_naming_variable_value_and_allowed(kind, env, variable, shown, allowed, capsys):
    with pytest.raises(SystemExit) as exc:
        settings_or_exit(env)
    assert exc.value.code == EXIT_CONFIG
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.splitlines()
    assert len(lines) == 1, out.err
    line = lines[0]
    assert variable in line and allowed in line, line
    if shown is not None:
        assert f"{variable}={shown}" in line, line
    for value in env.values():  # secrets never appear
        if value in (LIVE["API_KEYS"], LIVE["LEDGER_HASH_KEY"], LIVE["SPOTLER_CONSUMER_SECRET"], "short-secret-1",
                     "s3cr3t-pw"):
            assert value not in line


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SPOTLER_", "PIGGY_", "SPOKI_", "API_KEYS", "SANDBOX_", "DATABASE_URL"))}
    clean.update(env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}",
                 ENV_FILE=os.devnull)
    return subprocess.run(cmd, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120,
                          start_new_session=True)


def _web_command() -> str:
    return next(line[len("web:"):].strip() for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("web:"))


def _single_line(result: subprocess.CompletedProcess) -> str:
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output, output
    assert len(output.splitlines()) == 1, output
    return output


def test_procfile_start_stops_before_gunicorn_reads_web_concurrency():
    result = _run(["sh", "-c", "exec " + _web_command()], PORT="8000", WEB_CONCURRENCY="two")
    assert result.returncode == EXIT_CONFIG
    assert "WEB_CONCURRENCY='two'" in _single_line(result)


def test_gunicorn_with_its_config_file_stops_on_a_bad_setting():
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    result = _run([gunicorn, "service.asgi:app", "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:0"],
                  FLASK_THREADS="abc")
    assert result.returncode == EXIT_CONFIG
    assert "FLASK_THREADS='abc'" in _single_line(result)


def test_create_app_from_the_environment_stops_on_a_bad_setting():
    result = _run([sys.executable, "-c", "from service.app import create_app; create_app()"],
                  PROVIDER="mailchimp")
    assert result.returncode == EXIT_CONFIG
    assert "PROVIDER='mailchimp'" in _single_line(result)
