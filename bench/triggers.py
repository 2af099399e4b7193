"""Cost of a trigger poll: a poll that hands over 100 events, and a poll with nothing new (issue #12, point 8).

    .venv/bin/python -m bench.triggers [--latency-ms 50] [--rounds 15] [--json PATH]

The Spotler simulator runs as its own process with a fixed latency on every API call (its /__sim__ control
calls have none); the service is started as the Procfile starts it (gunicorn, 2 uvicorn workers, SQLite ledger).
Each round resets the simulator, makes the first call of the trigger (202), makes 100 events happen, then times

* the poll that answers 200 with the 100 events, and
* the next poll, which has nothing new (202),

counting the upstream calls each poll made (the simulator's request counters). Triggers measured:

* ``OnContactAdded``: 100 sign-ups (the events come with the contact: one feed page);
* ``OnMailingInteraction``: 100 clicks by 100 different contacts (two feeds, opened and clicked; each click
  names only the contact's id, so the service reads the 100 contacts, 16 at a time, for their e-mail
  addresses, and the recent mailings for their names);
* ``OnContactUnsubscribed``: 100 contacts turn a permission off (one feed page plus the per-contact fingerprints
  in the database).

Target: a poll answering 100 events in well under a second at 50 ms upstream latency; a poll with nothing new
makes one upstream call per feed page (one page here: the window holds fewer than 1,000 events).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from urllib.parse import urlsplit

import httpx

from bench.processes import API_KEY, Stack
from bench.report import machine_info, md_table

HEADERS = {"X-API-Key": API_KEY}


def _relative(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + "?" + parts.query


def _requests(sim_root: str) -> int:
    stats = httpx.get(sim_root + "/__sim__/stats", timeout=10).json()
    return sum(stats["requests"].values())


def _control(sim_root: str, name: str, body: dict) -> dict:
    r = httpx.post(f"{sim_root}/__sim__/{name}", json=body, timeout=10)
    r.raise_for_status()
    return r.json()


def _prepare_contacts(root: str, n: int) -> list[str]:
    return [_control(root, "signup", {"email": f"bench{i:03d}@example.com"})["externalId"] for i in range(n)]


SCENARIOS = {
    "OnContactAdded": {
        "path": "/triggers/contacts/added",
        "setup": lambda root: None,
        "events": lambda root, ids: [_control(root, "signup", {"email": f"new{i:03d}@example.com"})
                                     for i in range(100)],
    },
    "OnMailingInteraction": {
        "path": "/triggers/mailings/interactions",
        "setup": lambda root: _prepare_contacts(root, 100),
        "events": lambda root, ids: [_control(root, "click", {"externalId": i}) for i in ids],
    },
    "OnContactUnsubscribed": {
        "path": "/triggers/contacts/unsubscribed",
        "setup": lambda root: _prepare_contacts(root, 100),
        "events": lambda root, ids: [_control(root, "unsubscribe", {"externalId": i, "permission": "Newsletter"})
                                     for i in ids],
    },
}


def one_round(client: httpx.Client, sim_root: str, scenario: dict) -> dict:
    _control(sim_root, "reset", {})
    ids = scenario["setup"](sim_root)
    first = client.get(scenario["path"], headers=HEADERS)
    assert first.status_code == 202, first.text
    scenario["events"](sim_root, ids)
    before = _requests(sim_root)
    t0 = time.perf_counter()
    full = client.get(_relative(first.headers["location"]), headers=HEADERS)
    full_s = time.perf_counter() - t0
    full_calls = _requests(sim_root) - before
    assert full.status_code == 200 and len(full.json()["value"]) == 100, full.text[:500]
    before = _requests(sim_root)
    t0 = time.perf_counter()
    quiet = client.get(_relative(full.headers["location"]), headers=HEADERS)
    quiet_s = time.perf_counter() - t0
    quiet_calls = _requests(sim_root) - before
    assert quiet.status_code == 202, quiet.text
    return {"full_ms": full_s * 1000, "full_calls": full_calls, "quiet_ms": quiet_s * 1000,
            "quiet_calls": quiet_calls}


def _summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))], 1),
            "max": round(ordered[-1], 1)}


def run(args: argparse.Namespace) -> dict:
    out: dict = {"machine": machine_info(), "latency_ms": args.latency_ms, "rounds": args.rounds, "rows": []}
    with Stack() as st:
        sim = st.sim(latency_ms=args.latency_ms, jitter_ms=0)
        service = st.service(upstream_url=sim.url)
        with httpx.Client(base_url=service.base_url, timeout=60) as client:
            for name in args.triggers:
                rounds = [one_round(client, sim.root, SCENARIOS[name]) for _ in range(args.rounds)]
                out["rows"].append({
                    "trigger": name,
                    "poll_100_ms": _summary([r["full_ms"] for r in rounds]),
                    "poll_100_upstream_calls": sorted({r["full_calls"] for r in rounds}),
                    "quiet_poll_ms": _summary([r["quiet_ms"] for r in rounds]),
                    "quiet_poll_upstream_calls": sorted({r["quiet_calls"] for r in rounds}),
                })
    return out


def render(res: dict) -> str:
    rows = [[r["trigger"], r["poll_100_ms"]["p50"], r["poll_100_ms"]["p95"], r["poll_100_ms"]["max"],
             ", ".join(map(str, r["poll_100_upstream_calls"])), r["quiet_poll_ms"]["p50"],
             r["quiet_poll_ms"]["max"], ", ".join(map(str, r["quiet_poll_upstream_calls"]))] for r in res["rows"]]
    head = ["trigger", "100 events p50 ms", "p95 ms", "max ms", "upstream calls", "nothing new p50 ms", "max ms",
            "upstream calls"]
    return (f"{res['rounds']} rounds, upstream latency {res['latency_ms']} ms, {res['machine']['nproc']} cores\n\n"
            + md_table(head, rows))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.triggers", description=__doc__.split("\n")[0])
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--triggers", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--json", default=None, help="write the raw numbers here")
    args = p.parse_args(argv)
    res = run(args)
    print(render(res))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
