"""Sample the RUNNING service with py-spy while it answers a load: where the CPU of a call goes.

    .venv/bin/python -m bench.profile_service [--case start|ListAutomations|OnContactAdded] [--seconds 20]
        [--concurrency 8] [--latency-ms 5] [--out DIR]

The service is started as the Procfile starts it (gunicorn + workers, sandbox simulator in its own process);
``py-spy record --subprocesses --gil`` samples the gunicorn master and every worker (only the thread that holds
the GIL: Python code running on a CPU, not threads waiting for I/O or for the GIL) while ``--concurrency`` keep-alive callers send the case's calls. Writes
``DIR/profile.txt`` (collapsed stacks, for flamegraph tools / speedscope) and prints the functions with the
most samples: inclusive (any frame of the stack) and own (the innermost frame), by package.

Unlike bench/profile_hot_path.py (cProfile in process, through the test client), nothing here changes the
service: the numbers are those of the deployed stack (uvicorn, uvloop, the WSGI bridge, Flask threads).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bench.load import closed_loop
from bench.processes import Stack
from bench.cpu import DROPDOWNS, TRIGGERS, get_call, poll_call
from bench.overhead import start_call

PY_SPY = str(Path(sys.executable).parent / "py-spy")


def _package(frame: str) -> str:
    """``function (path/to/module.py:12)`` -> a short package label."""
    path = frame.rsplit("(", 1)[-1]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            return rest.split("/", 1)[0].split(".py", 1)[0]
    if "/service/" in path:
        return "service/" + path.split("/service/", 1)[1].split("/", 1)[0].split(".py", 1)[0]
    return path.split(":", 1)[0]


def summarize(collapsed: Path, top: int) -> str:
    own: Counter = Counter()
    incl: Counter = Counter()
    own_pkg: Counter = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        own_pkg[_package(frames[-1])] += n
        for f in set(frames):
            incl[f] += n
    lines = [f"{total} samples", "", "own time by package:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own_pkg.most_common(top)]
    lines += ["", "own time by function:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive time by function:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in incl.most_common(top * 2)]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", default="start", choices=["start", *DROPDOWNS, *TRIGGERS])
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--latency-ms", type=float, default=5)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--sim-processes", type=int, default=2, help="simulator processes (gunicorn, keep-alive)")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--gil", action=argparse.BooleanOptionalAction, default=True,
                   help="only samples of the thread holding the GIL (Python code on a CPU; default)")
    p.add_argument("--out", default=".", help="directory for profile.txt")
    args = p.parse_args()
    call = start_call() if args.case == "start" else (
        get_call(DROPDOWNS[args.case]) if args.case in DROPDOWNS else poll_call(TRIGGERS[args.case]))
    out = Path(args.out) / "profile.txt"
    with Stack() as st:
        sim = st.sim(latency_ms=args.latency_ms, jitter_ms=0, pooled=args.sim_processes)
        service = st.service(upstream_url=sim.url)
        closed_loop(call, concurrency=args.concurrency, base_url=service.base_url, total=200, ramp_s=0)  # warm-up
        spy = subprocess.Popen([PY_SPY, "record", "--pid", str(service.master_pid), "--subprocesses",
                                *(["--gil"] if args.gil else []), "--rate", str(args.rate), "--duration", str(int(args.seconds)), "--format", "raw",
                                "--output", str(out), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        load = threading.Thread(target=closed_loop, args=(call,), kwargs=dict(
            concurrency=args.concurrency, base_url=service.base_url, duration=args.seconds + 2, ramp_s=0,
            timeout=60), daemon=True)
        load.start()
        try:
            _, err = spy.communicate(timeout=args.seconds + 60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        load.join(args.seconds + 60)
        if spy.returncode != 0 or not out.exists():
            raise SystemExit(f"py-spy failed ({spy.returncode}): {err[-2000:]}")
    print(f"collapsed stacks: {out}\n")
    print(summarize(out, args.top))


if __name__ == "__main__":
    main()
