"""Maintenance command line of the job ledger (the ledger itself owns its storage: service.actions.storage).

``DATABASE_URL`` (and ``LEDGER_HASH_KEY``) from the environment, else from the service's settings file (``.env``,
or the file ``ENV_FILE`` names), or ``--database-url``::

    python -m service.db upgrade             # apply the Alembic migrations (safe to run concurrently)
    python -m service.db current             # print the schema revision
    python -m service.db purge --days 90     # delete ledger records created more than 90 days ago (and trigger
                                             # state not used for 90 days: service.actions.triggers.store)
    python -m service.db recover             # settle calls whose worker died while a call that is not safe
                                             # to repeat may have reached the platform (OUTCOME_UNKNOWN)
    python -m service.db rotate-credentials  # hosted mode: re-encrypt the kept platform credentials with the
                                             # first key of CREDENTIALS_KEYS (then the old key can go)

The running service does the recovery by itself (every worker process claims jobs whose lease expired: it
resumes them, or settles them when a call that is not safe to repeat may have been applied); ``recover`` is
for a service that is down.
"""

from __future__ import annotations

import argparse
import logging
import sys

from service.actions.ledger import Ledger
from service.actions.storage import (
    OPEN_ERRORS,
    DatabaseUnavailable,
    checked_url,
    create_engine,
    current_revision,
    database_url_from_env,
    ensure_schema,
    head_revision,
    normalize_url,
    unavailable,
    upgrade,
)
from service.config import DEFAULT_DATABASE_URL, DEV_LEDGER_HASH_KEY, read_environment

# the storage functions stay importable from here for scripts written against the old module (one way: this CLI
# imports the ledger's storage, never the reverse)
__all__ = ["create_engine", "current_revision", "database_url_from_env", "ensure_schema", "head_revision", "main",
           "normalize_url", "upgrade"]


def _ledger(database_url: str, env: dict[str, str]) -> Ledger:
    # the same fallback as the service's (config.Settings), so sandbox records stay readable
    key = (env.get("LEDGER_HASH_KEY") or DEV_LEDGER_HASH_KEY).encode()
    return Ledger.from_url(database_url, email_hash_key=key, pool_size=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.db", description="Job ledger database maintenance.")
    parser.add_argument("--database-url", default=None,
                        help="default: $DATABASE_URL, else " + DEFAULT_DATABASE_URL)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="apply the schema migrations")
    up.add_argument("revision", nargs="?", default="head")
    sub.add_parser("current", help="print the current schema revision")
    pg = sub.add_parser("purge", help="delete ledger records older than N days")
    pg.add_argument("--days", type=int, required=True)
    sub.add_parser("recover", help="settle crashed calls that may have reached the platform as OUTCOME_UNKNOWN")
    sub.add_parser("rotate-credentials", help="hosted mode: re-encrypt kept credentials with the first key of "
                                              "CREDENTIALS_KEYS")
    args = parser.parse_args(argv)

    env = read_environment()  # the process environment over the settings file, as the service reads them
    url = args.database_url or database_url_from_env(env)
    try:
        shown = checked_url(url).render_as_string(hide_password=True)
        try:
            return _command(args, parser, url, shown, env)
        except OPEN_ERRORS as exc:
            raise unavailable(exc, url) from None
    except DatabaseUnavailable as exc:  # one line, as the service says it (no traceback)
        print(f"marketing-actions: {exc}", file=sys.stderr, flush=True)
        return 2 if str(exc).startswith("Invalid") else 1


def _command(args: argparse.Namespace, parser: argparse.ArgumentParser, url: str, shown: str,
             env: dict[str, str]) -> int:
    if args.command == "upgrade":
        rev = upgrade(url, args.revision)
        print(f"ledger schema at revision {rev} ({shown})")
        return 0
    if args.command == "current":
        engine = create_engine(url, pool_size=1)
        try:
            print(current_revision(engine) or "(empty)")
        finally:
            engine.dispose()
        return 0
    if args.command == "purge":
        if args.days < 0:
            parser.error("--days must be >= 0")
        from service.actions.triggers.store import TriggerStore

        ledger = _ledger(url, env)
        try:
            n = ledger.purge(older_than_days=args.days)
            t = TriggerStore(ledger.engine).purge(older_than_days=args.days)
        finally:
            ledger.close()
        print(f"purged {n} ledger record(s) older than {args.days} day(s)")
        print(f"purged {t} trigger state row(s) unused for {args.days} day(s)")
        return 0
    if args.command == "recover":
        ledger = _ledger(url, env)
        try:
            settled, waiting = ledger.recover_stale()
        finally:
            ledger.close()
        print(f"marked {settled} stale record(s) as OUTCOME_UNKNOWN; {waiting} left for the service to resume")
        return 0
    if args.command == "rotate-credentials":
        from service.actions.tenancy import CredentialBox, rotate
        from service.config import DEV_CREDENTIALS_KEY
        from service.settings_schema import comma_separated

        box = CredentialBox(comma_separated(env.get("CREDENTIALS_KEYS") or "") or (DEV_CREDENTIALS_KEY,))
        engine = create_engine(url, pool_size=1)
        try:
            ensure_schema(engine, auto_migrate=False)
            done = rotate(engine, box)
        finally:
            engine.dispose()
        print(f"re-encrypted the credentials of {done['jobs']} job(s) and {done['tenants']} tenant(s) with key "
              f"{box.current!r}; {done['unreadable']} could not be opened with any key")
        return 0 if not done["unreadable"] else 1
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    sys.exit(main())
