"""gunicorn settings for the Procfile's ``web`` process (uvicorn workers serving service.asgi:app).

Workers come from WEB_CONCURRENCY (default 2). In sandbox mode (no platform credentials) the master starts
ONE simulator process per upstream before forking the workers (the platform's; Entra ID + Dataverse) and hands
their URLs to them (SANDBOX_UPSTREAM_URL, SANDBOX_ENTRA_URL, ...), so every worker talks to the same sandbox.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
keepalive = 75  # above typical proxy idle timeouts
timeout = 130  # heartbeat for uvicorn workers; Power Automate gives up after 120 s
graceful_timeout = 30
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None  # the service logs every request as a JSON line with its request id

_sandbox = None


def on_starting(server):
    global _sandbox
    from service.config import Settings
    from service.sandbox.launch import start_sandbox_simulators

    settings = Settings.from_env()
    if settings.sandbox:
        _sandbox = start_sandbox_simulators(settings)  # platform + Entra ID/Dataverse simulators, one process each
        os.environ.update(_sandbox.env)
        for line in _sandbox.lines:
            server.log.info(line)


def on_exit(server):
    if _sandbox is not None:
        _sandbox.stop()
