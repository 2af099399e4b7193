"""gunicorn settings for the Procfile's ``web`` process (uvicorn workers serving service.asgi:app).

Every value comes from the validated settings (``service.config``: the environment, then ``.env``); a bad
one stops the start with one line naming it. In sandbox mode (no platform credentials) the master starts the
sandbox - ONE simulator process per upstream (the platform's; Entra ID + Dataverse), shared by every worker -
once it listens on its port, and stops it on exit: a start that fails (port in use) never starts it, and the
simulators also stop by themselves if the master dies. The workers, forked afterwards, get their URLs through
SANDBOX_UPSTREAM_URL, SANDBOX_ENTRA_URL, ... Before
anything else (``on_starting``) the master makes sure the job ledger's schema is current.

Metrics (``GET /metrics``, ``service/metrics.py``): the master creates the folder of prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, or a new temporary one) and empties it, before any worker is
forked; each worker writes its values there and a scrape adds up every worker's. ``child_exit`` marks a dead
worker's files. Traces (OpenTelemetry) are set up in each worker, after the fork (``create_app``).
"""

import glob
import os
import shutil
import signal
import tempfile

from service.boot import settings_or_exit
from service.sandbox.launch import start_sandbox, stop_sandbox

_settings = settings_or_exit()

workers = _settings.web_concurrency
keepalive = 75  # above typical proxy idle timeouts
timeout = 130  # heartbeat for uvicorn workers; Power Automate gives up after 120 s
graceful_timeout = 30
max_requests = _settings.gunicorn_max_requests
max_requests_jitter = 500 if max_requests else 0
forwarded_allow_ips = _settings.forwarded_allow_ips
accesslog = None  # the service logs every request as a JSON line with its request id
# gunicorn's control socket defaults to ONE path per user ($HOME/.gunicorn/gunicorn.ctl): a second instance
# would take it over and the first one's stop would delete it. We do not use gunicornc: no socket.
control_socket_disable = True

_sandbox = None


def _metrics_folder(configured: str) -> tuple[str, bool]:
    """The multiprocess metrics folder, created and emptied (a previous run's values would be added up
    again), and whether it is a temporary one of this start."""
    if not configured:
        return tempfile.mkdtemp(prefix="marketing-actions-metrics-"), True
    os.makedirs(configured, exist_ok=True)
    for path in glob.glob(os.path.join(configured, "*.db")):
        os.remove(path)
    return configured, False


_metrics_dir: str | None = None
_metrics_temporary = False


def on_starting(server):
    """The ledger's schema before any worker starts: migrated (SQLite; PostgreSQL under a lock), or a refusal to
    start with one line saying why (the database is down or refuses us; PostgreSQL with AUTO_MIGRATE=false: what
    to run). Started through the Procfile, ``service.boot`` has done this already: then it is one query. Then
    the metrics folder, made and emptied for the workers to come."""
    from service.boot import ledger_or_exit

    global _metrics_dir, _metrics_temporary
    ledger_or_exit(_settings)
    _metrics_dir, _metrics_temporary = _metrics_folder(_settings.prometheus_multiproc_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir  # inherited by every worker forked from here


def when_ready(server):
    """After the listening sockets are bound, before the workers are forked."""
    global _sandbox
    _sandbox = start_sandbox(_settings)
    os.environ.update(_sandbox.env)
    if _sandbox.simulators:
        server.log.info("sandbox for %s: %s", _settings.provider, _sandbox.describe())


def post_worker_init(worker):
    """Two quiet stops for the uvicorn worker:

    * uvicorn gets the listening sockets themselves rather than gunicorn's wrappers: the event loop owns (and
      closes) a socket handed to its server, and closing gunicorn's wrapper afterwards logged "Error while
      closing socket [Errno 9] Bad file descriptor" at every stop (benoitc/gunicorn#3013).
    * Ctrl+C signals every process of the terminal's group, workers included: uvicorn shuts down gracefully,
      then raises SIGINT again against the handler it found, and gunicorn warned "Worker was sent SIGINT!"
      for each worker. Ignored by default, that second SIGINT ends the worker normally."""
    worker.sockets = [getattr(s, "sock", s) for s in worker.sockets]
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def child_exit(server, worker):
    """A worker is gone (stopped, recycled, killed): its live-gauge files go; its counters stay in the sums."""
    from service.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def on_exit(server):
    stop_sandbox(_sandbox)
    if _metrics_temporary and _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
