"""Every error answer is application/problem+json with type, title, status, detail and a stable ``code``."""

from __future__ import annotations

import logging
import re

from connexion.exceptions import (
    BadRequestProblem,
    ExtraParameterProblem,
    Forbidden,
    OAuthProblem,
    ProblemException,
    Unauthorized,
    UnsupportedMediaTypeProblem,
)
from connexion.lifecycle import ConnexionResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from werkzeug.exceptions import HTTPException as WerkzeugHTTPException

from service import privacy
from service.actions.problems import ActionError, Problem, title_for, to_problem
from service.api.answers import media_type_detail, render_problem
from service.actions.storage import SchemaNotCurrent
from service.api.validation import InputProblem
from service.errors import LimitExceeded
from service.logs import request_id_var
from service.providers.errors import ProviderError

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "VALIDATION_FAILED",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "SERVICE_UNAVAILABLE",
}

_DETAILS = {
    401: "Send a valid API key in the X-API-Key header (the connection's API key), or a Microsoft Entra ID "
         "access token for this service (Authorization: Bearer) from an Entra ID connection.",
    404: "There is no such endpoint. Check the path; the API is described at /swagger.json and /ui.",
    405: "This endpoint does not accept that HTTP method.",
}

# "'abc' is not of type 'integer' - 'score'"  /  "'contact' is a required property"
_FIELD_AT_END = re.compile(r" - '([^']+)'$")
_REQUIRED = re.compile(r"'([^']+)' is a required property")


render = render_problem


def _field_from_detail(detail: str) -> str | None:
    """The field a schema error names, written as makers see it: ``contacts.1.email`` -> ``contacts[1].email``."""
    m = _FIELD_AT_END.search(detail or "") or _REQUIRED.search(detail or "")
    if not m:
        return None
    out = ""
    for part in m.group(1).split("."):
        out += f"[{part}]" if part.isdigit() and out else (f".{part}" if out else part)
    return out


def connexion_problem(_request, exc: ProblemException) -> ConnexionResponse:
    status = exc.status or 500
    code = (exc.ext or {}).get("code") if isinstance(exc.ext, dict) else None
    if code is None:
        if isinstance(exc, UnsupportedMediaTypeProblem):
            code = "UNSUPPORTED_MEDIA_TYPE"
        elif isinstance(exc, ExtraParameterProblem):
            code = "UNKNOWN_PARAMETER"
        elif isinstance(exc, (Unauthorized, OAuthProblem)):
            code = "UNAUTHORIZED"
        elif isinstance(exc, Forbidden):
            code = "FORBIDDEN"
        elif isinstance(exc, BadRequestProblem):
            code = "VALIDATION_FAILED"
        else:
            code = _STATUS_CODES.get(status, "ERROR")
    detail = exc.detail or _DETAILS.get(status) or title_for(status)
    if isinstance(exc, UnsupportedMediaTypeProblem):  # Connexion's says "expected ['application/json']"
        accepted = re.findall(r"'([^']+)'", str(exc.detail or "").rpartition("expected")[2])
        detail = media_type_detail(_request.headers.get("content-type") if _request is not None else None,
                                   accepted=accepted)
    if status == 401:
        detail = f"{detail.rstrip('.')}. {_DETAILS[401]}"
    # a bad value is never echoed at full length, an e-mail address never in clear
    detail = privacy.mask_emails_in_text(str(detail))
    if not isinstance(exc, InputProblem):  # ours are already short; Connexion's may quote a whole value
        detail = privacy.shorten_quoted(detail, keep=16)
    ext = {}
    given_field = (exc.ext or {}).get("field") if isinstance(exc.ext, dict) else None
    if given_field:
        ext["field"] = given_field
    elif status == 400:
        field = _field_from_detail(detail)
        if field:
            ext["field"] = field
    headers = dict(exc.headers or {})
    if status >= 500:
        log.error("problem %s: %s", status, detail)
    return render(Problem(status, code, exc.title or title_for(status), detail, headers=headers, ext=ext))


def http_exception(_request, exc) -> ConnexionResponse:
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None) or 500
    detail = _DETAILS.get(status) or getattr(exc, "detail", None) or getattr(exc, "description", None) \
        or title_for(status)
    headers = {}
    if status == 405:
        allow = dict(getattr(exc, "headers", None) or {}).get("Allow") or (
            ", ".join(exc.valid_methods) if getattr(exc, "valid_methods", None) else None)
        if allow:
            headers["Allow"] = allow
    return render(Problem(status, _STATUS_CODES.get(status, "ERROR"), title_for(status), str(detail),
                          headers=headers))


def domain_error(_request, exc: Exception) -> ConnexionResponse:
    problem = to_problem(exc, hosted_platform=_hosted_platform(_request))
    if problem is None:  # pragma: no cover - registered only for domain errors
        return unexpected(_request, exc)
    log_problem(problem, upstream=isinstance(exc, ProviderError))
    return render(problem)


def _hosted_platform(request) -> str | None:
    """Hosted mode: the platform the request names (its credentials are the caller's, not the service's)."""
    from service.actions.connection import PLATFORMS
    from service.runtime import current_runtime

    try:
        if not current_runtime().settings.hosted:
            return None
        platform = (request.headers.get("x-platform") or "").strip().lower()
    except (LookupError, AttributeError):  # pragma: no cover - outside a request
        return None
    return platform if platform in PLATFORMS else None


def log_problem(problem: Problem, *, upstream: bool) -> None:
    """One log line for a 5xx answer that says where it came from. An action the platform lacks (a 400, answered
    before any platform call) is not a failure of anything: logged as information."""
    if problem.code == "NOT_SUPPORTED_BY_PLATFORM":
        log.info("not supported by this platform: %s", problem.detail, extra={"code": problem.code})
    elif problem.status >= 500:
        log.warning("%s %s %s: %s", "upstream problem" if upstream else "problem", problem.status, problem.code,
                    problem.detail)


def database_unavailable(_request, exc: Exception) -> ConnexionResponse:
    """The ledger database is away, or its schema is not current (AUTO_MIGRATE=false): a 503 to retry, never a
    500 per call."""
    if isinstance(exc, SchemaNotCurrent):
        log.error("%s", exc)
        detail = "The service's job ledger is not ready (its schema is not current); the operator must migrate it."
    else:
        log.error("job ledger database unavailable: %s", type(exc).__name__)
        detail = "The service's job ledger database is unavailable. Retry in a few seconds."
    return render(Problem(503, "LEDGER_UNAVAILABLE", "Service Unavailable", detail,
                          headers={"Retry-After": "10"}))


def unexpected(_request, exc: Exception) -> ConnexionResponse:
    log.error("unhandled exception", exc_info=exc)
    rid = request_id_var.get()
    return render(Problem(500, "INTERNAL_ERROR", "Internal Server Error",
                          f"Something went wrong on our side. Quote request id {rid} when you report it."))


def register(app) -> None:
    app.add_error_handler(ProblemException, connexion_problem)
    app.add_error_handler(StarletteHTTPException, http_exception)
    app.add_error_handler(WerkzeugHTTPException, http_exception)
    app.add_error_handler(ActionError, domain_error)
    app.add_error_handler(UnicodeDecodeError, lambda _r, _e: render(Problem(  # connexion 3.3 does not catch it
        400, "INVALID_JSON", "Bad Request", "The request body is not valid UTF-8 JSON.")))
    app.add_error_handler(ProviderError, domain_error)
    app.add_error_handler(LimitExceeded, domain_error)
    app.add_error_handler(SchemaNotCurrent, database_unavailable)
    app.add_error_handler(sa_exc.OperationalError, database_unavailable)
    app.add_error_handler(sa_exc.InterfaceError, database_unavailable)
    app.add_error_handler(sa_exc.TimeoutError, database_unavailable)
    app.add_error_handler(Exception, unexpected)
