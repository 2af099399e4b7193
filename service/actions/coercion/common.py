"""What every converter shares: the problem codes, the limits, :class:`BadValue` and :func:`as_text`."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from typing import Any

CODE_INVALID_VALUE = "INVALID_FIELD_VALUE"
CODE_AMBIGUOUS = "AMBIGUOUS_FIELD"
CODE_UNKNOWN = "UNKNOWN_FIELD"
CODE_READ_ONLY = "READ_ONLY_FIELD"

MAX_STRING_LENGTH = 8000
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
MONEY_LIMIT = Decimal("1000000000000")  # exclusive
MIN_YEAR, MAX_YEAR = 1000, 9999
MIN_BIRTH_YEAR = 1850


class BadValue(Exception):
    """Raised by the converters: the value cannot be converted; carries an optional reason (shown to the maker)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


def as_text(value: Any) -> str:
    """A scalar as stripped text; raises BadValue for containers and other objects."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) >= 10**MAX_STRING_LENGTH:
            raise BadValue("the number is too long")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadValue("not a finite number")
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 1000 or value.adjusted() < -1000:
            raise BadValue("not a usable number")
        return format(value, "f")
    if isinstance(value, date):  # date or datetime
        return value.isoformat()
    raise BadValue(f"a {type(value).__name__} is not a single value")
