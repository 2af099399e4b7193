"""Settings: read from the environment once, validated, with errors that name the variable.

``Settings.from_env()`` is called by ``create_app()`` (never at import time). Every variable is documented
in ``.env.example``. Mode:

* **sandbox** - no credentials for the chosen platform are set: the service talks to the in-repo simulator
  of that platform (``service/sandbox``) on SQLite, and accepts the API key ``sandbox`` when ``API_KEYS`` is
  empty. ``/health`` and the startup log say so.
* **live** - the platform's credentials are set: ``API_KEYS`` is required.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields, validate

PROVIDERS = ("spotler", "piggy", "spoki")

#: the platform credentials whose presence switches a provider to live mode
LIVE_CREDENTIALS = {
    "spotler": ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET"),
    "piggy": ("PIGGY_API_TOKEN", "PIGGY_CLIENT_ID"),
    "spoki": ("SPOKI_API_KEY",),
}

SANDBOX_API_KEY = "sandbox"
DEV_LEDGER_HASH_KEY = "sandbox-ledger-hash-key-not-secret"
DEFAULT_DATABASE_URL = "sqlite:///var/marketing-actions.db"


class ConfigError(Exception):
    """A setting is missing or invalid. The message names the variable and what is wrong."""


def _csv(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


class _EnvSchema(Schema):
    """Validates the raw strings. Field names are the environment variable names."""

    PROVIDER = fields.String(load_default="spotler", validate=validate.OneOf(PROVIDERS))
    API_KEYS = fields.String(load_default="")
    DATABASE_URL = fields.String(load_default="")
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
    SANDBOX_UPSTREAM_URL = fields.String(load_default="")
    PUBLIC_HOST = fields.String(load_default="")
    VALIDATE_RESPONSES = fields.Boolean(load_default=False)


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
    #: every PROVIDER-prefixed variable (SPOTLER_*, PIGGY_*, SPOKI_*), raw, for the provider factory
    platform_env: Mapping[str, str] = field(default_factory=dict)

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
        env = dict(os.environ if environ is None else environ)
        raw = {k: v for k, v in env.items() if k in _EnvSchema._declared_fields and v != ""}
        try:
            data = _EnvSchema().load(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{name}: {' '.join(map(str, msgs))}" for name, msgs in sorted(exc.messages.items()))
            raise ConfigError(f"Invalid environment configuration - {problems}") from None
        platform_env = {k: v for k, v in env.items() if k.split("_", 1)[0] in ("SPOTLER", "PIGGY", "SPOKI")}
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
            platform_env=platform_env,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Cross-field rules. Raises ConfigError naming the variable."""
        if self.provider not in PROVIDERS:
            raise ConfigError(f"PROVIDER: must be one of {', '.join(PROVIDERS)} (got {self.provider!r}).")
        if self.mode == "live":
            if not self.api_keys:
                raise ConfigError(
                    "API_KEYS: required in live mode (platform credentials are set). "
                    "Set one or more comma-separated keys of at least 16 characters.")
            short = [k for k in self.api_keys if len(k) < 16]
            if short:
                raise ConfigError("API_KEYS: every key must be at least 16 characters long in live mode.")
            if self.ledger_hash_key == DEV_LEDGER_HASH_KEY:
                raise ConfigError("LEDGER_HASH_KEY: required in live mode (a random secret of 32+ characters).")
            needed = {
                "spotler": ("SPOTLER_CONSUMER_KEY", "SPOTLER_CONSUMER_SECRET"),
                "spoki": ("SPOKI_API_KEY",),
            }.get(self.provider, ())
            for name in needed:
                if not self.platform_env.get(name):
                    raise ConfigError(f"{name}: required when {needed[0]} is set (live mode for {self.provider}).")
            if self.provider == "piggy" and self.platform_env.get("PIGGY_CLIENT_ID") \
                    and not self.platform_env.get("PIGGY_CLIENT_SECRET"):
                raise ConfigError("PIGGY_CLIENT_SECRET: required when PIGGY_CLIENT_ID is set.")
        if self.upstream_connect_timeout + self.upstream_read_timeout > 100:
            raise ConfigError("UPSTREAM_READ_TIMEOUT: connect + read timeout must stay under 100 s "
                              "(Power Automate gives up after 120 s).")
