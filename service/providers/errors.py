"""The only exceptions a provider (upstream platform client) may raise.

Every upstream client maps transport errors and upstream status codes to these types at its boundary
(the httpx "map exceptions" idea). The HTTP layer maps them to problem+json answers; nothing above the
providers ever sees a ``requests`` exception.

| type            | meaning                                                    | our answer |
|-----------------|------------------------------------------------------------|------------|
| NotFound        | the platform says the thing does not exist                 | 404        |
| InvalidInput    | the platform rejected the input as malformed               | 400        |
| Rejected        | the platform refuses for a business reason                 | 409        |
| Forbidden       | the account/product tier may not use this call             | 403        |
| AuthFailed      | the platform refused our credentials (configuration)       | 424        |
| RateLimited     | the platform asks us to slow down                          | 503 + Retry-After |
| Unavailable     | the platform is down / answered 5xx / reset the connection | 503 + Retry-After |
| UpstreamTimeout | no answer within the configured bound                      | 504 + Retry-After |
| NotSupported    | the platform has no such operation                         | 400 (not 501: Power Automate retries 5xx) |
| OutcomeUnknown  | a call that is not safe to repeat may have been applied,   | 409 OUTCOME_UNKNOWN |
|                 | but no answer came back (never retried by us)              |            |
"""

from __future__ import annotations


class ConfigValueError(ValueError):
    """A platform config field is invalid (raised when the config is built, at startup, never per call).

    ``field`` is the config dataclass field (``read_timeout``; the environment variable is
    ``<PLATFORM>_<FIELD>``), ``allowed`` says in words what it accepts."""

    def __init__(self, field: str, allowed: str) -> None:
        super().__init__(f"{field}: allowed is {allowed}")
        self.field = field
        self.allowed = allowed


class ProviderError(Exception):
    """Base class. ``code`` is a stable machine-readable code (upper snake case)."""

    default_code = "UPSTREAM_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        upstream_status: int | None = None,
        error_type: str | None = None,
        details: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.upstream_status = upstream_status
        #: the platform's own error type, e.g. Spotler's ``errorType`` (``CONTACT_NOTFOUND``)
        self.error_type = error_type
        #: extra structured information (per-automation results, missing ids, ...)
        self.details = details or {}

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class NotFound(ProviderError):
    default_code = "NOT_FOUND"


class InvalidInput(ProviderError):
    default_code = "UPSTREAM_VALIDATION_FAILED"


class Rejected(ProviderError):
    default_code = "REJECTED"


class Forbidden(ProviderError):
    default_code = "FORBIDDEN_BY_PLATFORM"


class AuthFailed(ProviderError):
    default_code = "PLATFORM_AUTH_FAILED"


class TransientError(ProviderError):
    """Base of the errors worth retrying later. ``retry_after`` is in seconds."""

    default_code = "UPSTREAM_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RateLimited(TransientError):
    default_code = "UPSTREAM_RATE_LIMITED"


class Unavailable(TransientError):
    default_code = "UPSTREAM_UNAVAILABLE"


class UpstreamTimeout(TransientError):
    default_code = "UPSTREAM_TIMEOUT"


class NotSupported(ProviderError):
    default_code = "NOT_SUPPORTED"


class OutcomeUnknown(ProviderError):
    """A call that is not safe to repeat (start an automation, trigger a campaign, change a score by an amount)
    may have reached the platform, but its answer never came back (read timeout, connection reset after the
    request was sent, a gateway's 502/504). Retrying could apply it twice, so nobody retries it: the job is
    settled by a read-back where the platform can be asked, else it ends as OUTCOME_UNKNOWN."""

    default_code = "OUTCOME_UNKNOWN"

    def __init__(self, message: str, *, call: str, in_flight: bool = True, **kw) -> None:
        super().__init__(message, **kw)
        #: the upstream call (client operation name) whose outcome is unknown
        self.call = call
        #: True when the platform may still be working on the request (a timeout, a gateway's 502/504): then
        #: an unchanged state read back now does not prove it was not applied; False after a connection reset
        self.in_flight = in_flight
