"""The end of a benchmark: the machine it ran on, markdown tables, the raw results as JSON."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

def report(args: Any, run: Callable[[Any], dict], markdown: Callable[[dict], str]) -> None:
    """The end of every benchmark's main(): run, write the raw results to ``--json`` if given, print the tables."""
    out = run(args)
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=str)
    print(markdown(out))


def machine_info() -> dict[str, Any]:
    mem_kb = _status_kb_file("/proc/meminfo", "MemTotal")
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": os.cpu_count(),
            "memory_gb": round((mem_kb or 0) / 1024 / 1024, 1), "cpu": cpu,
            "python": platform.python_version(), "platform": platform.platform()}


def _status_kb_file(path: str, key: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.1f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
