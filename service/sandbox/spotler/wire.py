"""Small wire helpers shared by the Spotler simulator's modules: its error, JSON answers and ISO 8601 query dates."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from werkzeug.wrappers import Response


class SimError(Exception):
    """A Spotler error answer: ``status`` and the body ``{errorType, message, ...}`` (no body without a type)."""

    def __init__(self, status: int, error_type: str | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] | None = (
            {"errorType": error_type, "message": message, **extra} if error_type is not None else extra or None
        )


def json_response(status: int, payload: Any) -> Response:
    """``payload`` as a JSON answer (no body when it is None)."""
    if payload is None:
        return Response(status=status)
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def parse_iso(value: str | None) -> dt.datetime | None:
    """An aware datetime from an ISO 8601 query value (naive means UTC); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip().replace(" ", "+")  # a '+' offset arrives as a space when not percent-encoded
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
