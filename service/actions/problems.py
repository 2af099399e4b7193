"""Problems: the one place where an error becomes an HTTP status, a stable code and a sentence.

Provider-independent and free of Flask/Connexion: the HTTP layer renders a :class:`Problem` as
``application/problem+json``; the job ledger stores it so that an idempotent replay answers the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from service.errors import LimitExceeded
from service.providers import errors as perr

PROBLEM_BASE = "https://marketing-actions.dev/problems/"
#: seconds, for a transient problem that brings no better figure (an unexpected platform answer, our own bug)
DEFAULT_RETRY_AFTER = "5"


@dataclass
class Problem:
    status: int
    code: str
    title: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    #: extra members of the problem document (e.g. ``field``, ``candidates``, ``results``)
    ext: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Power Automate retries 408, 429 and every 5xx: each of them says when (a default where no better
        # figure is known); everything a retry cannot fix is a 4xx
        if self.transient and not any(k.lower() == "retry-after" for k in self.headers):
            self.headers["Retry-After"] = DEFAULT_RETRY_AFTER

    @property
    def transient(self) -> bool:
        """True when a retry of the same call may succeed (the flow should retry)."""
        return self.status in (408, 429) or self.status >= 500

    def to_dict(self, *, request_id: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code.lower().replace("_", "-"),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        for k, v in self.ext.items():
            if v is not None and k not in doc:  # extensions never replace the RFC 7807 members or the code
                doc[k] = v
        if request_id:
            doc["requestId"] = request_id
        return doc


class ActionError(Exception):
    """Raised by actions (our own validation and business rules). Carries its Problem."""

    def __init__(self, status: int, code: str, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **ext: Any) -> None:
        super().__init__(detail)
        self.problem = Problem(status=status, code=code, title=title or _TITLES.get(status, "Error"),
                               detail=detail, headers=dict(headers or {}), ext=ext)


def invalid(field_name: str | None, detail: str, code: str = "VALIDATION_FAILED", **ext: Any) -> ActionError:
    """A 400 that names the offending field."""
    return ActionError(400, code, detail, field=field_name, **ext)


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    424: "Failed Dependency",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def title_for(status: int) -> str:
    return _TITLES.get(status, "Error")


def _retry_after(seconds: float | None, default: int) -> str:
    if seconds is None or seconds <= 0:
        return str(default)
    return str(max(1, math.ceil(seconds)))


def from_provider_error(exc: perr.ProviderError) -> Problem:
    """Map a provider error to the answer a flow maker can act on (DESIGN.md, behaviour rules)."""
    ext: dict[str, Any] = {}
    if exc.error_type:
        ext["upstreamErrorType"] = exc.error_type
    ext.update(exc.details)
    if isinstance(exc, perr.NotFound):
        return Problem(404, exc.code, "Not Found", exc.message, ext=ext)
    if isinstance(exc, perr.InvalidInput):
        return Problem(400, exc.code, "Bad Request", exc.message, ext=ext)
    if isinstance(exc, perr.Rejected):
        return Problem(409, exc.code, "Conflict", exc.message, ext=ext)
    if isinstance(exc, perr.Forbidden):
        return Problem(403, exc.code, "Forbidden", exc.message, ext=ext)
    if isinstance(exc, perr.AuthFailed):
        return Problem(424, exc.code, "Failed Dependency",
                       exc.message or "The marketing platform refused the service's credentials.", ext=ext)
    if isinstance(exc, perr.OutcomeUnknown):  # final: a retry could apply it twice (see service.actions.runner)
        return Problem(409, "OUTCOME_UNKNOWN", "Conflict", exc.message, ext={**ext, "upstreamCall": exc.call})
    if isinstance(exc, perr.NotSupported):
        # not 501: Power Automate retries every 5xx, and no retry gives a platform an action it lacks
        return Problem(400, exc.code, "Bad Request", exc.message, ext=ext)
    if isinstance(exc, perr.UpstreamTimeout):
        return Problem(504, exc.code, "Gateway Timeout", exc.message,
                       headers={"Retry-After": _retry_after(exc.retry_after, 10)}, ext=ext)
    if isinstance(exc, perr.TransientError):  # RateLimited, Unavailable
        return Problem(503, exc.code, "Service Unavailable", exc.message,
                       headers={"Retry-After": _retry_after(exc.retry_after, 5)}, ext=ext)
    return Problem(502, exc.code, "Bad Gateway", exc.message, ext=ext)


#: hosted mode: the platform refused the connection's own credentials (the caller's 401)
CREDENTIALS_REFUSED = "PLATFORM_CREDENTIALS_REFUSED"


def credentials_refused(platform: str) -> ActionError:
    """Hosted mode: the platform refused the connection's credentials (its 401/403): the caller's 401, never a
    5xx (single mode: the service's own credentials, 424)."""
    from service.actions.connection import KEY_PARAMETER, LABELS, SECRET_PARAMETER

    names = f"'{KEY_PARAMETER.get(platform, 'key')}'" + (
        f" and '{SECRET_PARAMETER[platform]}'" if platform in SECRET_PARAMETER else "")
    return ActionError(401, CREDENTIALS_REFUSED,
                       f"{LABELS.get(platform, platform)} refused the credentials of this connection. Check {names} "
                       "in the connection.", platform=platform)


def to_problem(exc: BaseException, *, hosted_platform: str | None = None) -> Problem | None:
    """The Problem for an action, provider or budget error; None for anything else (an unexpected bug).
    ``hosted_platform``: the call brought its own account (hosted mode), so a refusal of its credentials is the
    caller's 401 ``PLATFORM_CREDENTIALS_REFUSED`` (single mode: the service's configuration, 424)."""
    if isinstance(exc, ActionError):
        return exc.problem
    if hosted_platform is not None and isinstance(exc, perr.AuthFailed):
        return credentials_refused(hosted_platform).problem
    if isinstance(exc, perr.ProviderError):
        return from_provider_error(exc)
    if isinstance(exc, LimitExceeded):  # our own budgets (service.actions.budgets): the flow retries after it
        return Problem(429, exc.code, "Too Many Requests", exc.message,
                       headers={"Retry-After": str(exc.retry_after)})
    return None
