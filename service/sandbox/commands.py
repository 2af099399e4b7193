"""How the sandbox's hints name a command a reader runs (start-up log, simulators' first lines)."""

from __future__ import annotations

import os
import sys


def python_command() -> str:
    """This interpreter as a reader runs it from the working directory (``.venv/bin/python`` in a checkout): a
    bare ``python`` is not the virtualenv's (ModuleNotFoundError outside it)."""
    exe = os.path.abspath(sys.executable)
    relative = os.path.relpath(exe)
    return relative if not relative.startswith("..") else exe
