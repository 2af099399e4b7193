"""``python -m service.sandbox.spoki --port 0 --api-key K``: serve the Spoki simulator in the foreground.

The first output line is ``SPOKI_SIMULATOR_URL=http://127.0.0.1:NNNN`` (use it as SPOKI_BASE_URL), then the
demo account's ids as ``SPOKI_DEMO_...=value`` lines.
"""

from __future__ import annotations

import argparse
import sys

from service.sandbox.server import SimulatorServer
from service.sandbox.spoki import accounts_app, demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.sandbox.spoki", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    parser.add_argument("--api-key", action="append", default=[], help="accepted API key (repeatable)")
    parser.add_argument("--page-size", type=int, default=20, help="items per page of list answers")
    parser.add_argument("--accounts", choices=("all", "first"), default="all",
                        help="serve every demo account of SANDBOX_ACCOUNTS (the first with --api-key) or the first alone")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the process that started this one is gone (sandbox mode uses it)")
    args = parser.parse_args(argv)

    app = accounts_app({"api_key": None}, all_accounts=args.accounts == "all",
                         first_options={"api_keys": tuple(args.api_key) + (demo.DEMO_API_KEY,)},
                         options={"page_size": args.page_size})

    def ready(url: str) -> None:
        print(f"SPOKI_SIMULATOR_URL={url}", flush=True)
        for name in sorted(vars(demo)):
            value = getattr(demo, name)
            if name.isupper() and isinstance(value, (str, int)) and "SECRET" not in name and "KEY" not in name:
                print(f"SPOKI_DEMO_{name}={value}", flush=True)
        print(f"# accounts (by X-Spoki-Api-Key; control calls: header X-Sim-Account: name): "
              f"{', '.join(a.name for a in app.accounts)}", flush=True)
        sys.stdout.flush()

    SimulatorServer(app, host=args.host, port=args.port).serve_foreground(on_ready=ready,
                                                                        exit_with_parent=args.exit_with_parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
