"""Commands we tell a reader to run use the virtualenv's interpreter: a bare ``python -m service...`` is the
system's, which has none of the service's packages (ModuleNotFoundError: oauthlib). Findings: the README's
Triggers section (now docs/triggers.md) and the start-up log's token hint said ``python -m ...``."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from service.actions.storage import upgrade_command_hint
from service.sandbox.launch import RunningSimulator, Sandbox

ROOT = Path(__file__).resolve().parent.parent
BARE = re.compile(r"(?<![\w./<-])python3?(?:\.\d+)? -m service\.")


def _without_comments(path: Path) -> str:
    return re.sub(r"<!--.*?-->", "", path.read_text(), flags=re.S)  # generators' notes


def test_the_readme_runs_service_modules_with_the_virtualenvs_python():
    text = _without_comments(ROOT / "README.md")
    bare = [line.strip() for line in text.splitlines() if BARE.search(line)]
    assert bare == []
    assert ".venv/bin/python -m service.sandbox.spotler --port 8081" in text


def test_the_docs_run_service_modules_with_the_virtualenvs_python():
    """What moved from the README to docs/ (the triggers' walk-through, the settings, the connector) too."""
    bare = [(path.name, line.strip()) for path in sorted((ROOT / "docs").glob("*.md"))
            for line in _without_comments(path).splitlines() if BARE.search(line)]
    assert bare == []
    assert ".venv/bin/python -m service.sandbox.flows --port 8099" in (ROOT / "docs" / "triggers.md").read_text()


def test_the_start_up_logs_token_hint_is_a_command_that_runs(tmp_path):
    sim = RunningSimulator(url="https://127.0.0.1:1", stop=lambda: None, pid=1,
                           simulator={"entra": "https://127.0.0.1:1", "dataverse": "https://127.0.0.1:2", "ca": "x"})
    sandbox = Sandbox()
    sandbox.add("microsoft", sim)
    hint = sandbox.describe()
    assert not BARE.search(hint), hint
    command = re.search(r"a user token: (\S+ -m service\.sandbox\.entra token)", hint).group(1)
    # run from the repository as the README says (no sandbox running: it says so, in one line, without a
    # ModuleNotFoundError)
    env = {**os.environ, "SANDBOX_STATE_DIR": str(tmp_path)}
    done = subprocess.run(shlex.split(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert "ModuleNotFoundError" not in done.stderr and done.stderr.count("\n") <= 1, done.stderr
    assert shlex.split(command)[0] in (os.path.relpath(sys.executable, ROOT), sys.executable)


def test_the_schema_hint_names_make_migrate_and_the_virtualenvs_python():
    hint = upgrade_command_hint()
    assert "make migrate" in hint and not BARE.search(hint)
