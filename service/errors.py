"""Every exception an upstream client (or the service's own budgets) may raise: one hierarchy, described here (httpx's ``_exceptions.py`` is
the model). Each client maps its transport errors and upstream answers to these types at its boundary; nothing
above the clients ever sees a ``requests``, ``msal`` or ``jwt`` exception. ``code`` is stable (upper snake case)
and safe to show; ``message`` never holds a token, a secret or an e-mail address.

Tree (what the service answers for each, via :mod:`service.actions.problems` and :mod:`service.api.security`)::

    UpstreamError                 message, code
    ├── ProviderError             a marketing platform (Spotler, Piggy, Spoki); upstream_status, error_type,
    │   │                         details                                               -> 502
    │   ├── NotFound              the platform says the thing does not exist            -> 404
    │   ├── InvalidInput          the platform rejected the input as malformed          -> 400
    │   │   └── AmbiguousContact  several contacts have the e-mail address given        -> 400 AMBIGUOUS_CONTACT
    │   ├── Rejected              the platform refuses for a business reason            -> 409
    │   ├── Forbidden             the account/product tier may not use this call        -> 403
    │   ├── AuthFailed            the platform refused our credentials (configuration)  -> 424
    │   ├── NotSupported          the platform has no such operation                    -> 400 (not 501: Power
    │   │                                                                                  Automate retries 5xx)
    │   ├── OutcomeUnknown        a call that is not safe to repeat may have been       -> 409 OUTCOME_UNKNOWN
    │   │                         applied, but no answer came back (never retried)
    │   └── TransientError        worth retrying later; retry_after (seconds)
    │       ├── RateLimited       the platform asks us to slow down                     -> 503 + Retry-After
    │       ├── Unavailable       down / 5xx / connection reset                         -> 503 + Retry-After
    │       └── UpstreamTimeout   no answer within the configured bound                 -> 504 + Retry-After
    └── MicrosoftError            Entra ID, msal, Dataverse; status, upstream_code
        ├── TokenRejected         an incoming access token is not acceptable            -> 401 (code = reason)
        ├── KeysUnavailable       the tenant's signing keys could not be fetched        -> 503
        ├── TokenAcquisitionError Entra ID refused or failed to issue a Dataverse token (transient or not)
        └── DataverseError
            ├── DataverseNotFound     the record does not exist
            ├── DataverseDenied       401/403: the app or the user may not do this (configuration)
            ├── DataverseDuplicate    a record with that id exists already (412 / 0x80040237)
            ├── DataverseRejected     another 4xx (bad request, validation)
            └── DataverseUnavailable  429 / 5xx / connection failure; retry_after when known
                └── DataverseTimeout  no answer in time

    LimitExceeded                 not an upstream's: the service's own budgets refuse a call before any upstream
    │                             call; message, code, retry_after (whole seconds >= 1)  -> 429 + Retry-After
    ├── TenantBudgetExceeded      a tenant's concurrent calls or calls per minute (budget) -> TENANT_BUDGET_EXCEEDED
    └── CredentialsThrottled      too many refused credentials from one client   -> TOO_MANY_REFUSED_CREDENTIALS

    ConfigValueError (ValueError) a platform config field is invalid: raised at startup, never per call

:mod:`service.providers.errors` and :mod:`service.microsoft.errors` name the two branches for their clients.
"""

from __future__ import annotations

from service.privacy import mask_email


class ConfigValueError(ValueError):
    """A platform config field is invalid (raised when the config is built, at startup, never per call).

    ``field`` is the config dataclass field (``read_timeout``; the environment variable is
    ``<PLATFORM>_<FIELD>``), ``allowed`` says in words what it accepts."""

    def __init__(self, field: str, allowed: str) -> None:
        super().__init__(f"{field}: allowed is {allowed}")
        self.field = field
        self.allowed = allowed


class UpstreamError(Exception):
    """Base of every upstream client's error. ``code`` is a stable machine-readable code (upper snake case)."""

    default_code = "UPSTREAM_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


# -- the marketing platforms ------------------------------------------------------------------------------

class ProviderError(UpstreamError):
    """A marketing platform's error (module doc)."""

    default_code = "UPSTREAM_ERROR"

    def __init__(self, message: str, *, code: str | None = None, upstream_status: int | None = None,
                 error_type: str | None = None, details: dict | None = None) -> None:
        super().__init__(message, code=code)
        self.upstream_status = upstream_status
        #: the platform's own error type, e.g. Spotler's ``errorType`` (``CONTACT_NOTFOUND``)
        self.error_type = error_type
        #: extra structured information (per-automation results, missing ids, ...)
        self.details = details or {}


class NotFound(ProviderError):
    default_code = "NOT_FOUND"


class InvalidInput(ProviderError):
    default_code = "UPSTREAM_VALIDATION_FAILED"


class AmbiguousContact(InvalidInput):
    """Several contacts of the platform have the e-mail address a call gave: which one is meant is the caller's
    choice, never ours (a welcome mail to the wrong person cannot be taken back). Raised by
    :func:`service.providers.base.one_contact`, the one check every platform's e-mail lookup goes through,
    before any side effect. ``candidates``: ``(externalId, e-mail)`` pairs; the e-mail addresses are masked here,
    so neither the message nor ``details`` holds one in clear."""

    default_code = "AMBIGUOUS_CONTACT"
    #: candidates listed in the answer at most (a platform may hold more)
    MAX_LISTED = 10

    def __init__(self, platform: str, candidates: list[tuple[str, str | None]], *, more: bool = False) -> None:
        listed = candidates[:self.MAX_LISTED]
        ids = ", ".join(ext for ext, _ in listed)
        count = f"{len(candidates) or 'Several'}{'+' if candidates and more else ''}"
        super().__init__(
            f"{count} {platform} contacts have this e-mail address, so the service cannot tell which one is meant. "
            f"Address the contact by its externalId instead{f' (one of {ids})' if ids else ''}.",
            details={"candidates": [{"externalId": ext, **({"email": mask_email(email)} if email else {})}
                                    for ext, email in listed]})
        self.external_ids = [ext for ext, _ in candidates]


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


# -- Microsoft (Entra ID, msal, Dataverse) ----------------------------------------------------------------

class MicrosoftError(UpstreamError):
    """A Microsoft client's error (module doc)."""

    default_code = "MICROSOFT_ERROR"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 upstream_code: str | None = None) -> None:
        super().__init__(message, code=code)
        #: the upstream HTTP status, when there was one
        self.status = status
        #: Dataverse's error code (``0x80040217``) or Entra ID's error (``invalid_grant``), when known
        self.upstream_code = upstream_code


class TokenRejected(MicrosoftError):
    """An incoming bearer token failed validation. ``code`` is the reason (e.g. ``TOKEN_EXPIRED``)."""

    default_code = "TOKEN_INVALID"


class KeysUnavailable(MicrosoftError):
    default_code = "ENTRA_KEYS_UNAVAILABLE"


class TokenAcquisitionError(MicrosoftError):
    default_code = "DATAVERSE_TOKEN_FAILED"

    def __init__(self, message: str, *, transient: bool = False, **kw) -> None:
        super().__init__(message, **kw)
        self.transient = transient


class DataverseError(MicrosoftError):
    default_code = "DATAVERSE_ERROR"


class DataverseNotFound(DataverseError):
    default_code = "DATAVERSE_RECORD_NOT_FOUND"


class DataverseDenied(DataverseError):
    default_code = "DATAVERSE_ACCESS_DENIED"


class DataverseDuplicate(DataverseError):
    default_code = "DATAVERSE_DUPLICATE"


class DataverseRejected(DataverseError):
    default_code = "DATAVERSE_REJECTED"


class DataverseUnavailable(DataverseError):
    default_code = "DATAVERSE_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class DataverseTimeout(DataverseUnavailable):
    default_code = "DATAVERSE_TIMEOUT"


# -- the service's own budgets (service.actions.budgets) --------------------------------------------------

class LimitExceeded(Exception):
    """The service's own budget refuses a call (before any upstream call): retry after ``retry_after`` seconds
    (a whole number >= 1). ``message`` says which budget and when, never the tenant or the client."""

    default_code = "LIMIT_EXCEEDED"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retry_after = max(1, int(retry_after))


class TenantBudgetExceeded(LimitExceeded):
    """A tenant's budget is used up. ``budget``: ``concurrent`` or ``per_minute``."""

    default_code = "TENANT_BUDGET_EXCEEDED"

    def __init__(self, message: str, *, budget: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.budget = budget


class CredentialsThrottled(LimitExceeded):
    """One client presented too many refused credentials within the window."""

    default_code = "TOO_MANY_REFUSED_CREDENTIALS"
