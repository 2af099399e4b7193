""".env: the service reads it itself (python-dotenv), and .env.example means the same to python-dotenv and to a
shell (`set -a; . ./.env; set +a`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from service.boot import check_settings
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / ".env.example"

_DUMP = f"{sys.executable} -c 'import json, os; print(json.dumps(dict(os.environ)))'"


def _assigned_names(path: Path) -> list[str]:
    return [line.split("=", 1)[0] for line in path.read_text().splitlines()
            if line and not line.startswith("#") and "=" in line]


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_env_example_means_the_same_to_dotenv_and_to_a_shell(shell, tmp_path):
    if shutil.which(shell) is None:  # pragma: no cover - Debian has both
        pytest.skip(f"no {shell}")
    out = subprocess.run([shell, "-c", f'set -a; . "$1"; set +a; {_DUMP}', shell, str(EXAMPLE)],
                         env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == "", out.stderr  # every line is valid shell
    from_shell = json.loads(out.stdout)
    from_dotenv = dotenv_values(EXAMPLE)
    names = _assigned_names(EXAMPLE)
    assert set(from_dotenv) == set(names)
    assert {n: from_shell.get(n) for n in names} == {n: from_dotenv[n] for n in names}
    # the JSON templates and routes survive both ways (they broke the shell when unquoted)
    assert json.loads(from_dotenv["SPOTLER_BODY_TAG_ADD"]) == {"tags": "{tags}", "score": "{score}"}
    assert from_shell["SPOTLER_ROUTE_TAG_LIST"] == "GET tag/list"


def test_env_example_is_a_valid_configuration():
    settings = check_settings(dotenv_values(EXAMPLE))
    assert settings.mode == "sandbox" and settings.provider == "spotler"


def test_the_service_reads_dotenv_and_the_environment_wins(tmp_path, monkeypatch):
    env_file = tmp_path / "settings.env"
    env_file.write_text("FLASK_THREADS=7\nLOG_LEVEL=WARNING\nSPOTLER_ROUTE_TAG_LIST='GET tags/all'\n"
                        "SPOTLER_BODY_TAG_REMOVE='{\"labels\": \"{tags}\"}'\n")
    for name in ("FLASK_THREADS", "LOG_LEVEL", "SPOTLER_ROUTE_TAG_LIST", "SPOTLER_BODY_TAG_REMOVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENV_FILE", str(env_file))
    monkeypatch.setenv("LOG_LEVEL", "ERROR")  # set in the environment: wins over the file

    settings = Settings.from_env()
    assert settings.flask_threads == 7
    assert settings.log_level == "ERROR"
    assert settings.platform_env["SPOTLER_ROUTE_TAG_LIST"] == "GET tags/all"

    from service.providers.factory import provider_config

    config = provider_config(settings)  # the platform's settings come from the file too
    assert config.route_tag_list == "GET tags/all"
    assert json.loads(config.body_tag_remove) == {"labels": "{tags}"}


def test_without_a_dotenv_file_the_environment_alone_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.setenv("FLASK_THREADS", "5")
    assert Settings.from_env().flask_threads == 5
