"""SpokiConfig: everything the Spoki client and provider need, validated at construction.

Environment variable names are in the comments; :meth:`SpokiConfig.from_env` reads them. Fields marked
*guess* describe things the reference does not confirm (see docs/piggy-spoki-coverage.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.providers.errors import ConfigValueError
from service.providers.http import TransportConfig

DEFAULT_BASE_URL = "https://api.spoki.com"


@dataclass(frozen=True, kw_only=True)
class SpokiConfig(TransportConfig):
    api_key: str = field(repr=False)  # SPOKI_API_KEY (sent as X-Spoki-Api-Key)
    base_url: str = DEFAULT_BASE_URL  # SPOKI_BASE_URL (legacy host: https://app.spoki.it)
    connect_timeout: float = 3.05  # SPOKI_CONNECT_TIMEOUT (seconds)
    read_timeout: float = 20.0  # SPOKI_READ_TIMEOUT (seconds)
    max_retries: int = 2  # SPOKI_MAX_RETRIES (idempotent calls only)
    backoff_factor: float = 0.5  # SPOKI_BACKOFF_FACTOR
    retry_after_max: float = 10.0  # SPOKI_RETRY_AFTER_MAX (a longer Retry-After is returned, not slept)
    pool_maxsize: int = 32  # SPOKI_POOL_MAXSIZE
    user_agent: str = "marketing-actions-spoki/1"
    #: how long custom fields, automations, tags and lists are cached (SPOKI_CACHE_SECONDS)
    cache_seconds: float = 60.0
    #: safety bound when following ``next`` links (SPOKI_MAX_PAGES)
    max_pages: int = 50
    #: sent as ``page_size`` on list calls when > 0; the parameter name is a guess (SPOKI_PAGE_SIZE)
    page_size: int = 0

    # -- paths and guesses ----------------------------------------------------------------------------------
    api_prefix: str = "/api/1"  # SPOKI_API_PREFIX
    #: TestConnection call (SPOKI_PING_PATH)
    ping_path: str = "/api/1/tags/"
    #: query string of the automation dropdown; *guess* for the filter value (SPOKI_AUTOMATION_FILTER).
    #: Whatever the filter, only automations with an API start step (``webhook_set``) are listed.
    automation_filter: str = "webhook_platform=Api"
    #: read each automation's custom fields from ``automations/{id}/custom-fields-used/``; the response
    #: shape is a *guess* (SPOKI_AUTOMATION_FIELDS_LOOKUP)
    automation_fields_lookup: bool = True
    #: key of the remove-from-list body: ids | phones | emails; *guess* [S] (SPOKI_LIST_REMOVE_KEY)
    list_remove_key: str = "ids"
    #: name of the marketing-consent field in contact responses; *guess* (SPOKI_CONSENT_FIELD)
    consent_field: str = "status"

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ConfigValueError("api_key", "the API key from Spoki's settings")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigValueError("base_url", "an http:// or https:// URL")
        if self.list_remove_key not in ("ids", "phones", "emails"):
            raise ConfigValueError("list_remove_key", "ids, phones or emails")
        if self.max_pages < 1:
            raise ConfigValueError("max_pages", "a whole number from 1")
        if self.page_size < 0:
            raise ConfigValueError("page_size", "a whole number from 0 (0: the platform's default)")
        if self.cache_seconds < 0:
            raise ConfigValueError("cache_seconds", "a number of seconds from 0")
        for name in ("api_prefix", "ping_path"):
            if not getattr(self, name).startswith("/"):
                raise ConfigValueError(name, "a path starting with /")
        self.http_settings  # noqa: B018 - validates timeouts/retries


