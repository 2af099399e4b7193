"""``python -m service.sandbox.piggy --port 0 --token T``: serve the Piggy simulator in the foreground.

The first output line is ``PIGGY_SIMULATOR_URL=http://127.0.0.1:NNNN`` (use it as PIGGY_BASE_URL), then the
demo account's ids as ``PIGGY_DEMO_...=value`` lines.
"""

from __future__ import annotations

import argparse
import sys

from service.sandbox.piggy import accounts_app, demo
from service.sandbox.server import SimulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.sandbox.piggy", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    parser.add_argument("--token", action="append", default=[], help="accepted personal access token (repeatable)")
    parser.add_argument("--client-id", default=demo.DEMO_CLIENT_ID, help="OAuth client id accepted by /oauth/token")
    parser.add_argument("--client-secret", default=demo.DEMO_CLIENT_SECRET, help="secret of that OAuth client")
    parser.add_argument("--token-ttl", type=int, default=3600, help="lifetime of OAuth tokens in seconds")
    parser.add_argument("--accounts", choices=("all", "first"), default="all",
                        help="serve every demo account of SANDBOX_ACCOUNTS (the first with --token) or the first alone")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the process that started this one is gone (sandbox mode uses it)")
    args = parser.parse_args(argv)

    app = accounts_app({"token": None}, all_accounts=args.accounts == "all",
                         first_options={"tokens": tuple(args.token) + (demo.DEMO_TOKEN,),
                                        "clients": {args.client_id: args.client_secret}},
                         options={"token_ttl": args.token_ttl})

    def ready(url: str) -> None:
        print(f"PIGGY_SIMULATOR_URL={url}", flush=True)
        for name in sorted(vars(demo)):
            value = getattr(demo, name)
            if name.isupper() and isinstance(value, (str, int)) and "SECRET" not in name and "TOKEN" not in name:
                print(f"PIGGY_DEMO_{name}={value}", flush=True)
        print(f"# accounts (by Bearer token; control calls: header X-Sim-Account: name): "
              f"{', '.join(a.name for a in app.accounts)}", flush=True)
        sys.stdout.flush()

    SimulatorServer(app, host=args.host, port=args.port).serve_foreground(on_ready=ready,
                                                                        exit_with_parent=args.exit_with_parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
