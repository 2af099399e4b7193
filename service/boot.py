"""Start-up checks shared by every way of starting the service.

* ``python -m service.boot COMMAND [ARGS...]`` - the Procfile's ``web`` line: check every setting, then
  replace this process with COMMAND (gunicorn). It runs before gunicorn is imported, because gunicorn reads
  ``WEB_CONCURRENCY`` at import time and fails on a bad value with a traceback that does not name it.
  It also checks that the ``--bind`` port is free: gunicorn would retry for five seconds and print ten lines.
  Then it makes sure the job ledger's database answers and its schema is current (:func:`ledger_or_exit`).
* :func:`settings_or_exit` - the same check for ``gunicorn.conf.py`` and ``create_app()`` without settings.

A bad setting stops the start with ONE line on stderr (the variable, its value with secrets hidden, and
what is allowed) and exit status 2; a database that cannot be used (down, refusing us, not migrated with
``AUTO_MIGRATE=false``) with one line and exit status 1; no traceback.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Mapping

from service.config import ConfigError, Settings

EXIT_CONFIG = 2


def check_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting, the platform's too (no network). Raises ConfigError."""
    from service.providers.factory import check_platform_settings

    settings = Settings.from_env(environ)
    check_platform_settings(settings)
    return settings


def settings_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """:func:`check_settings`, or one line on stderr and ``SystemExit(2)``."""
    try:
        return check_settings(environ)
    except ConfigError as exc:
        print(f"marketing-actions: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG) from None


def ledger_or_exit(settings: Settings) -> str:
    """The ledger's schema current (migrated when allowed), or ``SystemExit`` with one line (Python prints it on
    stderr and exits with status 1)."""
    from service.actions.storage import DatabaseUnavailable, SchemaNotCurrent, prepare_ledger

    try:
        return prepare_ledger(settings.effective_database_url, auto_migrate=settings.auto_migrate)
    except (DatabaseUnavailable, SchemaNotCurrent) as exc:
        raise SystemExit(f"marketing-actions: {exc}") from None


def _bind_addresses(argv: list[str]) -> list[tuple[str, int]]:
    """The TCP ``host:port`` values of gunicorn's ``--bind`` / ``-b`` options."""
    values = []
    for i, arg in enumerate(argv):
        if arg in ("--bind", "-b") and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith("--bind="):
            values.append(arg.split("=", 1)[1])
    out = []
    for value in values:
        if value.startswith(("unix:", "fd://")) or ":" not in value:
            continue
        host, _, port = value.rpartition(":")
        if port.isdigit():
            out.append((host.strip("[]") or "0.0.0.0", int(port)))
    return out


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    settings = settings_or_exit()
    for host, port in _bind_addresses(argv):
        if port_in_use(host, port):
            print(f"marketing-actions: port {port} is in use (another instance?): stop that process or choose "
                  f"another port, e.g. PORT={port + 1} make run", file=sys.stderr, flush=True)
            return EXIT_CONFIG
    if argv:
        ledger_or_exit(settings)
    if not argv:
        print("settings ok", flush=True)
        return 0
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"marketing-actions: cannot start {argv[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        return 127
    return 0  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main())
