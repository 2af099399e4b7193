"""gunicorn settings for the Procfile's ``web`` process (uvicorn workers serving service.asgi:app).

Workers come from WEB_CONCURRENCY (default 2). In sandbox mode (no platform credentials) the master starts
ONE simulator process before forking the workers and hands its URL to them through SANDBOX_UPSTREAM_URL, so
every worker talks to the same sandbox account. Before that it makes sure the job ledger's schema is current.
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
    from service.actions.storage import SchemaNotCurrent, create_engine, ensure_schema
    from service.config import Settings
    from service.sandbox.launch import start_process

    settings = Settings.from_env()
    # the ledger's schema before any worker starts: migrated (SQLite; PostgreSQL under a lock), or a refusal to
    # start with one line saying what to run (PostgreSQL with AUTO_MIGRATE=false)
    engine = create_engine(settings.effective_database_url, pool_size=1)
    try:
        ensure_schema(engine, auto_migrate=settings.auto_migrate)
    except SchemaNotCurrent as exc:
        raise SystemExit(f"marketing-actions: {exc}") from None
    finally:
        engine.dispose()
    if settings.sandbox and not settings.sandbox_upstream_url:
        _sandbox = start_process(settings.provider)
        os.environ["SANDBOX_UPSTREAM_URL"] = _sandbox.url
        server.log.info("sandbox simulator for %s at %s (pid %s)", settings.provider, _sandbox.url, _sandbox.pid)


def on_exit(server):
    if _sandbox is not None:
        _sandbox.stop()
