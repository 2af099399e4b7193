"""Sandbox Entra ID tools.

    python -m service.sandbox.entra token            # a user token of the sandbox maker for the running sandbox
    python -m service.sandbox.entra token --app      # an app-only token (app role) instead

The running sandbox (``make run`` in sandbox mode) records its simulators in ``var/sandbox/microsoft.json``
(``$SANDBOX_STATE_DIR``);
``--state-file`` points elsewhere, ``--url``/``--ca`` address a simulator directly. The token is printed on one
line, ready for ``curl -H "Authorization: Bearer $(python -m service.sandbox.entra token)"``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests

from service.sandbox.entra import demo


def _target(args) -> tuple[str, str | None]:
    if args.url:
        return args.url.rstrip("/"), args.ca
    path = Path(args.state_file)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        raise SystemExit(f"error: no running sandbox found ({path} is missing). Start the service in sandbox "
                         "mode (make run) or pass --url and --ca.") from None
    return state["entraUrl"].rstrip("/"), state.get("caBundle")


def token(args) -> int:
    url, ca = _target(args)
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override the sandbox CA
    body: dict = {"version": args.token_version}
    if args.app:
        body["roles"] = [demo.API_ROLE]
    else:
        body["scope"] = args.scope
    try:
        resp = session.post(f"{url}/__sim__/token", json=body, verify=ca or True, timeout=(3.05, 10))
        resp.raise_for_status()
    except requests.RequestException as exc:
        print(f"error: the Entra ID simulator at {url} did not answer: {type(exc).__name__}", file=sys.stderr)
        return 1
    print(resp.json()["access_token"])
    return 0


def main(argv: list[str] | None = None) -> int:
    from service.sandbox.microsoft import default_state_file

    p = argparse.ArgumentParser(prog="python -m service.sandbox.entra", description="Sandbox Entra ID tools")
    sub = p.add_subparsers(dest="command")
    t = sub.add_parser("token", help="print an access token for the sandbox service (default)")
    for parser in (p, t):
        parser.add_argument("--state-file", default=str(default_state_file()))
        parser.add_argument("--url", default=None, help="the Entra ID simulator's base URL")
        parser.add_argument("--ca", default=None, help="the sandbox CA bundle (PEM) for --url")
        parser.add_argument("--scope", default=demo.API_SCOPE, help="the delegated scope (default: %(default)s)")
        parser.add_argument("--app", action="store_true", help="an app-only token with the app role instead")
        parser.add_argument("--token-version", type=int, choices=(1, 2), default=1)
    args = p.parse_args(argv)
    return token(args)


if __name__ == "__main__":
    sys.exit(main())
