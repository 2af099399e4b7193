"""The webhook relay's command line (Piggy, Spoki), with the service's settings (environment, then ``.env``):

    python -m service.relay reconcile   # check every upstream webhook against the platform now: recreate what
                                        # someone deleted there, fix changed URLs and attributes
    python -m service.relay status      # subscriptions, upstream webhooks, events and deliveries by state
    python -m service.relay worker      # deliver (and sync) in the foreground until SIGTERM/SIGINT, without
                                        # serving HTTP: an extra delivery process next to the service

Every service process runs the same worker in a background thread; the daily reconcile runs there too.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

import sqlalchemy as sa


def _relay(settings):
    """The relay on the service's database and platform account, its worker not started."""
    from service.actions.webhooks import build_relay
    from service.providers.factory import has_webhooks, webhook_manager
    from service.runtime import Runtime

    if not has_webhooks(settings.provider):
        raise SystemExit(f"marketing-actions: {settings.provider} has no webhooks (PROVIDER=piggy or spoki)")
    rt = Runtime(settings)
    relay = build_relay(settings, rt.ledger.engine, lambda: webhook_manager(relay.deps.format, rt.provider))
    return rt, relay


def status(relay) -> dict[str, dict[str, int]]:
    from service.actions.webhooks.model import deliveries, events, subscriptions, upstreams

    out: dict[str, dict[str, int]] = {}
    with relay.deps.engine.connect() as conn:
        for name, column in (("subscriptions", subscriptions.c.status), ("deliveries", deliveries.c.status)):
            out[name] = {s: n for s, n in conn.execute(sa.select(column, sa.func.count()).group_by(column))}
        out["upstreamWebhooks"] = {"total": conn.execute(sa.select(sa.func.count()).select_from(upstreams)).scalar()}
        out["events"] = {"total": conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.relay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("reconcile", "status", "worker"))
    args = parser.parse_args(argv)
    from service.boot import settings_or_exit
    from service.logs import configure_logging

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    rt, relay = _relay(settings)
    try:
        if args.command == "reconcile":
            print(json.dumps(relay.reconcile()))
        elif args.command == "status":
            print(json.dumps(status(relay)))
        else:
            done = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: done.set())
            relay.start()
            print("webhook relay worker running", flush=True)
            done.wait()
    finally:
        relay.close()
        rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
