"""Settings: read from the environment once, validated, with errors that name the variable.

``Settings.from_env()`` is called by ``create_app()`` (never at import time). Each setting is declared once,
as a field of :class:`Settings` (or :class:`~service.microsoft.config.MicrosoftSettings`) that carries its
variable, default, accepted values and comment (:mod:`service.settings_schema`); ``.env.example`` is written
from those declarations (``.venv/bin/python -m service.env_example``). Mode:

* **sandbox** - no credentials for the chosen platform are set: the service talks to the in-repo simulator
  of that platform (``service/sandbox``) on SQLite, and accepts the API key ``sandbox`` when ``API_KEYS`` is
  empty. ``/health`` and the startup log say so.
* **live** - the platform's credentials are set (:data:`LIVE_CREDENTIALS`): ``API_KEYS`` (or Entra ID),
  ``LEDGER_HASH_KEY`` and ``TRIGGER_STATE_SECRET`` are required; one error names every one that is missing.

Where the values come from: the process environment, then the file ``.env`` in the working directory (or the
file named by ``ENV_FILE``) for every variable the environment does not set (python-dotenv; the same
precedence as ``dotenv run --no-override``). An invalid value raises :class:`ConfigError`, whose message is
one line naming the variable, its value (secrets hidden) and what is allowed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from service.microsoft.config import MicrosoftConfigError, MicrosoftSettings
from service.settings_schema import Variable, comma_separated, read, setting, variables

PROVIDERS = ("spotler", "piggy", "spoki")

#: each platform's credentials, as the groups that go together: setting any of them switches the platform to
#: live mode, and then each group of which one is set must be complete (Piggy: a token, or an OAuth client)
LIVE_CREDENTIALS: dict[str, tuple[tuple[str, ...], ...]] = {
    "spotler": (("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET"),),
    "piggy": (("PIGGY_API_TOKEN",), ("PIGGY_CLIENT_ID", "PIGGY_CLIENT_SECRET")),
    "spoki": (("SPOKI_API_KEY",),),
}

SANDBOX_API_KEY = "sandbox"
DEV_LEDGER_HASH_KEY = "sandbox-ledger-hash-key-not-secret"
DEV_TRIGGER_STATE_SECRET = "sandbox-trigger-state-secret-not-secret"
DEFAULT_DATABASE_URL = "sqlite:///var/marketing-actions.db"
TENANCIES = ("single", "hosted")
DEV_TENANT_HASH_KEY = "sandbox-tenant-hash-key-not-secret"
DEV_CREDENTIALS_KEY = "dev:sandbox-credentials-key-not-secret"
#: hosted mode without API_KEYS: the key the request middleware presents for a call that brings none (open)
HOSTED_OPEN_KEY = "hosted-open"


#: platform credentials whose values are never shown (in messages, logs); besides, every setting declared
#: ``secret`` and every name matching _SECRET_NAME
PLATFORM_SECRETS = frozenset({"SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET", "PIGGY_API_TOKEN",
                              "PIGGY_CLIENT_SECRET", "SPOKI_API_KEY"})
_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|API_KEY|API_KEYS|HASH_KEY)$")


def is_secret(variable: str) -> bool:
    return variable in SECRET_VARIABLES or bool(_SECRET_NAME.search(variable))


def show_value(variable: str, value: str) -> str:
    """How a value may appear in a message: secrets hidden, a password in a URL masked, long values cut."""
    if is_secret(variable):
        return f"<hidden, {len(value)} characters>"
    if "://" in value and "@" in value:
        try:
            parts = urlsplit(value)
            if parts.password:
                netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
                value = urlunsplit(parts._replace(netloc=netloc))
        except ValueError:
            value = value.split("://", 1)[0] + "://***"
    if len(value) > 120:
        value = value[:117] + "..."
    return repr(value)


class ConfigError(Exception):
    """A setting is missing or invalid. The message is one line: the variable, its value and what is allowed.

    ``ConfigError.invalid(variable, value, allowed)`` and ``ConfigError.missing(variable, reason, allowed)``
    build that line; ``ConfigError(message)`` takes a ready sentence (it must name the variable).
    """

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the parts contained
        self.variable = variable

    @classmethod
    def invalid(cls, variable: str, value: str, allowed: str) -> "ConfigError":
        return cls(f"Invalid setting {variable}={show_value(variable, value)}: allowed is {allowed.rstrip('.')}.",
                   variable=variable)

    @classmethod
    def missing(cls, variable: str, reason: str, allowed: str) -> "ConfigError":
        return cls(f"Missing setting {variable} ({reason}): allowed is {allowed.rstrip('.')}.", variable=variable)


    @classmethod
    def of(cls, problems: list["ConfigError"]) -> "ConfigError":
        """One error (one line) that names every problem, in the order given."""
        return cls(" ".join(str(p) for p in problems), variable=problems[0].variable)


def _database_url(value: str) -> bool:
    """``sqlite:///path`` or a PostgreSQL URL (``postgresql+psycopg://``, ``postgresql://``, ``postgres://``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value.replace("postgres://", "postgresql://", 1) if value.startswith("postgres://") else value)
    except (ArgumentError, ValueError):
        return False
    return url.drivername in ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _redis_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return (parts.scheme in ("redis", "rediss") and bool(parts.hostname)) or (
        parts.scheme == "unix" and bool(parts.path))


_HOST_PATTERN = re.compile(r"^(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*$")


def _platform_url(item: str) -> bool:
    name, sep, url = item.partition("=")
    return bool(sep) and name in PROVIDERS and _http_url(url)


def _seconds(text: str) -> tuple[float, ...]:
    return tuple(float(p) for p in comma_separated(text))


def _retry_schedule(steps: tuple[float, ...]) -> bool:
    return 1 <= len(steps) <= 20 and all(0.01 <= x <= 86400 for x in steps)


def _host_patterns(hosts: tuple[str, ...]) -> bool:
    return bool(hosts) and all(_HOST_PATTERN.match(h) for h in hosts)


def env_file() -> Path:
    """The dotenv file the service reads: ``$ENV_FILE``, else ``.env`` in the working directory."""
    return Path(os.environ.get("ENV_FILE") or ".env")


def read_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` as given; else the process environment over the values of the dotenv file (if any)."""
    if environ is not None:
        return dict(environ)
    path = env_file()
    from_file = {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}
    return {**from_file, **os.environ}


_SECRET_ALLOWED = "a random secret of 32+ characters"


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, each declared once: its variable, default, accepted values and the
    comment ``.env.example`` shows (``.venv/bin/python -m service.env_example`` writes it from here)."""

    provider: str = setting(
        "PROVIDER", "spotler", choices=PROVIDERS, section="the service",
        doc="Which marketing platform this deployment drives: spotler | piggy | spoki")
    tenancy: str = setting(
        "TENANCY", "single", choices=TENANCIES,
        doc="single: one platform account from this environment (PROVIDER and its credentials). hosted: each "
            "connection brings its platform and account in the headers X-Platform, X-Platform-Key and "
            "X-Platform-Secret; one deployment serves many organisations and all three platforms.")
    hosted_mode: str = setting(
        "HOSTED_MODE", "sandbox", choices=("sandbox", "live"),
        doc="TENANCY=hosted only. sandbox: the simulators' demo accounts; live: the real platforms (then "
            "TENANT_HASH_KEY, CREDENTIALS_KEYS, LEDGER_HASH_KEY and TRIGGER_STATE_SECRET are required).")
    tenant_hash_key: str = setting(
        "TENANT_HASH_KEY", DEV_TENANT_HASH_KEY, example="", secret=True,
        doc="TENANCY=hosted: secret key of the tenant hash (an HMAC of platform + account key; 32+ random "
            "characters). Required in hosted live mode; changing it starts every tenant afresh.")
    credentials_keys: tuple[str, ...] = setting(
        "CREDENTIALS_KEYS", (DEV_CREDENTIALS_KEY,), example="", secret=True,
        parse=lambda text: comma_separated(text) or (DEV_CREDENTIALS_KEY,),
        check=lambda keys: all(re.match(r"^[A-Za-z0-9_-]{1,16}:.{32,}$", k) for k in keys),
        allowed="comma-separated id:secret pairs (id: 1-16 letters, digits, - or _; secret: 32+ characters)",
        doc="TENANCY=hosted: keys that encrypt platform credentials kept while work goes on after a call (a 202 "
            "job, polling triggers, webhook syncs), as id:secret. The first encrypts, every one decrypts; to "
            "rotate, put a new key first, run .venv/bin/python -m service.db rotate-credentials, then drop the old "
            "one. Required in hosted live mode.")
    hosted_clients_max: int = setting(
        "HOSTED_CLIENTS_MAX", 256, range=(1, 100_000),
        doc="TENANCY=hosted: most platform accounts whose clients and caches one worker keeps (least recently used "
            "goes first).")
    api_keys: tuple[str, ...] = setting(
        "API_KEYS", (), parse=comma_separated, secret=True,
        doc='Comma-separated API keys the Power Platform connection (header X-API-Key) may use. Required in live '
            'mode (16+ characters each). Empty in sandbox mode: the key "sandbox" is accepted.')
    database_url: str = setting(
        "DATABASE_URL", "", check=_database_url,
        allowed="empty (SQLite file var/marketing-actions.db), sqlite:///path/file.db or "
                "postgresql+psycopg://user:password@host:5432/database",
        doc="Job ledger database. Empty: SQLite file var/marketing-actions.db. Several instances: PostgreSQL, e.g. "
            "postgresql+psycopg://user:password@db.example.com:5432/marketing_actions (migrated at start-up, see "
            "AUTO_MIGRATE)")
    ledger_hash_key: str = setting(
        "LEDGER_HASH_KEY", DEV_LEDGER_HASH_KEY, example="", secret=True,
        doc="Secret key for hashing contact emails in the ledger (32+ random characters). Required in live mode.")
    job_lease_seconds: float = setting(
        "JOB_LEASE_SECONDS", 30.0, range=(1, 3600),
        doc="Lease of a running call, renewed while it runs; a call whose lease expired is taken as crashed and is "
            "resumed (or settled as OUTCOME_UNKNOWN when a call that is not safe to repeat may have been applied). "
            "Keep it above UPSTREAM_READ_TIMEOUT.")
    sync_deadline_seconds: float = setting(
        "SYNC_DEADLINE_SECONDS", 90.0, range=(0.05, 95),
        doc="A call that has not finished after this many seconds answers 202 + Location and goes on in the "
            "background (Power Automate gives up on a synchronous answer after 120 s).")
    in_progress_wait_seconds: float = setting(
        "IN_PROGRESS_WAIT_SECONDS", 20.0, range=(0, 60),
        doc="A repeat of a call that is still running waits this long for its answer, then gets 503 + Retry-After.")
    job_workers: int = setting(
        "JOB_WORKERS", 4, range=(1, 64),
        doc="Background jobs (resumed after a crash, or retried) one worker process runs at once.")
    auto_migrate: bool = setting(
        "AUTO_MIGRATE", True,
        doc="PostgreSQL: apply the ledger's migrations at start-up (under a lock). false: refuse to start when the "
            "schema is not current and say what to run. SQLite files are always migrated by the service.")
    log_level: str = setting(
        "LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        doc="DEBUG | INFO | WARNING | ERROR")
    flask_threads: int = setting(
        "FLASK_THREADS", 32, range=(1, 512),
        doc="Threads per worker that run request handlers (they block on upstream calls). Connexion's default is "
            "10.")
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES", 1024 * 1024, range=(1024, 100 * 2**20),
        doc="Largest accepted request body, in bytes (413 above).")
    validate_responses: bool = setting(
        "VALIDATE_RESPONSES", False, doc="Check every response against openapi.yaml (tests turn it on).")
    connexion_patches: bool = setting(
        "CONNEXION_PATCHES", True,
        doc="Connexion's per-request work done once and the service's WSGI bridge (service/api/connexion_patches.py;"
            " applied only on the Connexion version they were tested with). false: stock Connexion, more slowly.")
    list_cache_seconds: float = setting(
        "LIST_CACHE_SECONDS", 30.0, range=(0, 3600),
        doc="Seconds that dropdown lists (automations, fields, tags, ...) are cached per worker.")
    upstream_connect_timeout: float = setting(
        "UPSTREAM_CONNECT_TIMEOUT", 3.05, range=(0.05, 30),
        doc="Defaults for every platform client (a platform's own variable, e.g. SPOTLER_READ_TIMEOUT, wins).")
    upstream_read_timeout: float = setting("UPSTREAM_READ_TIMEOUT", 20.0, range=(0.05, 100))
    upstream_max_retries: int = setting("UPSTREAM_MAX_RETRIES", 2, range=(0, 5))
    upstream_retry_after_max: float = setting("UPSTREAM_RETRY_AFTER_MAX", 10.0, range=(0, 60))
    #: polling triggers: the secrets that sign trigger states (oldest first; the last one signs)
    trigger_state_secrets: tuple[str, ...] = setting(
        "TRIGGER_STATE_SECRET", (DEV_TRIGGER_STATE_SECRET,), example="", secret=True,
        parse=lambda text: comma_separated(text) or (DEV_TRIGGER_STATE_SECRET,),
        doc="Polling triggers. TRIGGER_STATE_SECRET signs the state in each trigger's polling URL: required in live "
            "mode (32+ random characters). To rotate it, append the new secret after a comma (the last one signs, "
            "every one is accepted), and remove the old one once running flows have polled again.")
    trigger_batch_size: int = setting(
        "TRIGGER_BATCH_SIZE", 100, range=(1, 1000),
        doc="Most events one poll hands to a flow (a flow may ask for fewer); more waiting: the next poll comes at "
            "once.")
    trigger_poll_seconds: int = setting(
        "TRIGGER_POLL_SECONDS", 180, range=(1, 86400),
        doc="Seconds until the next poll when nothing new happened (Retry-After).")
    trigger_overlap_seconds: float = setting(
        "TRIGGER_OVERLAP_SECONDS", 600.0, range=(0, 86400),
        doc="Seconds each poll looks back again: covers the platform's clock running behind or ahead and late "
            "events.")
    trigger_page_size: int = setting(
        "TRIGGER_PAGE_SIZE", 1000, range=(10, 10000),
        doc="Page size of the platform's event feeds, and most pages one poll reads per feed.")
    trigger_max_pages: int = setting("TRIGGER_MAX_PAGES", 20, range=(1, 1000))
    trigger_feed_cache_seconds: float = setting(
        "TRIGGER_FEED_CACHE_SECONDS", 5.0, range=(0, 60),
        doc="Seconds a trigger feed read is shared by the polls that ask for the same window (per worker; 0 = "
            "never). A poll with nothing new then costs no upstream call; a new event waits at most this long.")
    webhook_retry_schedule: tuple[float, ...] = setting(
        "WEBHOOK_RETRY_SCHEDULE", (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0), parse=_seconds,
        check=_retry_schedule, allowed="comma-separated seconds (each 0.01 to 86400, at most 20), for example 5,300,1800",
        doc="Webhook triggers (Piggy, Spoki). Seconds between the attempts of one delivery to a flow; after the last "
            "one it is given up (default, like Svix: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). A longer Retry-After "
            "wins.")
    callback_allowed_hosts: tuple[str, ...] = setting(
        "CALLBACK_ALLOWED_HOSTS", ("*.logic.azure.com", "*.logic.azure.us", "*.logic.azure.cn"),
        parse=lambda text: tuple(h.lower() for h in comma_separated(text)), check=_host_patterns,
        allowed="comma-separated host names or *.domain patterns",
        doc="The only hosts a flow's callback URL may name (host names, or *.domain). Power Automate's are the "
            "default; sandbox mode also allows 127.0.0.1 and localhost.")
    webhook_callback_timeout: float = setting(
        "WEBHOOK_CALLBACK_TIMEOUT", 30.0, range=(0.1, 60),
        doc="Read timeout of a delivery to a flow's callback, in seconds (the connect timeout is at most 5 s).")
    webhook_public_url: str = setting(
        "WEBHOOK_PUBLIC_URL", "", parse=lambda text: text.rstrip("/"), check=_http_url,
        allowed="an http:// or https:// URL",
        doc="Where Piggy and Spoki send their webhooks: this service's public base URL, e.g. "
            "https://actions.example.com (empty: https://PUBLIC_HOST, else the address the subscribing call used).")
    public_host: str = setting(
        "PUBLIC_HOST", "", pattern=r"^(https?://)?[A-Za-z0-9.\-]+(:\d{1,5})?/?$",
        allowed="a host name with an optional :port, no path (for example actions.example.com)",
        doc="Public host name of this service (used when building the connector definition).")
    sandbox_upstream_url: str = setting(
        "SANDBOX_UPSTREAM_URL", "", check=_http_url, allowed="an http:// or https:// URL",
        doc="Sandbox only: base URL of an already running simulator (gunicorn.conf.py sets it for its workers).")
    sandbox_upstream_urls: tuple[str, ...] = setting(
        "SANDBOX_UPSTREAM_URLS", (), parse=comma_separated,
        check=lambda items: all(_platform_url(i) for i in items),
        allowed="comma-separated platform=URL pairs, e.g. spotler=http://127.0.0.1:8101",
        doc="Hosted sandbox only: the running simulator of each platform (gunicorn.conf.py sets it for its "
            "workers); a platform not named gets a simulator in the worker.")
    # fairness between tenants and the refused-credentials throttle (service/actions/budgets.py)
    redis_url: str = setting(
        "REDIS_URL", "", check=_redis_url, section="budgets (hosted mode)",
        allowed="empty (budgets in each worker's memory) or redis://[:password@]host:6379/0 (rediss:// for TLS)",
        doc="Where the per-tenant budgets and the refused-credentials throttle are counted. Empty: in each worker's "
            "memory (one instance, the embedded default). Several workers or instances: a Redis server, e.g. "
            "redis://redis.example.com:6379/0. Redis unreachable: calls are let through (fail open) and a warning "
            "is logged.")
    redis_key_prefix: str = setting(
        "REDIS_KEY_PREFIX", "marketing-actions", pattern=r"^[A-Za-z0-9_.:\-]{1,64}$",
        allowed="1 to 64 letters, digits or _ . : -",
        doc="Prefix of every Redis key of this deployment (several deployments may share one Redis).")
    tenant_max_concurrent: int = setting(
        "TENANT_MAX_CONCURRENT", 8, range=(0, 10_000),
        doc="Most calls of one tenant (platform account) running at once, over all workers and instances; one more "
            "is answered 429 + Retry-After. 0: no limit.")
    tenant_calls_per_minute: int = setting(
        "TENANT_CALLS_PER_MINUTE", 600, range=(0, 1_000_000),
        doc="Most calls of one tenant in any 60 seconds (a moving window); one more is answered 429 + Retry-After. "
            "0: no limit.")
    tenant_lease_seconds: float = setting(
        "TENANT_LEASE_SECONDS", 30.0, range=(1, 600),
        doc="Redis: a running call's slot of TENANT_MAX_CONCURRENT is a lease, renewed while the call runs; the slot "
            "of a killed worker is free again after at most this long.")
    refused_credentials_per_minute: int = setting(
        "REFUSED_CREDENTIALS_PER_MINUTE", 10, range=(0, 100_000),
        doc="Refused credentials (API key, platform key) one client (address or key id) may present in any 60 "
            "seconds; after that its calls are answered 429 + Retry-After before any platform call. 0: no limit.")
    # the Procfile's gunicorn (read by gunicorn.conf.py and the start command)
    port: int = setting("PORT", 8000, range=(1, 65535), section="gunicorn (Procfile)")
    bind_address: str = setting(
        "BIND_ADDRESS", "0.0.0.0", pattern=r"^([0-9.]+|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)$",
        allowed="an address of this machine to listen on: 0.0.0.0 (every interface), 127.0.0.1 (only this "
                "machine, behind a proxy) or an IPv6 address in brackets such as [::]",
        doc="The address the service listens on: 0.0.0.0 (every interface: a PaaS, a container) or 127.0.0.1 (only "
            "this machine: behind nginx on the same VM, as deploy/vm.py runs it; docs/deploy.md).")
    web_concurrency: int = setting("WEB_CONCURRENCY", 2, range=(1, 64))
    forwarded_allow_ips: str = setting("FORWARDED_ALLOW_IPS", "127.0.0.1")
    gunicorn_max_requests: int = setting("GUNICORN_MAX_REQUESTS", 5000, range=(0, 10_000_000))
    prometheus_multiproc_dir: str = setting(
        "PROMETHEUS_MULTIPROC_DIR", "",
        doc="Folder where each gunicorn worker writes its metrics for GET /metrics to add up; the master empties it "
            "at every start (empty: a new temporary folder per start, removed at the stop). Give each instance on "
            "one machine its own folder.")
    # observability (docs/operations.md)
    metrics_token: str = setting(
        "METRICS_TOKEN", "", secret=True, section="observability",
        doc="GET /metrics asks for Authorization: Bearer <this token> when set (empty: /metrics is open, as /health "
            "is; keep it on an internal network then).")
    otel_exporter_otlp_endpoint: str = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT", "", parse=lambda text: text.rstrip("/"), check=_http_url,
        allowed="an http:// or https:// URL",
        doc="OpenTelemetry traces: the base URL of an OTLP/HTTP receiver (a collector), e.g. http://127.0.0.1:4318 "
            "(spans go to /v1/traces). Empty: no traces. The SDK's other OTEL_* variables apply.")
    otel_service_name: str = setting(
        "OTEL_SERVICE_NAME", "marketing-actions", pattern=r"^[A-Za-z0-9._\-]{1,64}$",
        allowed="1 to 64 letters, digits, dots, dashes or underscores",
        doc="service.name of the traces' resource.")
    #: every PROVIDER-prefixed variable (SPOTLER_*, PIGGY_*, SPOKI_*), raw, for the provider factory
    platform_env: Mapping[str, str] = field(default_factory=dict)
    #: Entra ID connections and Dataverse write-back (ENTRA_*, DATAVERSE_*, MICROSOFT_*, SANDBOX_ENTRA_*, ...)
    microsoft: MicrosoftSettings = field(default_factory=MicrosoftSettings)

    @property
    def hosted(self) -> bool:
        return self.tenancy == "hosted"

    @property
    def sandbox_urls(self) -> dict[str, str]:
        """Hosted sandbox: platform -> the running simulator's URL (SANDBOX_UPSTREAM_URLS)."""
        return dict(item.split("=", 1) for item in self.sandbox_upstream_urls)

    @property
    def mode(self) -> str:
        if self.hosted:
            return self.hosted_mode
        names = (name for group in LIVE_CREDENTIALS[self.provider] for name in group)
        return "live" if any(self.platform_env.get(n) for n in names) else "sandbox"

    @property
    def sandbox(self) -> bool:
        return self.mode == "sandbox"

    @property
    def accepted_api_keys(self) -> tuple[str, ...]:
        if self.api_keys:
            return self.api_keys
        if self.hosted:  # open: the platform account in the headers is the credential
            return (HOSTED_OPEN_KEY, SANDBOX_API_KEY) if self.sandbox else (HOSTED_OPEN_KEY,)
        return (SANDBOX_API_KEY,) if self.sandbox else ()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or DEFAULT_DATABASE_URL

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read and validate the settings: ``environ``, or the process environment over the ``.env`` file.
        Every invalid value is named in one ConfigError; then every cross-field problem (:meth:`validate`)."""
        env = read_environment(environ)
        values, invalid = read(cls, env)
        microsoft_values, microsoft_invalid = read(MicrosoftSettings, env)
        if invalid or microsoft_invalid:
            raise ConfigError.of([ConfigError.invalid(var.name, raw, var.allowed)
                                  for var, raw in sorted(invalid + microsoft_invalid, key=lambda p: p[0].name)])
        microsoft = MicrosoftSettings(**microsoft_values)
        try:
            microsoft.validate()
        except MicrosoftConfigError as exc:  # its message names the variable first ("NAME: ...")
            raise ConfigError(f"Invalid setting {exc}", variable=str(exc).split(":", 1)[0]) from None
        platform_env = {k: v for k, v in env.items() if k.split("_", 1)[0] in ("SPOTLER", "PIGGY", "SPOKI")}
        settings = cls(**values, platform_env=platform_env, microsoft=microsoft)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Cross-field rules: raises one ConfigError that names every problem (every setting live mode misses)."""
        if self.provider not in PROVIDERS:
            raise ConfigError.invalid("PROVIDER", self.provider, "one of " + ", ".join(PROVIDERS))
        if self.hosted:
            problems = self._hosted_live_problems() if self.mode == "live" else []
        else:
            problems = self._live_problems() if self.mode == "live" else []
        if self.upstream_connect_timeout + self.upstream_read_timeout > 100:
            problems.append(ConfigError.invalid(
                "UPSTREAM_READ_TIMEOUT", f"{self.upstream_read_timeout:g}",
                f"at most {100 - self.upstream_connect_timeout:g} with UPSTREAM_CONNECT_TIMEOUT="
                f"{self.upstream_connect_timeout:g} (connect + read must stay under 100 s; Power Automate gives up "
                "after 120 s)"))
        if problems:
            raise ConfigError.of(problems)

    def _hosted_live_problems(self) -> list[ConfigError]:
        """Hosted live mode: its keys (API_KEYS is optional: the publisher's key, when set)."""
        problems = []
        if any(len(k) < 16 for k in self.api_keys):
            problems.append(ConfigError.invalid("API_KEYS", ",".join(self.api_keys),
                                                "comma-separated keys of at least 16 characters"))
        if self.tenant_hash_key == DEV_TENANT_HASH_KEY or len(self.tenant_hash_key) < 32:
            problems.append(ConfigError.missing("TENANT_HASH_KEY", "required in hosted live mode", _SECRET_ALLOWED))
        if DEV_CREDENTIALS_KEY in self.credentials_keys:
            problems.append(ConfigError.missing("CREDENTIALS_KEYS", "required in hosted live mode",
                                                "comma-separated id:secret pairs, secrets of 32+ characters"))
        problems += [p for p in self._live_problems() if p.variable in ("LEDGER_HASH_KEY", "TRIGGER_STATE_SECRET")]
        return problems

    def _live_problems(self) -> list[ConfigError]:
        problems = []
        keys_allowed = "one or more comma-separated keys of at least 16 characters"
        if not self.api_keys and not self.microsoft.entra_configured:
            problems.append(ConfigError.missing(
                "API_KEYS", f"required in live mode: {self.provider} credentials are set and Entra ID connections "
                "are not configured (ENTRA_CLIENT_ID)", keys_allowed))
        if any(len(k) < 16 for k in self.api_keys):
            problems.append(ConfigError.invalid("API_KEYS", ",".join(self.api_keys), keys_allowed + " in live mode"))
        for group in LIVE_CREDENTIALS[self.provider]:
            given = [name for name in group if self.platform_env.get(name)]
            for name in group:
                if given and name not in given:
                    problems.append(ConfigError.missing(
                        name, f"required when {given[0]} is set (live mode for {self.provider})",
                        "the credential from the platform's API settings"))
        if self.ledger_hash_key == DEV_LEDGER_HASH_KEY:
            problems.append(ConfigError.missing("LEDGER_HASH_KEY", "required in live mode", _SECRET_ALLOWED))
        if DEV_TRIGGER_STATE_SECRET in self.trigger_state_secrets:
            problems.append(ConfigError.missing(
                "TRIGGER_STATE_SECRET", "required in live mode: it signs the polling triggers' state", _SECRET_ALLOWED))
        elif any(len(s) < 32 for s in self.trigger_state_secrets):
            problems.append(ConfigError.invalid(
                "TRIGGER_STATE_SECRET", ",".join(self.trigger_state_secrets),
                "comma-separated secrets of 32+ characters each (the last one signs)"))
        return problems


#: every variable whose value is never shown (in messages, logs), besides the names matching _SECRET_NAME
SECRET_VARIABLES = PLATFORM_SECRETS | frozenset(
    var.name for cls in (Settings, MicrosoftSettings) for _, var in variables(cls) if var.secret)


def declared_variables() -> list[Variable]:
    """The service's own variables (Settings and its Microsoft part), in declaration order."""
    return [var for cls in (Settings, MicrosoftSettings) for _, var in variables(cls)]
