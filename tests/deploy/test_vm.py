"""deploy/vm.py, the production start on one VM, apart from the rehearsal (tests/deploy/test_rehearsal.py): the
documented ways of running it give it options it accepts, and what it needs is checked before anything starts,
each failure in one line."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.vm import build_parser

ROOT = Path(__file__).resolve().parents[2]


def test_the_systemd_unit_and_the_docs_run_the_rehearsed_command():
    unit = re.sub(r"\\\n\s*", " ", (ROOT / "deploy" / "marketing-actions.service").read_text())
    exec_start = shlex.split(re.search(r"^ExecStart=(.+)$", unit, re.M).group(1))
    assert exec_start[1:3] == ["-m", "deploy.vm"] and exec_start[0].endswith("/.venv/bin/python")
    args = build_parser().parse_args(exec_start[3:])
    assert args.listen == ("0.0.0.0", 443) and args.ports == [8001, 8002]
    assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", unit, re.M)
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert "python -m deploy.vm" in docs and "deploy/marketing-actions.service" in docs


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SPOTLER_", "PIGGY_", "SPOKI_", "API_KEYS", "SANDBOX_", "DATABASE_URL", "PUBLIC_"))}
    clean.update(env, ENV_FILE=os.devnull)
    return subprocess.run([sys.executable, "-m", "deploy.vm", "--run-dir", str(tmp_path / "run"), *args], cwd=ROOT,
                          env=clean, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case, env, needle", [
    ("no PUBLIC_HOST", {}, "Missing setting PUBLIC_HOST"),
    ("no certificate", {"PUBLIC_HOST": "actions.example.com"}, "--cert"),
    ("a proxy the service does not trust", {"PUBLIC_HOST": "actions.example.com", "FORWARDED_ALLOW_IPS": "10.0.0.1"},
     "FORWARDED_ALLOW_IPS"),
    ("a bad setting", {"PUBLIC_HOST": "actions.example.com", "WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY='two'"),
])
def test_what_it_needs_is_checked_first_in_one_line(tmp_path, case, env, needle):
    result = _run(tmp_path, "--cert", str(tmp_path / "missing.pem"), "--key", str(tmp_path / "missing.pem"),
                  "--nginx", sys.executable, **env)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0 and len(output.splitlines()) == 1 and needle in output, output
    assert not (tmp_path / "run").exists()  # nothing was started
