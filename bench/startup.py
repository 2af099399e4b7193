"""Start-up: create_app() and the first answered request, and proof that importing service.asgi does no I/O.

    .venv/bin/python -m bench.startup [--runs 5]

Each measurement runs in a fresh interpreter (nothing cached in memory; the OS file cache is warm after the
first run, as on a restarted worker):

* ``import``: ``import service.app`` (Connexion, Flask, the service's modules);
* ``create_app``: ``create_app()`` (settings, spec loading and validation, middleware);
* ``first request``: the first ``GET /health`` answered through the app's ASGI stack (Connexion test client);
* ``first StartAutomation``: the first write, which builds the provider and the ledger lazily (SQLite
  migrations in sandbox mode) - reported for information, not part of the target;
* ``Procfile boot``: from spawning the Procfile's ``web:`` command (gunicorn master + 2 workers, sandbox
  simulator process) to the first 200 on /health.

No-I/O proof (:data:`PROBE`): a child interpreter installs ``sys.addaudithook`` that raises on
``socket.connect``, ``socket.getaddrinfo``, ``socket.gethostbyname`` and ``sqlite3.connect``, with
``DATABASE_URL`` pointing at a PostgreSQL port nobody listens on (psycopg connects in C, outside the audit
hooks: a connection attempt would raise), then imports ``service.asgi``. It must exit 0 with no event seen.
Target (issue #15): create_app() + first answered request within 1 s (issue #8: 1.5 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

from bench.processes import PYTHON, ROOT, Stack, clean_env
from bench.report import machine_info, md_table

#: the child program of the no-I/O proof; prints a JSON line {"events": [...], "hook_works": bool}
PROBE = r'''
import json, sys
events = []
WATCH = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "sqlite3.connect"}
armed = True
def hook(event, args):
    if armed and event in WATCH:
        events.append(event)
        raise RuntimeError(f"I/O at import time: {event} {args!r}"[:300])
sys.addaudithook(hook)
import service.asgi  # noqa: F401  - builds the app
armed_result = list(events)
# positive control: the hook does stop a connection (so the probe can fail)
try:
    import sqlite3
    sqlite3.connect(":memory:")
    hook_works = False
except RuntimeError:
    hook_works = True
armed = False
print(json.dumps({"events": armed_result, "hook_works": hook_works}))
'''

#: env for the probe: sandbox mode, a PostgreSQL URL on a closed port (a connect attempt would fail loudly)
PROBE_ENV = {"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none", "PROVIDER": "spotler"}

_TIMING = r'''
import json, sys, time, tempfile, uuid
t0 = time.perf_counter()
from service.app import create_app
t1 = time.perf_counter()
app = create_app()
t2 = time.perf_counter()
client = app.test_client()
client.__enter__()
r = client.get("/health")
assert r.status_code == 200, r.text
t3 = time.perf_counter()
sim_url = sys.argv[1]
r = client.post(f"/automations/{sys.argv[2]}/start", json={"contact": {"externalId": sys.argv[3]}},
                headers={"X-API-Key": "sandbox", "Idempotency-Key": uuid.uuid4().hex})
assert r.status_code == 200, r.text
t4 = time.perf_counter()
client.__exit__(None, None, None)
print(json.dumps({"import_s": t1 - t0, "create_app_s": t2 - t1, "first_request_s": t3 - t2,
                  "first_start_automation_s": t4 - t3}))
'''


def run_probe(extra_env: dict | None = None) -> dict:
    out = subprocess.run([PYTHON, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=clean_env(**PROBE_ENV, **(extra_env or {})))
    result = {"returncode": out.returncode, "stderr": out.stderr[-2000:]}
    for line in out.stdout.splitlines()[::-1]:
        if line.startswith("{") and '"events"' in line:
            result.update(json.loads(line))
            break
    return result


def timings(runs: int) -> list[dict]:
    from service.sandbox.spotler import DEMO

    out = []
    with Stack() as st:
        sim = st.sim()
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                env = clean_env(SANDBOX_UPSTREAM_URL=sim.url, DATABASE_URL=f"sqlite:///{tmp}/ledger.db",
                                 LOG_LEVEL="WARNING")
                res = subprocess.run([PYTHON, "-W", "ignore", "-c", _TIMING, sim.url, DEMO.automations["welcome"],
                                      DEMO.contacts["jan"]], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                     env=env)
                if res.returncode != 0:
                    raise RuntimeError(res.stderr[-3000:])
                out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


def procfile_boot(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        with Stack() as st:
            out.append(st.service().ready_after)  # gunicorn.conf.py starts its own sandbox simulator
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json")
    args = p.parse_args()
    probe = run_probe()
    t = timings(args.runs)
    boots = procfile_boot(max(1, args.runs // 2))
    res = {"machine": machine_info(), "probe": probe, "timings": t, "procfile_boot_s": boots}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)

    def med(key: str) -> float:
        return round(statistics.median(x[key] for x in t) * 1000, 1)

    def mx(key: str) -> float:
        return round(max(x[key] for x in t) * 1000, 1)

    both = [x["create_app_s"] + x["first_request_s"] for x in t]
    rows = [["import service.app", med("import_s"), mx("import_s")],
            ["create_app()", med("create_app_s"), mx("create_app_s")],
            ["first GET /health answered", med("first_request_s"), mx("first_request_s")],
            ["create_app() + first answer (target <= 1000)", round(statistics.median(both) * 1000, 1),
             round(max(both) * 1000, 1)],
            ["first StartAutomation (lazy provider + ledger migrations)", med("first_start_automation_s"),
             mx("first_start_automation_s")],
            ["Procfile boot to first /health 200 (wall)", round(statistics.median(boots) * 1000, 1),
             round(max(boots) * 1000, 1)]]
    print(f"{args.runs} fresh interpreters.\n")
    print(md_table(["step", "median ms", "max ms"], rows))
    ok = max(both) <= 1.0
    print(f"\ncreate_app() + first answered request: {'PASS' if ok else 'FAIL'} (max {max(both) * 1000:.0f} ms)")
    print(f"import service.asgi with socket/sqlite3 connects forbidden: exit {probe['returncode']}, events "
          f"{probe.get('events')}, hook verified: {probe.get('hook_works')} -> "
          f"{'PASS' if probe['returncode'] == 0 and not probe.get('events') and probe.get('hook_works') else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
