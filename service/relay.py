"""The webhook relay's command line (Piggy, Spoki), with the service's settings (environment, then ``.env``):

    python -m service.relay reconcile   # check every upstream webhook against the platform now: recreate what
                                        # someone deleted there, fix changed URLs and attributes
    python -m service.relay status      # subscriptions, upstream webhooks, events and deliveries by state
    python -m service.relay worker      # deliver (and sync) in the foreground until SIGTERM/SIGINT, without
                                        # serving HTTP: an extra delivery process next to the service

Every service process runs the same worker in a background thread; the daily reconcile runs there too. In hosted
mode (``TENANCY=hosted``) each command covers every tenant of Piggy and Spoki, with their stored credentials.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

import sqlalchemy as sa


def _relays(settings) -> tuple:
    """The relays on the service's database, their workers not started: single mode's one (its platform
    account), hosted mode's one per webhook platform (every tenant's subscriptions, their stored credentials)."""
    from service.actions.webhooks import build_hosted_relay, build_relay
    from service.actions.connection import PLATFORMS
    from service.providers.factory import has_webhooks, webhook_manager
    from service.runtime import Runtime

    rt = Runtime(settings)
    if settings.hosted:
        from service.hosted import TenantManagers

        return rt, [build_hosted_relay(settings, rt.ledger.engine, platform, TenantManagers(rt.hosted, platform))
                    for platform in PLATFORMS if has_webhooks(platform)]
    if not has_webhooks(settings.provider):
        rt.close()
        raise SystemExit(f"marketing-actions: {settings.provider} has no webhooks (PROVIDER=piggy or spoki)")
    relay = build_relay(settings, rt.ledger.engine, lambda: webhook_manager(relay.deps.format, rt.provider))
    return rt, [relay]


def reconcile(relays) -> dict[str, int]:
    total = {"reconciled": 0, "failed": 0}
    for relay in relays:
        for key, n in relay.reconcile().items():
            total[key] = total.get(key, 0) + n
    return total


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
    rt, relays = _relays(settings)
    try:
        if args.command == "reconcile":
            print(json.dumps(reconcile(relays)))
        elif args.command == "status":
            print(json.dumps(status(relays[0])))  # the relay's tables: every platform's rows
        else:
            done = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: done.set())
            for relay in relays:
                relay.start()
            print("webhook relay worker running", flush=True)
            done.wait()
    finally:
        for relay in relays:
            relay.close()
        rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
