"""int and money: whole numbers in the 32-bit range; amounts in either European or English notation, as a string
with two decimals."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from service.actions.coercion.common import INT_MAX, INT_MIN, MONEY_LIMIT, BadValue

_INT_RE = re.compile(r"[+-]?[0-9]+")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise BadValue("a true/false value is not a number")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise BadValue("not a whole number")
        n = int(value)
    elif isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise BadValue("not a whole number")
        if abs(value) > INT_MAX + 1:
            raise BadValue("out of range")
        n = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _INT_RE.fullmatch(text) or len(text) > 20:
            raise BadValue("not a whole number" if len(text) <= 20 else "out of range")
        n = int(text)
    else:
        raise BadValue(f"a {type(value).__name__} is not a number")
    if not INT_MIN <= n <= INT_MAX:
        raise BadValue(f"out of range ({INT_MIN} to {INT_MAX})")
    return n


_CURRENCY_RE = re.compile(r"^(?:€|EUR)\s*|\s*(?:€|EUR)$", re.IGNORECASE)
_MONEY_RE = re.compile(r"([+-]?)([0-9][0-9.,]*)")
_CENT = Decimal("0.01")


def _grouped(int_part: str, sep: str) -> str:
    """Digits grouped by ``sep`` in threes (1.234.567) -> 1234567; raises BadValue otherwise."""
    groups = int_part.split(sep)
    if not (1 <= len(groups[0]) <= 3) or any(len(g) != 3 for g in groups[1:]) or not all(g.isdigit() for g in groups):
        raise BadValue("the thousands separators are misplaced")
    return "".join(groups)


def _parse_money_text(text: str) -> Decimal:
    text = _CURRENCY_RE.sub("", text.strip()).strip()
    m = _MONEY_RE.fullmatch(text)
    if not m:
        raise BadValue("not an amount")
    sign, body = m.groups()
    if body[-1] in ".,":
        raise BadValue("not an amount")
    dots, commas = body.count("."), body.count(",")
    if dots and commas:
        dec = "." if body.rfind(".") > body.rfind(",") else ","
        thousands = "," if dec == "." else "."
        if body.count(dec) > 1:
            raise BadValue("more than one decimal separator")
        int_part, frac = body.split(dec)
        digits = _grouped(int_part, thousands) + "." + frac
    elif dots + commas > 1:
        digits = _grouped(body, "." if dots else ",")
    elif dots + commas == 1:
        sep = "." if dots else ","
        int_part, frac = body.split(sep)
        if len(frac) == 3 and int_part != "0" and len(int_part) <= 3:
            raise BadValue(f"'{sep}' followed by three digits could mean thousands or decimals; "
                       "write 1234 or 1234.50")
        digits = int_part + "." + frac
    else:
        digits = body
    if not digits.replace(".", "", 1).isdigit():
        raise BadValue("not an amount")
    return Decimal(sign + digits)


def to_money(value: Any) -> str:
    if isinstance(value, bool):
        raise BadValue("a true/false value is not an amount")
    if isinstance(value, int):
        if abs(value) >= MONEY_LIMIT:
            raise BadValue("too large")
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BadValue("not a finite number")
        amount = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise BadValue("not a finite number")
        amount = value
    elif isinstance(value, str):
        if len(value) > 64:
            raise BadValue("too long for an amount")
        amount = _parse_money_text(value)
    else:
        raise BadValue(f"a {type(value).__name__} is not an amount")
    if abs(amount) >= MONEY_LIMIT:
        raise BadValue("too large")
    try:
        cents = amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # pragma: no cover - guarded by the range check
        raise BadValue("not an amount") from exc
    if cents == 0:
        cents = abs(cents)  # no "-0.00"
    return f"{cents:.2f}"
