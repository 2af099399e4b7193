"""SpotlerConfig: everything the Spotler client and provider need, validated at construction.

The service's settings module builds it from the environment (suggested names in the comments; the table
is in docs/spotler-api-coverage.md). Fields marked *assumed* describe wire formats the 2022 vendor
description does not confirm (reference §10).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.providers.errors import ConfigValueError
from service.providers.http import TransportConfig
from service.providers.spotler.paths import build_routes

DEFAULT_BASE_URL = "https://restapi.mailplus.nl/integrationservice"


@dataclass(frozen=True, kw_only=True)
class SpotlerConfig(TransportConfig):
    consumer_key: str  # SPOTLER_CONSUMER_KEY
    consumer_secret: str = field(repr=False)  # SPOTLER_CONSUMER_SECRET
    base_url: str = DEFAULT_BASE_URL  # SPOTLER_BASE_URL
    connect_timeout: float = 3.05  # SPOTLER_CONNECT_TIMEOUT (seconds)
    read_timeout: float = 20.0  # SPOTLER_READ_TIMEOUT (seconds)
    max_retries: int = 3  # SPOTLER_MAX_RETRIES
    backoff_factor: float = 0.5  # SPOTLER_BACKOFF_FACTOR
    retry_after_max: float = 10.0  # SPOTLER_RETRY_AFTER_MAX (seconds; longer Retry-After is returned, not slept)
    pool_maxsize: int = 32  # SPOTLER_POOL_MAXSIZE
    user_agent: str = "marketing-actions-spotler/1"
    #: name of the ``set`` property that holds the permissions (SPOTLER_PERMISSIONS_PROPERTY)
    permissions_property: str = "permissions"
    #: how long the property list (field types, permission bits) is cached (SPOTLER_PROPERTIES_CACHE_SECONDS)
    properties_cache_seconds: float = 60.0

    # -- assumed wire formats (reference §10) ---------------------------------------------------------------
    #: JSON key of the automation fields in the trigger body (SPOTLER_AUTOMATION_FIELDS_KEY)
    automation_fields_key: str = "automationFields"
    #: case of the field type values sent: "upper" (STRING|URL|PRODUCTLIST) or "lower"
    #: (SPOTLER_AUTOMATION_FIELD_TYPE_CASE)
    automation_field_type_case: str = "upper"
    route_automation_list: str = "GET automation/list"  # SPOTLER_ROUTE_AUTOMATION_LIST
    route_automation_stop_run: str = "POST automation/stop/{automation_contact_id}"  # SPOTLER_ROUTE_AUTOMATION_STOP_RUN
    body_automation_stop_run: str = ""  # SPOTLER_BODY_AUTOMATION_STOP_RUN
    # SPOTLER_ROUTE_AUTOMATION_STOP_CONTACT
    route_automation_stop_contact: str = "POST automation/trigger/{trigger_code}/stop"
    body_automation_stop_contact: str = '{"externalContactId": "{external_id}"}'  # SPOTLER_BODY_AUTOMATION_STOP_CONTACT
    route_audience_list: str = "GET audience"  # SPOTLER_ROUTE_AUDIENCE_LIST
    #: membership read used to tell added from already_member; "" disables it (SPOTLER_ROUTE_AUDIENCE_MEMBERS)
    route_audience_members: str = "GET audience/{audience_id}/contact"
    route_tag_list: str = "GET tag/list"  # SPOTLER_ROUTE_TAG_LIST
    route_tag_add: str = "POST contact/{external_id}/tag"  # SPOTLER_ROUTE_TAG_ADD
    body_tag_add: str = '{"tags": "{tags}", "score": "{score}"}'  # SPOTLER_BODY_TAG_ADD
    route_tag_remove: str = "DELETE contact/{external_id}/tag"  # SPOTLER_ROUTE_TAG_REMOVE
    body_tag_remove: str = '{"tags": "{tags}"}'  # SPOTLER_BODY_TAG_REMOVE
    route_score: str = "POST contact/{external_id}/score"  # SPOTLER_ROUTE_SCORE
    body_score: str = '{"tag": "{tag}", "score": "{score}", "mode": "{mode}"}'  # SPOTLER_BODY_SCORE
    #: case of the ``{mode}`` value: "upper" (SET|INCREASE|DECREASE) or "lower" (SPOTLER_SCORE_MODE_CASE)
    score_mode_case: str = "upper"

    def __post_init__(self) -> None:
        for name in ("consumer_key", "consumer_secret"):
            if not getattr(self, name):
                raise ConfigValueError(name, "the OAuth 1.0a credential from Spotler Mail+ (Account settings > Integrations; docs/credentials.md)")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigValueError("base_url", "an http:// or https:// URL")
        for name in ("automation_field_type_case", "score_mode_case"):
            if getattr(self, name) not in ("upper", "lower"):
                raise ConfigValueError(name, "upper or lower")
        if not self.automation_fields_key:
            raise ConfigValueError("automation_fields_key", "a JSON key name (not empty)")
        self.http_settings  # noqa: B018 - validates timeouts/retries
        build_routes(self)  # raises WireFormatError (a ValueError) naming the bad field

