"""``python -m service.connector build|check``."""

from __future__ import annotations

import argparse
import sys

import yaml

from service.connector.files import check_all, release, write_all
from service.connector.rules import check_rules
from service.connector.spec import (
    DEFAULT_HOST,
    OUT_DIR,
    SPEC_PATH,
    ConnectorError,
    EntraConnection,
    default_entra,
    default_host,
    load_spec,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.connector",
                                     description="Build or check the Power Platform connector definition.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="generate connector-definition/ from openapi.yaml")
    build.add_argument("--host", default=None,
                       help=f"public host name of the service (default: $PUBLIC_HOST or {DEFAULT_HOST})")
    build.add_argument("--out", default=str(OUT_DIR), help="output folder (default: connector-definition)")
    build.add_argument("--spec", default=str(SPEC_PATH), help="source spec (default: openapi.yaml)")
    build.add_argument("--entra-client-id", default=None,
                       help="the connector's app registration (client) id for the Microsoft Entra ID connection "
                            "(default: $ENTRA_CONNECTOR_CLIENT_ID, else a placeholder)")
    build.add_argument("--entra-resource", default=None,
                       help="the service's Application ID URI, e.g. api://<service app id> (default: "
                            "$ENTRA_APP_ID_URI or api://$ENTRA_CLIENT_ID, else a placeholder)")
    build.add_argument("--hosted-publisher-key", action="store_true",
                       help="the hosted connection type also asks for the publisher's API key (X-API-Key; the "
                            "service's API_KEYS in hosted mode); default: the platform account alone")
    check = sub.add_parser("check", help="check the rules; exit 1 with the list of violations")
    check.add_argument("--out", default=str(OUT_DIR),
                       help="connector folder to compare (default: connector-definition)")
    check.add_argument("--spec", default=str(SPEC_PATH), help="source spec (default: openapi.yaml)")
    rel = sub.add_parser("release", help="record the current definition as the released one "
                                         "(<out>/released/apiDefinition.swagger.json), when every check passes")
    rel.add_argument("--out", default=str(OUT_DIR), help="connector folder (default: connector-definition)")
    rel.add_argument("--spec", default=str(SPEC_PATH), help="source spec (default: openapi.yaml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            spec = load_spec(args.spec)
            env = default_entra()
            entra = EntraConnection(args.entra_client_id or env.client_id, args.entra_resource or env.resource)
            for path in write_all(args.out, args.host or default_host(), spec=spec, entra=entra,
                                  hosted_publisher_key=args.hosted_publisher_key):
                print(f"wrote {path}")
            problems = check_rules(spec)
            if problems:
                print(f"warning: openapi.yaml has {len(problems)} rule violation(s); run "
                      "`python -m service.connector check`", file=sys.stderr)
            return 0
        if args.command == "release":
            target, problems = release(args.spec, args.out)
            if not problems:
                print(f"released: {target} (commit it; later changes are checked against it)")
                return 0
        else:
            problems = check_all(args.spec, args.out)
    except (ConnectorError, OSError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if problems:
        print(f"{len(problems)} violation(s):")
        for problem in problems:
            print(f"- {problem}")
        return 1
    print("connector definition ok: every rule passes and connector-definition/ is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
