"""What Entra ID sign-in and the Dataverse note cost per call, in process (issue #14).

    .venv/bin/python -m bench.entra [--calls 200] [--json PATH]

The app is built by ``create_app()`` with production settings (response validation off, SQLite ledger in a temp
dir) and driven sequentially through Connexion's test client; the Spotler simulator and the Entra ID + Dataverse
simulators (HTTPS, local CA) run in this process on loopback threads without added latency, so the numbers are
the service's own overhead plus loopback round trips. Measured, median and p95 in milliseconds:

* ``GET /connection`` with the API key vs. with an Entra ID user token (signature, claims; JWKS cached);
* ``StartAutomation`` with a contact; + ``regarding`` (one Dataverse POST, app token from msal's cache);
  + ``regarding`` without contact as the signed-in user (OBO token cached; one Dataverse GET and one POST).

Token requests at the Entra ID simulator are reported too: they stay at one per kind however many calls.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
import uuid

from bench.report import machine_info, md_table
from service.app import create_app
from service.config import Settings
from service.microsoft.config import MicrosoftSettings
from service.sandbox.dataverse import demo as dv
from service.sandbox.launch import start_in_process
from service.sandbox.microsoft import start_in_process as start_microsoft
from service.sandbox.spotler import DEMO

KEY = "bench-key-0123456789abcdef"
WELCOME = DEMO.automations["welcome"]


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.entra", description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)
    spotler, microsoft = start_in_process("spotler"), start_microsoft()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(api_keys=(KEY,), database_url=f"sqlite:///{tmp}/ledger.db", list_cache_seconds=30,
                                sandbox_upstream_url=spotler.url, microsoft=MicrosoftSettings(
                                    sandbox_entra_url=microsoft.entra_url,
                                    sandbox_dataverse_url=microsoft.dataverse_url,
                                    sandbox_ca_bundle=microsoft.ca_path))
            app = create_app(settings)
            token = microsoft.entra.user_token()
            key, bearer = {"X-API-Key": KEY}, {"Authorization": f"Bearer {token}"}
            jan = {"email": DEMO.emails["jan"]}
            regarding = {"table": "contact", "id": dv.CONTACT_JAN}
            cases = {
                "GET /connection, API key": ("GET", "/connection", None, key),
                "GET /connection, Entra ID token": ("GET", "/connection", None, bearer),
                "StartAutomation, contact": ("POST", f"/automations/{WELCOME}/start", {"contact": jan}, key),
                "StartAutomation, contact + regarding (app)": (
                    "POST", f"/automations/{WELCOME}/start", {"contact": jan, "regarding": regarding}, key),
                "StartAutomation, regarding only (on behalf of the user)": (
                    "POST", f"/automations/{WELCOME}/start", {"regarding": regarding}, bearer),
            }
            rows, raw = [], {}
            with app.test_client() as client:
                for name, (method, path, body, headers) in cases.items():
                    samples = []
                    for i in range(args.calls + 5):
                        h = {**headers, "Idempotency-Key": uuid.uuid4().hex} if method == "POST" else headers
                        t = time.perf_counter()
                        r = client.request(method, path, json=body, headers=h)
                        elapsed = time.perf_counter() - t
                        if r.status_code != 200:
                            raise SystemExit(f"{name}: {r.status_code} {r.text[:300]}")
                        if i >= 5:  # warm-up: first token, key set, lists
                            samples.append(elapsed)
                    p50, p95 = _ms(samples)
                    rows.append([name, p50, p95])
                    raw[name] = {"p50_ms": p50, "p95_ms": p95, "calls": len(samples)}
            requests_by_kind = {k: microsoft.entra.token_requests(k) for k in ("client_credentials", "obo")}
            notes = len(microsoft.dataverse.notes())
    finally:
        spotler.stop()
        microsoft.stop()
    print(md_table(["case", "p50 ms", "p95 ms"], rows))
    print(f"\ntoken requests at Entra ID: {requests_by_kind}; notes written: {notes}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info(), "cases": raw, "token_requests": requests_by_kind,
                       "notes": notes}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
