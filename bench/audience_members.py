"""How long AddToAudience takes for N contacts given by email, against the Spotler simulator.

    .venv/bin/python -m bench.audience_members --contacts 3000 [--by email|externalId] [--process]

The simulator runs in this process (as in the test suite) or, with ``--process``, as its own process (as in a
sandbox deployment). Contacts are seeded through the simulator's bulk insert; the call goes through the real
app (Connexion test client), so the time includes validation, the ledger and contact resolution.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from service.app import create_app
from service.config import Settings
from service.providers.factory import build_provider
from service.sandbox.launch import start_in_process, start_process

API_KEY = "bench-key-0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--by", choices=["email", "externalId"], default="email")
    parser.add_argument("--process", action="store_true", help="run the simulator as a separate process")
    args = parser.parse_args()

    running = start_process("spotler") if args.process else start_in_process("spotler")
    try:
        seeder = build_provider(Settings(), sandbox_url=running.url)
        seeder.client.insert_contacts([{"external_id": f"bench-{i}", "properties": {"email": f"bench{i}@example.com"}}
                                       for i in range(args.contacts)])
        seeder.close()
        settings = Settings(api_keys=(API_KEY,), database_url=f"sqlite:///{tempfile.mkdtemp()}/ledger.db",
                            sandbox_upstream_url=running.url)
        contacts = [{"email": f"bench{i}@example.com"} if args.by == "email" else {"externalId": f"bench-{i}"}
                    for i in range(args.contacts)]
        with create_app(settings).test_client() as client:
            started = time.monotonic()
            resp = client.post("/audiences/aud-customers/members", json={"contacts": contacts},
                               headers={"X-API-Key": API_KEY})
            elapsed = time.monotonic() - started
        body = resp.json()
        print(f"{args.contacts} contacts by {args.by}, simulator {'process' if args.process else 'in-process'}: "
              f"HTTP {resp.status_code}, added {body.get('added')}, not found {body.get('notFound')}, "
              f"{elapsed:.2f} s ({elapsed / max(args.contacts, 1) * 1000:.1f} ms per contact)")
    finally:
        running.stop()


if __name__ == "__main__":
    main()
