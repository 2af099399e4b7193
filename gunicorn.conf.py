"""gunicorn settings for the Procfile's ``web`` process (uvicorn workers serving service.asgi:app).

Every value comes from the validated settings (``service.config``: the environment, then ``.env``); a bad
one stops the start with one line naming it. In sandbox mode (no platform credentials) the master starts the
sandbox - ONE simulator process per upstream (the platform's; Entra ID + Dataverse), shared by every worker -
once it listens on its port, and stops it on exit: a start that fails (port in use) never starts it, and the
simulators also stop by themselves if the master dies. The workers, forked afterwards, get their URLs through
SANDBOX_UPSTREAM_URL, SANDBOX_ENTRA_URL, ... Before
anything else (``on_starting``) the master makes sure the job ledger's schema is current.
"""

import os
import signal

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


def on_starting(server):
    """The ledger's schema before any worker starts: migrated (SQLite; PostgreSQL under a lock), or a refusal to
    start with one line saying why (the database is down or refuses us; PostgreSQL with AUTO_MIGRATE=false: what
    to run). Started through the Procfile, ``service.boot`` has done this already: then it is one query."""
    from service.boot import ledger_or_exit

    ledger_or_exit(_settings)


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


def on_exit(server):
    stop_sandbox(_sandbox)
