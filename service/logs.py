"""JSON-lines logging on stdout with the request id, and the caller's run correlation, in every line.

``configure_logging`` is called by ``create_app()``; nothing happens at import time. The request id lives in a
context variable set by the request middleware; it follows the request into Flask's worker threads (a2wsgi
copies the context) and into error handlers. So does the **correlation** (:func:`correlation_from_headers`):
the Power Automate run headers the request brought (whitelisted names, capped values, only those present),
written as ``"correlation": {...}`` in every line of the call and stored on its job.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any

from service.privacy import redact_text, scrub_log_text

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
#: the run headers of the current request (:func:`correlation_from_headers`); None outside a request
correlation_var: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("correlation", default=None)

#: the request headers recorded for correlation (Power Automate / Logic Apps send them with each action call),
#: by the key they get in a log line and on the job; no other header is ever taken
CORRELATION_HEADERS: dict[str, str] = {
    "x-ms-workflow-run-id": "workflowRunId",
    "x-ms-client-tracking-id": "clientTrackingId",
    "x-ms-workflow-name": "workflowName",
    "x-ms-workflow-id": "workflowId",
    "x-ms-workflow-version": "workflowVersion",
    "x-ms-workflow-operation-name": "workflowOperationName",
    "x-ms-correlation-id": "correlationId",
    "x-ms-client-request-id": "clientRequestId",
    "x-ms-activity-vector": "activityVector",
}
#: longest value kept (longer ones are cut); the platform's run ids and names are far shorter
CORRELATION_MAX_LENGTH = 200


def correlation_from_headers(headers: Iterable[tuple[bytes | str, bytes | str]]) -> dict[str, str]:
    """The whitelisted run headers among ``headers`` (name, value pairs), as ``{key: value}``: only those
    present and not empty, printable ASCII only, at most :data:`CORRELATION_MAX_LENGTH` characters each, an
    e-mail address or a secret in one masked (a maker's own tracking id may hold one)."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = (raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name).lower()
        key = CORRELATION_HEADERS.get(name)
        if key is None or key in out:
            continue
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        value = redact_text("".join(ch for ch in value if " " <= ch <= "~").strip()[:CORRELATION_MAX_LENGTH])
        if value:
            out[key] = value
    return out

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            # no clear e-mail address, secret or long echoed value in any line, ours or a library's
            "msg": scrub_log_text(record.getMessage()),
            "requestId": getattr(record, "request_id", None) or request_id_var.get(),
        }
        correlation = correlation_var.get()
        if correlation:
            doc["correlation"] = _scrub(correlation)
        for key, value in vars(record).items():
            if key not in _RESERVED and key != "request_id" and not key.startswith("_"):
                doc[key] = _scrub(value)
        if record.exc_info:
            doc["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(doc, default=str, ensure_ascii=False)


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub_log_text(value)
    if depth < 4 and isinstance(value, dict):
        return {k: _scrub(v, depth + 1) for k, v in value.items()}
    if depth < 4 and isinstance(value, (list, tuple)):
        return [_scrub(v, depth + 1) for v in value]
    return value


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


_HANDLER_NAME = "marketing-actions-json"


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the record (test capture, redirection)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stdout as one JSON object per line (idempotent)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == _HANDLER_NAME:
            root.removeHandler(h)
    handler = _StdoutHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn/gunicorn loggers propagate to root when they have no handlers of their own
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request with its id
    # alembic narrates every migration step at INFO (14 lines on the first write); the runtime logs one line
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # at DEBUG, urllib3 logs each request's whole URL, query included (a callback URL's signature, an e-mail
    # address), and Connexion each request's path (a webhook's secret route token): never below INFO
    for name in ("urllib3.connectionpool", "connexion"):
        logging.getLogger(name).setLevel(logging.INFO)
    # "Adding spec json: /swagger.json", once per worker: nothing to act on
    logging.getLogger("connexion.middleware.swagger_ui").setLevel(logging.WARNING)
