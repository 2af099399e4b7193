"""The Microsoft side of sandbox mode: the Entra ID and Dataverse simulators, over HTTPS on a local CA.

Both run in one process (Dataverse checks the tokens Entra ID signs), each on its own loopback port:

    running = start_in_process()         # tests, create_app() without gunicorn: daemon threads
    running.entra_url, running.dataverse_url, running.ca_path, running.entra, running.dataverse
    running.stop()

    python -m service.sandbox.microsoft --state-file var/sandbox/microsoft.json   # what gunicorn starts

The standalone process prints ``ENTRA_SIMULATOR_URL=...``, ``DATAVERSE_SIMULATOR_URL=...`` and
``SANDBOX_CA_BUNDLE=...`` lines once listening, and writes the same facts to ``--state-file`` so that
``python -m service.sandbox.entra token`` can ask it for a sandbox user token.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from service.sandbox.commands import python_command
from service.sandbox.dataverse import DataverseSimulator, build
from service.sandbox.entra import EntraSimulator, demo
from service.sandbox.faults import FaultInjector
from service.sandbox.server import SimulatorServer
from service.sandbox.tls import local_ca

#: where the standalone process records its URLs: ``$SANDBOX_STATE_DIR/microsoft.json`` (default var/sandbox,
#: relative to the working directory, next to the sandbox's SQLite file)
STATE_FILE_NAME = "microsoft.json"


def default_state_file() -> Path:
    return Path(os.environ.get("SANDBOX_STATE_DIR") or Path("var") / "sandbox") / STATE_FILE_NAME

URL_LINES = ("ENTRA_SIMULATOR_URL", "DATAVERSE_SIMULATOR_URL", "SANDBOX_CA_BUNDLE")


@dataclass
class RunningMicrosoft:
    entra_url: str
    dataverse_url: str
    ca_path: str
    stop: Callable[[], None]
    pid: int | None = None
    #: in-process only: the simulators, for tests to inspect and control
    entra: EntraSimulator | None = None
    dataverse: DataverseSimulator | None = None
    dataverse_faults: FaultInjector | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def state(self) -> dict[str, str]:
        return {"entraUrl": self.entra_url, "dataverseUrl": self.dataverse_url, "caBundle": self.ca_path,
                "tenantId": demo.TENANT_ID}


def _start_servers(tls_dir: str | os.PathLike[str] | None):
    tls = local_ca(tls_dir)
    entra = EntraSimulator()
    entra_server = SimulatorServer(entra, ssl_context=tls.server_context()).start()
    dataverse, dataverse_app = build(entra.verify)
    dataverse_server = SimulatorServer(dataverse_app, ssl_context=tls.server_context()).start()
    entra.consent(dataverse_server.url)  # admin consent for the service app's delegated Dataverse permission

    def stop() -> None:
        dataverse_server.stop()
        entra_server.stop()

    return RunningMicrosoft(entra_url=entra_server.url, dataverse_url=dataverse_server.url,
                            ca_path=str(tls.ca_path), stop=stop, entra=entra, dataverse=dataverse,
                            dataverse_faults=dataverse_app)


def start_in_process(tls_dir: str | os.PathLike[str] | None = None) -> RunningMicrosoft:
    """Serve both simulators from daemon threads of this process (fresh CA in ``tls_dir`` or a temp dir)."""
    return _start_servers(tls_dir)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service.sandbox.microsoft",
                                description="Entra ID + Dataverse simulators (HTTPS, local CA)")
    p.add_argument("--state-file", default=str(default_state_file()))
    p.add_argument("--tls-dir", default=None, help="where to write the CA (default: next to the state file)")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when the process that started this one is gone (what sandbox mode uses)")
    args = p.parse_args(argv)
    state_file = Path(args.state_file)
    tls_dir = Path(args.tls_dir) if args.tls_dir else state_file.parent / "tls"
    running = _start_servers(tls_dir)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({**running.state(), "pid": os.getpid()}, indent=2) + "\n")
    print(f"ENTRA_SIMULATOR_URL={running.entra_url}")
    print(f"DATAVERSE_SIMULATOR_URL={running.dataverse_url}")
    print(f"SANDBOX_CA_BUNDLE={running.ca_path}")
    print(f"# sandbox user token: {python_command()} -m service.sandbox.entra token --state-file {state_file}")
    print(f"# notes written: {running.dataverse_url}/__sim__/notes", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    parent = os.getppid()
    while not done.wait(1.0 if args.exit_with_parent else None):
        if os.getppid() != parent:  # the service that started us is gone
            break
    running.stop()
    try:
        if json.loads(state_file.read_text()).get("pid") == os.getpid():
            state_file.unlink()
    except (OSError, ValueError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
