"""Importing service.asgi (what every gunicorn worker does) builds the app without any network or database
I/O: a child interpreter forbids socket and sqlite3 connections through audit hooks and points DATABASE_URL at a
PostgreSQL port nobody listens on (bench/startup.py's probe)."""

from __future__ import annotations

import subprocess

from bench.processes import PYTHON, ROOT, clean_env
from bench.startup import PROBE, PROBE_ENV, run_probe


def test_import_of_service_asgi_does_no_io():
    result = run_probe()
    assert result["returncode"] == 0, result["stderr"]
    assert result["events"] == []
    assert result["hook_works"] is True  # the hook stops a connection made after the import


def test_probe_fails_when_something_connects_at_import():
    source = PROBE.replace("import service.asgi", "import sqlite3; sqlite3.connect(':memory:'); import service.asgi")
    out = subprocess.run([PYTHON, "-c", source], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=clean_env(**PROBE_ENV))
    assert out.returncode != 0
    assert "I/O at import time: sqlite3.connect" in out.stderr
