"""Every start failure about the ledger's database is ONE line and a non-zero exit, no traceback: the service
started as the Procfile starts it, and ``python -m service.db upgrade`` (given ``--database-url`` or
``DATABASE_URL``). "Down" is a real PostgreSQL URL on a port where nothing listens.

Findings: a PostgreSQL that is down printed ~120 lines of traceback at start; ``python -m service.db
--database-url mysql://x/y upgrade`` ended in a ``ValueError`` traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _nobody_listens() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DOWN = f"postgresql+psycopg://postgres@127.0.0.1:{_nobody_listens()}/ledger"
CASES = {  # URL, what the one line must say
    "down": (DOWN, "Connection refused"),
    "unsupported": ("mysql://app:s3cr3t-pw@db/ledger", "mysql"),
    "not a URL": ("postgresql+psycopg://app@db:port/ledger", "postgresql+psycopg://user:password@host:5432/database"),
    "sqlite file that cannot be created": ("sqlite:////proc/no-such-dir/ledger.db", "/proc/no-such-dir"),
}


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SPOTLER_", "PIGGY_", "SPOKI_", "API_KEYS", "SANDBOX_", "DATABASE_URL"))}
    clean.update(env, ENV_FILE=os.devnull, PATH=f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}")
    return subprocess.run(cmd, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120,
                          start_new_session=True)


def _one_line(result: subprocess.CompletedProcess, needle: str) -> str:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, output
    assert "Traceback" not in output and len(output.splitlines()) == 1, output
    assert output.startswith("marketing-actions: ") and needle in output, output
    assert "s3cr3t-pw" not in output
    return output


def _web_command() -> str:
    return next(line[len("web:"):].strip() for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("web:"))


@pytest.mark.parametrize("case", ["down", "unsupported", "sqlite file that cannot be created"])
def test_the_service_says_it_in_one_line(case):
    url, needle = CASES[case]
    result = _run(["sh", "-c", "exec " + _web_command()], PORT=str(_nobody_listens()), DATABASE_URL=url)
    _one_line(result, needle)


@pytest.mark.parametrize("case", list(CASES))
def test_the_migration_command_says_it_in_one_line(case):
    url, needle = CASES[case]
    line = _one_line(_run([sys.executable, "-m", "service.db", "--database-url", url, "upgrade"]), needle)
    if case == "down":  # the same from the environment, and the same words as the service's
        assert _one_line(_run([sys.executable, "-m", "service.db", "upgrade"], DATABASE_URL=url), needle) == line
