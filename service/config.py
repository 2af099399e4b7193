"""Settings: read from the environment once, validated, with errors that name the variable.

``Settings.from_env()`` is called by ``create_app()`` (never at import time). Every variable is documented
in ``.env.example``. Mode:

* **sandbox** - no credentials for the chosen platform are set: the service talks to the in-repo simulator
  of that platform (``service/sandbox``) on SQLite, and accepts the API key ``sandbox`` when ``API_KEYS`` is
  empty. ``/health`` and the startup log say so.
* **live** - the platform's credentials are set: ``API_KEYS`` is required.

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
from marshmallow import Schema, ValidationError, fields, validate

from service.microsoft.config import MicrosoftConfigError, MicrosoftSettings

PROVIDERS = ("spotler", "piggy", "spoki")

#: the platform credentials whose presence switches a provider to live mode
LIVE_CREDENTIALS = {
    "spotler": ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET"),
    "piggy": ("PIGGY_API_TOKEN", "PIGGY_CLIENT_ID"),
    "spoki": ("SPOKI_API_KEY",),
}

SANDBOX_API_KEY = "sandbox"
DEV_LEDGER_HASH_KEY = "sandbox-ledger-hash-key-not-secret"
DEV_TRIGGER_STATE_SECRET = "sandbox-trigger-state-secret-not-secret"
DEFAULT_DATABASE_URL = "sqlite:///var/marketing-actions.db"


#: variables whose values are never shown (in messages, logs); plus every name matching _SECRET_NAME
SECRET_VARIABLES = frozenset({"API_KEYS", "LEDGER_HASH_KEY", "SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET",
                              "PIGGY_API_TOKEN", "PIGGY_CLIENT_SECRET", "SPOKI_API_KEY"})
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


def _csv(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def _database_url(value: str) -> None:
    """``sqlite:///path`` or a PostgreSQL URL (``postgresql+psycopg://``, ``postgresql://``, ``postgres://``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value.replace("postgres://", "postgresql://", 1) if value.startswith("postgres://") else value)
    except (ArgumentError, ValueError):
        raise ValidationError("not a database URL") from None
    if url.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg"):
        raise ValidationError("unsupported database")


def _http_url(value: str) -> None:
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValidationError("not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("not an http(s) URL")


_URL_ALLOWED = "an http:// or https:// URL"
_DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000"
_DEFAULT_CALLBACK_HOSTS = "*.logic.azure.com,*.logic.azure.us,*.logic.azure.cn"
_HOST_PATTERN = re.compile(r"^(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*$")


def _retry_schedule(value: str) -> None:
    try:
        steps = [float(p) for p in _csv(value)]
    except ValueError:
        raise ValidationError("not numbers") from None
    if not 1 <= len(steps) <= 20 or any(not 0.01 <= x <= 86400 for x in steps):
        raise ValidationError("out of range")


def _host_patterns(value: str) -> None:
    if not _csv(value) or not all(_HOST_PATTERN.match(p) for p in _csv(value)):
        raise ValidationError("not host names")
_DB_ALLOWED = ("empty (SQLite file var/marketing-actions.db), sqlite:///path/file.db or "
               "postgresql+psycopg://user:password@host:5432/database")


class _EnvSchema(Schema):
    """Validates the raw strings. Field names are the environment variable names; ``metadata["allowed"]``
    says what is allowed when the validators alone do not (see :func:`allowed_values`)."""

    PROVIDER = fields.String(load_default="spotler", validate=validate.OneOf(PROVIDERS))
    API_KEYS = fields.String(load_default="")
    DATABASE_URL = fields.String(load_default="", validate=_database_url, metadata={"allowed": _DB_ALLOWED})
    LEDGER_HASH_KEY = fields.String(load_default="")
    JOB_LEASE_SECONDS = fields.Float(load_default=30.0, validate=validate.Range(min=1, max=3600))
    SYNC_DEADLINE_SECONDS = fields.Float(load_default=90.0, validate=validate.Range(min=0.05, max=95))
    IN_PROGRESS_WAIT_SECONDS = fields.Float(load_default=20.0, validate=validate.Range(min=0, max=60))
    JOB_WORKERS = fields.Integer(load_default=4, validate=validate.Range(min=1, max=64))
    AUTO_MIGRATE = fields.Boolean(load_default=True)
    LOG_LEVEL = fields.String(load_default="INFO",
                              validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]))
    FLASK_THREADS = fields.Integer(load_default=32, validate=validate.Range(min=1, max=512))
    MAX_BODY_BYTES = fields.Integer(load_default=1024 * 1024, validate=validate.Range(min=1024, max=100 * 2**20))
    UPSTREAM_CONNECT_TIMEOUT = fields.Float(load_default=3.05, validate=validate.Range(min=0.05, max=30))
    UPSTREAM_READ_TIMEOUT = fields.Float(load_default=20.0, validate=validate.Range(min=0.05, max=100))
    UPSTREAM_MAX_RETRIES = fields.Integer(load_default=2, validate=validate.Range(min=0, max=5))
    UPSTREAM_RETRY_AFTER_MAX = fields.Float(load_default=10.0, validate=validate.Range(min=0, max=60))
    LIST_CACHE_SECONDS = fields.Float(load_default=30.0, validate=validate.Range(min=0, max=3600))
    SANDBOX_UPSTREAM_URL = fields.String(load_default="", validate=_http_url, metadata={"allowed": _URL_ALLOWED})
    PUBLIC_HOST = fields.String(load_default="", validate=validate.Regexp(r"^(https?://)?[A-Za-z0-9.\-]+(:\d{1,5})?/?$"),
                                metadata={"allowed": "a host name with an optional :port, no path "
                                                     "(for example actions.example.com)"})
    VALIDATE_RESPONSES = fields.Boolean(load_default=False)
    TRIGGER_STATE_SECRET = fields.String(load_default="")
    TRIGGER_BATCH_SIZE = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    TRIGGER_POLL_SECONDS = fields.Integer(load_default=180, validate=validate.Range(min=1, max=86400))
    TRIGGER_OVERLAP_SECONDS = fields.Float(load_default=600.0, validate=validate.Range(min=0, max=86400))
    TRIGGER_PAGE_SIZE = fields.Integer(load_default=1000, validate=validate.Range(min=10, max=10000))
    TRIGGER_MAX_PAGES = fields.Integer(load_default=20, validate=validate.Range(min=1, max=1000))
    TRIGGER_FEED_CACHE_SECONDS = fields.Float(load_default=5.0, validate=validate.Range(min=0, max=60))
    WEBHOOK_RETRY_SCHEDULE = fields.String(load_default=_DEFAULT_RETRY_SCHEDULE, validate=_retry_schedule,
                                           metadata={"allowed": "comma-separated seconds (each 0.01 to 86400, at "
                                                                "most 20), for example 5,300,1800"})
    CALLBACK_ALLOWED_HOSTS = fields.String(load_default=_DEFAULT_CALLBACK_HOSTS, validate=_host_patterns,
                                           metadata={"allowed": "comma-separated host names or *.domain patterns"})
    WEBHOOK_PUBLIC_URL = fields.String(load_default="", validate=_http_url, metadata={"allowed": _URL_ALLOWED})
    WEBHOOK_CALLBACK_TIMEOUT = fields.Float(load_default=30.0, validate=validate.Range(min=0.1, max=60))
    # the Procfile's gunicorn (read by gunicorn.conf.py and the start command)
    PORT = fields.Integer(load_default=8000, validate=validate.Range(min=1, max=65535))
    BIND_ADDRESS = fields.String(load_default="0.0.0.0",
                                 validate=validate.Regexp(r"^([0-9.]+|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)$"),
                                 metadata={"allowed": "an address of this machine to listen on: 0.0.0.0 (every "
                                                      "interface), 127.0.0.1 (only this machine, behind a proxy) "
                                                      "or an IPv6 address in brackets such as [::]"})
    WEB_CONCURRENCY = fields.Integer(load_default=2, validate=validate.Range(min=1, max=64))
    GUNICORN_MAX_REQUESTS = fields.Integer(load_default=5000, validate=validate.Range(min=0, max=10_000_000))
    FORWARDED_ALLOW_IPS = fields.String(load_default="127.0.0.1")


def allowed_values(f: fields.Field) -> str:
    """What a schema field accepts, in words (for the one-line error)."""
    if f.metadata.get("allowed"):
        return f.metadata["allowed"]
    validators = f.validators if isinstance(f.validators, (list, tuple)) else [f.validators]
    choices = next((v.choices for v in validators if isinstance(v, validate.OneOf)), None)
    if choices:
        return "one of " + ", ".join(choices)
    rng = next((v for v in validators if isinstance(v, validate.Range)), None)
    if isinstance(f, fields.Boolean):
        return "true or false"
    kind = "a whole number" if isinstance(f, fields.Integer) else "a number"
    if rng is not None:
        return f"{kind} from {rng.min:g} to {rng.max:g}"
    return kind if isinstance(f, fields.Number) else "text"


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


@dataclass(frozen=True)
class Settings:
    provider: str = "spotler"
    api_keys: tuple[str, ...] = ()
    database_url: str = ""
    ledger_hash_key: str = DEV_LEDGER_HASH_KEY
    job_lease_seconds: float = 30.0
    #: a call not finished after this long answers 202 and goes on in the background
    sync_deadline_seconds: float = 90.0
    #: how long a repeat waits for a running first attempt before answering 503 REQUEST_IN_PROGRESS
    in_progress_wait_seconds: float = 20.0
    #: background jobs per worker process
    job_workers: int = 4
    #: PostgreSQL: migrate the ledger at start-up (SQLite is always migrated)
    auto_migrate: bool = True
    log_level: str = "INFO"
    flask_threads: int = 32
    max_body_bytes: int = 1024 * 1024
    upstream_connect_timeout: float = 3.05
    upstream_read_timeout: float = 20.0
    upstream_max_retries: int = 2
    upstream_retry_after_max: float = 10.0
    list_cache_seconds: float = 30.0
    #: sandbox only: the simulator's base URL when it runs as a shared process (set by gunicorn.conf.py)
    sandbox_upstream_url: str = ""
    public_host: str = ""
    #: check every response against openapi.yaml (tests turn it on; costs a few % in production)
    validate_responses: bool = False
    #: polling triggers: the secrets that sign trigger states (oldest first; the last one signs)
    trigger_state_secrets: tuple[str, ...] = (DEV_TRIGGER_STATE_SECRET,)
    #: most events one poll answers (a flow maker may ask for fewer with batchSize)
    trigger_batch_size: int = 100
    #: Retry-After of a poll with nothing new, in seconds
    trigger_poll_seconds: int = 180
    #: how far back each poll looks again (clock differences with the platform, late events), in seconds
    trigger_overlap_seconds: float = 600.0
    #: page size of the platform's feeds, and most pages one poll reads per feed
    trigger_page_size: int = 1000
    trigger_max_pages: int = 20
    #: a feed read (same feed, same window start) is shared by the polls of this many seconds, per worker
    trigger_feed_cache_seconds: float = 5.0
    #: webhook triggers: seconds between the attempts of a delivery to a flow (then it is given up)
    webhook_retry_schedule: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    #: the only hosts webhook deliveries go to (sandbox mode adds 127.0.0.1 and localhost)
    callback_allowed_hosts: tuple[str, ...] = ("*.logic.azure.com", "*.logic.azure.us", "*.logic.azure.cn")
    #: where Piggy and Spoki send their webhooks (empty: PUBLIC_HOST, else the subscribing request's address)
    webhook_public_url: str = ""
    #: read timeout of a delivery to a flow's callback, in seconds
    webhook_callback_timeout: float = 30.0
    #: the Procfile's gunicorn: port, workers, worker recycling, trusted proxies (gunicorn.conf.py)
    port: int = 8000
    #: the address the Procfile binds (127.0.0.1 behind a proxy on the same machine: deploy/vm.py)
    bind_address: str = "0.0.0.0"
    web_concurrency: int = 2
    gunicorn_max_requests: int = 5000
    forwarded_allow_ips: str = "127.0.0.1"
    #: every PROVIDER-prefixed variable (SPOTLER_*, PIGGY_*, SPOKI_*), raw, for the provider factory
    platform_env: Mapping[str, str] = field(default_factory=dict)
    #: Entra ID connections and Dataverse write-back (ENTRA_*, DATAVERSE_*, MICROSOFT_*, SANDBOX_ENTRA_*, ...)
    microsoft: MicrosoftSettings = field(default_factory=MicrosoftSettings)

    @property
    def mode(self) -> str:
        names = LIVE_CREDENTIALS[self.provider]
        return "live" if any(self.platform_env.get(n) for n in names) else "sandbox"

    @property
    def sandbox(self) -> bool:
        return self.mode == "sandbox"

    @property
    def accepted_api_keys(self) -> tuple[str, ...]:
        if self.api_keys:
            return self.api_keys
        return (SANDBOX_API_KEY,) if self.sandbox else ()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or DEFAULT_DATABASE_URL

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read and validate the settings: ``environ``, or the process environment over the ``.env`` file."""
        env = read_environment(environ)
        declared = _EnvSchema._declared_fields
        raw = {k: v for k, v in env.items() if k in declared and v != ""}
        try:
            data = _EnvSchema().load(raw)
        except ValidationError as exc:
            lines = [str(ConfigError.invalid(name, raw.get(name, ""), allowed_values(declared[name])))
                     for name in sorted(exc.messages)]
            raise ConfigError(" ".join(lines), variable=sorted(exc.messages)[0]) from None
        platform_env = {k: v for k, v in env.items() if k.split("_", 1)[0] in ("SPOTLER", "PIGGY", "SPOKI")}
        try:
            microsoft = MicrosoftSettings.from_env(env)
        except MicrosoftConfigError as exc:  # its message names the variable first ("NAME: ...")
            raise ConfigError(f"Invalid setting {exc}", variable=str(exc).split(":", 1)[0]) from None
        settings = cls(
            provider=data["PROVIDER"],
            api_keys=tuple(_csv(data["API_KEYS"])),
            database_url=data["DATABASE_URL"],
            ledger_hash_key=data["LEDGER_HASH_KEY"] or DEV_LEDGER_HASH_KEY,
            job_lease_seconds=data["JOB_LEASE_SECONDS"],
            sync_deadline_seconds=data["SYNC_DEADLINE_SECONDS"],
            in_progress_wait_seconds=data["IN_PROGRESS_WAIT_SECONDS"],
            job_workers=data["JOB_WORKERS"],
            auto_migrate=data["AUTO_MIGRATE"],
            log_level=data["LOG_LEVEL"],
            flask_threads=data["FLASK_THREADS"],
            max_body_bytes=data["MAX_BODY_BYTES"],
            upstream_connect_timeout=data["UPSTREAM_CONNECT_TIMEOUT"],
            upstream_read_timeout=data["UPSTREAM_READ_TIMEOUT"],
            upstream_max_retries=data["UPSTREAM_MAX_RETRIES"],
            upstream_retry_after_max=data["UPSTREAM_RETRY_AFTER_MAX"],
            list_cache_seconds=data["LIST_CACHE_SECONDS"],
            sandbox_upstream_url=data["SANDBOX_UPSTREAM_URL"],
            public_host=data["PUBLIC_HOST"],
            validate_responses=data["VALIDATE_RESPONSES"],
            trigger_state_secrets=tuple(_csv(data["TRIGGER_STATE_SECRET"])) or (DEV_TRIGGER_STATE_SECRET,),
            trigger_batch_size=data["TRIGGER_BATCH_SIZE"],
            trigger_poll_seconds=data["TRIGGER_POLL_SECONDS"],
            trigger_overlap_seconds=data["TRIGGER_OVERLAP_SECONDS"],
            trigger_page_size=data["TRIGGER_PAGE_SIZE"],
            trigger_max_pages=data["TRIGGER_MAX_PAGES"],
            trigger_feed_cache_seconds=data["TRIGGER_FEED_CACHE_SECONDS"],
            webhook_retry_schedule=tuple(float(p) for p in _csv(data["WEBHOOK_RETRY_SCHEDULE"])),
            callback_allowed_hosts=tuple(p.lower() for p in _csv(data["CALLBACK_ALLOWED_HOSTS"])),
            webhook_public_url=data["WEBHOOK_PUBLIC_URL"].rstrip("/"),
            webhook_callback_timeout=data["WEBHOOK_CALLBACK_TIMEOUT"],
            port=data["PORT"],
            bind_address=data["BIND_ADDRESS"],
            web_concurrency=data["WEB_CONCURRENCY"],
            gunicorn_max_requests=data["GUNICORN_MAX_REQUESTS"],
            forwarded_allow_ips=data["FORWARDED_ALLOW_IPS"],
            platform_env=platform_env,
            microsoft=microsoft,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Cross-field rules. Raises ConfigError naming the variable."""
        if self.provider not in PROVIDERS:
            raise ConfigError.invalid("PROVIDER", self.provider, "one of " + ", ".join(PROVIDERS))
        keys_allowed = "one or more comma-separated keys of at least 16 characters"
        if self.mode == "live":
            if not self.api_keys and not self.microsoft.entra_configured:
                raise ConfigError.missing("API_KEYS", f"required in live mode: {self.provider} credentials are set "
                                          "and Entra ID connections are not configured (ENTRA_CLIENT_ID)",
                                          keys_allowed)
            if any(len(k) < 16 for k in self.api_keys):
                raise ConfigError.invalid("API_KEYS", ",".join(self.api_keys), keys_allowed + " in live mode")
            if self.ledger_hash_key == DEV_LEDGER_HASH_KEY:
                raise ConfigError.missing("LEDGER_HASH_KEY", "required in live mode", "a random secret of 32+ characters")
            needed = {
                "spotler": ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET"),
                "spoki": ("SPOKI_API_KEY",),
            }.get(self.provider, ())
            for name in needed:
                if not self.platform_env.get(name):
                    raise ConfigError.missing(name, f"required when {needed[0]} is set (live mode for {self.provider})",
                                              "the credential from the platform's API settings")
            if self.provider == "piggy" and self.platform_env.get("PIGGY_CLIENT_ID") \
                    and not self.platform_env.get("PIGGY_CLIENT_SECRET"):
                raise ConfigError.missing("PIGGY_CLIENT_SECRET", "required when PIGGY_CLIENT_ID is set",
                                          "the OAuth client secret of that client")
            if DEV_TRIGGER_STATE_SECRET in self.trigger_state_secrets:
                raise ConfigError.missing("TRIGGER_STATE_SECRET", "required in live mode: it signs the polling "
                                          "triggers' state", "a random secret of 32+ characters")
            if any(len(s) < 32 for s in self.trigger_state_secrets):
                raise ConfigError.invalid("TRIGGER_STATE_SECRET", ",".join(self.trigger_state_secrets),
                                          "comma-separated secrets of 32+ characters each (the last one signs)")
        if self.upstream_connect_timeout + self.upstream_read_timeout > 100:
            raise ConfigError.invalid("UPSTREAM_READ_TIMEOUT", f"{self.upstream_read_timeout:g}",
                                      f"at most {100 - self.upstream_connect_timeout:g} with "
                                      f"UPSTREAM_CONNECT_TIMEOUT={self.upstream_connect_timeout:g} (connect + read "
                                      "must stay under 100 s; Power Automate gives up after 120 s)")
