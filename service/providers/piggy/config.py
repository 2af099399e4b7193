"""PiggyConfig: everything the Piggy (Leat) client and provider need, validated at construction.

Environment variable names are in the comments; :meth:`PiggyConfig.from_env` reads them. Fields marked
*guess* describe things the reference does not confirm (see docs/piggy-spoki-coverage.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.providers.errors import ConfigValueError
from service.providers.http import TransportConfig

DEFAULT_BASE_URL = "https://api.piggy.eu"


def parse_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``"Name A=uuid-a; Name B=uuid-b"`` -> ``(("Name A", "uuid-a"), ("Name B", "uuid-b"))``."""
    out = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"expected 'name=value' pairs separated by ';', got {part.strip()!r}")
        out.append((key.strip(), value.strip()))
    return tuple(out)


def parse_field_lists(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``"uuid-a=voucher_code,amount; Birthday=gift"`` -> ``(("uuid-a", ("voucher_code", "amount")), ...)``."""
    return tuple((k, tuple(x.strip() for x in v.split(",") if x.strip())) for k, v in parse_pairs(text))


@dataclass(frozen=True, kw_only=True)
class PiggyConfig(TransportConfig):
    base_url: str = DEFAULT_BASE_URL  # PIGGY_BASE_URL
    #: Personal Access Token (preferred). Either this or client_id + client_secret. (PIGGY_API_TOKEN)
    api_token: str | None = field(default=None, repr=False)
    client_id: str | None = None  # PIGGY_CLIENT_ID (OAuth client credentials)
    client_secret: str | None = field(default=None, repr=False)  # PIGGY_CLIENT_SECRET
    partner_id: str | None = None  # PIGGY_PARTNER_ID -> X-Partner-ID header when set
    connect_timeout: float = 3.05  # PIGGY_CONNECT_TIMEOUT (seconds)
    read_timeout: float = 20.0  # PIGGY_READ_TIMEOUT (seconds)
    max_retries: int = 2  # PIGGY_MAX_RETRIES (idempotent calls only)
    backoff_factor: float = 0.5  # PIGGY_BACKOFF_FACTOR
    retry_after_max: float = 10.0  # PIGGY_RETRY_AFTER_MAX (a longer Retry-After is returned, not slept)
    pool_maxsize: int = 32  # PIGGY_POOL_MAXSIZE
    user_agent: str = "marketing-actions-piggy/1"
    #: how long attribute definitions, automations and subscription types are cached (PIGGY_CACHE_SECONDS)
    cache_seconds: float = 60.0
    #: an OAuth token is renewed this many seconds before ``expires_in`` runs out (PIGGY_TOKEN_REFRESH_MARGIN)
    token_refresh_margin: float = 30.0

    # -- paths and wire formats -----------------------------------------------------------------------------
    api_prefix: str = "/api/v3/oauth/clients"  # PIGGY_API_PREFIX
    token_path: str = "/oauth/token"  # PIGGY_TOKEN_PATH
    #: TestConnection call; the SDK's ping is the v2 path ``/api/v2/oauth/clients`` [S] (PIGGY_PING_PATH)
    ping_path: str = "/api/v3/oauth/clients/automations"
    #: attribute definitions: ``contact-attributes`` or ``custom-attributes?entity=contact`` (PIGGY_ATTRIBUTES_PATH)
    attributes_path: str = "contact-attributes"
    #: "form" (what the official SDK sends) or "json" (what the docs show) (PIGGY_BODY_ENCODING)
    body_encoding: str = "form"
    #: ``type`` of the GDPR delete used by AnonymizeContact (PIGGY_ANONYMIZE_TYPE)
    anonymize_type: str = "GDPR"

    # -- guesses (the automation list documents no uuid and no data keys) ---------------------------------
    #: automation name -> uuid for automations whose list entry has no ``uuid`` (PIGGY_AUTOMATION_UUIDS,
    #: "Name=uuid;Other=uuid")
    automation_uuids: tuple[tuple[str, str], ...] = ()
    #: automation uuid or name -> the ``data`` keys it uses (PIGGY_AUTOMATION_FIELDS, "uuid=a,b;Name=c")
    automation_fields: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: list every automation, not only the ``contact_updated`` ones that the API can run
    #: (PIGGY_LIST_ALL_AUTOMATIONS)
    list_all_automations: bool = False

    def __post_init__(self) -> None:
        # the provider factory fills every field from its raw PIGGY_* text: parse the structured ones here too
        for name, parse, example in (("automation_uuids", parse_pairs, "Birthday=uuid-a; Welcome=uuid-b"),
                                     ("automation_fields", parse_field_lists, "uuid-a=voucher_code,amount")):
            if isinstance(getattr(self, name), str):
                try:
                    object.__setattr__(self, name, parse(getattr(self, name)))
                except ValueError:
                    raise ConfigValueError(name, f"name=value pairs separated by ; (for example {example})") from None
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigValueError("base_url", "an http:// or https:// URL")
        if not self.api_token and not (self.client_id and self.client_secret):
            raise ConfigValueError("api_token", "a personal access token (or set client_id and client_secret)")
        if bool(self.client_id) != bool(self.client_secret):
            raise ConfigValueError("client_secret" if self.client_id else "client_id",
                                   "set together with the other OAuth client credential")
        if self.body_encoding not in ("form", "json"):
            raise ConfigValueError("body_encoding", "form or json")
        for name in ("cache_seconds", "token_refresh_margin"):
            if getattr(self, name) < 0:
                raise ConfigValueError(name, "a number of seconds from 0")
        for name in ("api_prefix", "token_path", "ping_path"):
            if not getattr(self, name).startswith("/"):
                raise ConfigValueError(name, "a path starting with /")
        self.http_settings  # noqa: B018 - validates timeouts/retries

    @property
    def auth_mode(self) -> str:
        return "personal_access_token" if self.api_token else "client_credentials"


