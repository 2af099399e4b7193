"""Contact field values: find the field a maker means and convert the maker's input to what the platform stores.

Field types follow the Spotler vocabulary (``GET /contact/properties/list``): string, int, money, date,
dateTime, birthdate, email, gender, mobNr, postcode, set; plus boolean (other platforms map onto it). An
unknown type is handled as string.

What each type accepts and produces (see also :func:`describe_formats`):

==========  ======================================================  ==========================================
type        accepted                                                 result
==========  ======================================================  ==========================================
string      text, numbers, booleans; trimmed; at most 8000 chars     ``str``
int         42, 42.0 (number), "42", " -42 " (32-bit range)          ``int``
money       12.5, "12.50", "12,50", "1.234,56", "1,234.56", "€ 5"   ``str`` with two decimals: ``"1234.56"``
date        2024-02-29, 29-02-2024, 29/02/2024, 29.02.2024,          ``str`` ``YYYY-MM-DD``
            1-2-2024 (day first), 2024/02/29, an ISO date-time
            (its date part, as written)
birthdate   as date, not in the future, year >= 1850                 ``str`` ``YYYY-MM-DD``
dateTime    ISO 8601 with or without offset (2024-02-29T13:45,       ``str`` ISO 8601 with offset, to the
            ...T13:45:12.1234567Z, ...+01:00), 2024-02-29 13:45,     second: ``2024-02-29T13:45:00+00:00``
            29-02-2024 13:45; a date alone means midnight
email       name@domain.tld; domain lower-cased                      ``str``
gender      M/F, male/female, man/woman, vrouw, heer/mevrouw, ...    ``"M"`` or ``"F"``; unknown/U/X -> None
mobNr       digits with optional leading +; spaces, dashes, dots,    ``str`` such as ``+31612345678``
            slashes, brackets and a Dutch "(0)" are removed
postcode    letters, digits, space, hyphen; trimmed, upper-cased     ``str``
boolean     true/false, yes/no, ja/nee, 1/0, on/off, y/n, j          ``bool``
set         list, or "A;B" / "A,B", of option names or values        ``list[str]`` of option values, in the
                                                                     field's option order
==========  ======================================================  ==========================================

Decisions worth knowing:

* ``None``, ``""`` (after trimming), an empty list and the gender "unknown" mean *clear the field*: the
  function returns None and the caller decides whether clearing is allowed.
* money: with both ``.`` and ``,`` the last one is the decimal separator and the other groups thousands; a
  separator used more than once groups thousands; a single separator is the decimal separator, except that
  a single separator followed by exactly three digits (``1.234``, ``1,234``) is ambiguous (thousands in one
  locale, decimals in the other) and rejected. More than two decimals are rounded half-up to cents. The
  result is a string so that no binary-float error creeps in; Spotler's spec types properties as
  ``Map<string,Object>`` without a money format, and a JSON backend accepts a numeric string for a decimal.
  A provider that needs a JSON number converts with ``float(value)``. Range: below one trillion.
* dates are day-first (European): ``1-2-2024`` is 1 February. Month-first input such as ``02/29/2024``
  fails with the expected format. Years have four digits (1000-9999).
* dateTime: a value without an offset is read in ``naive_tz`` (default UTC, the way Power Automate treats
  a date-time without an offset; pass ``ZoneInfo("Europe/Amsterdam")`` to read it as Dutch local time).
  An explicit offset is kept. Fractions of seconds are dropped.
* gender: Spotler's only observed values are ``M`` and ``F``; no "unknown" value is documented, so an
  unknown gender clears the field.
* Problems for invalid values name the field, the value and the expected format (``ext``: field, value,
  expected). Values of email and mobNr fields are masked in the problem (personal data must not reach logs
  or the job ledger in clear).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from service.actions.problems import ActionError, invalid
from service.providers.base import ContactField

__all__ = [
    "CODE_AMBIGUOUS",
    "CODE_INVALID_VALUE",
    "CODE_READ_ONLY",
    "CODE_UNKNOWN",
    "coerce_properties",
    "coerce_value",
    "describe_formats",
    "resolve_field",
]

CODE_INVALID_VALUE = "INVALID_FIELD_VALUE"
CODE_AMBIGUOUS = "AMBIGUOUS_FIELD"
CODE_UNKNOWN = "UNKNOWN_FIELD"
CODE_READ_ONLY = "READ_ONLY_FIELD"

MAX_STRING_LENGTH = 8000
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
MONEY_LIMIT = Decimal("1000000000000")  # exclusive
MIN_YEAR, MAX_YEAR = 1000, 9999
MIN_BIRTH_YEAR = 1850

_TYPES = {t.lower(): t for t in (
    "string", "int", "money", "date", "dateTime", "birthdate", "email", "gender", "mobNr", "postcode", "set",
    "boolean",
)}
_PERSONAL_TYPES = {"email", "mobNr"}


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


def _shown_value(ftype: str, value: Any) -> str:
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # e.g. an int with more digits than Python will print
        text = f"<{type(value).__name__}>"
    if ftype in _PERSONAL_TYPES:
        text = text.strip()
        return (text[:1] + "***") if text else "***"
    return text if len(text) <= 80 else text[:79] + "…"


class _Bad(Exception):
    """Internal: the value cannot be converted; carries an optional reason."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


_EXPECTED = {
    "string": f"text of at most {MAX_STRING_LENGTH} characters",
    "int": "a whole number such as 42",
    "money": "an amount such as 12.50 or 12,50",
    "date": "a date such as 2024-02-29 or 29-02-2024 (day first)",
    "birthdate": "a past date such as 1980-02-29 or 29-02-1980 (day first)",
    "dateTime": "a date and time such as 2024-02-29T13:45:00+01:00, 2024-02-29 13:45 or 29-02-2024 13:45",
    "email": "an e-mail address such as name@example.com",
    "gender": "M or F (or male/female, man/vrouw; 'unknown' clears the field)",
    "mobNr": "a phone number such as +31612345678 or 06-12345678",
    "postcode": "a postcode such as 1234 AB (letters, digits, spaces, hyphens)",
    "boolean": "true or false (also yes/no, ja/nee, 1/0)",
    "set": "one or more option names or values, as a list or separated by ';' or ','",
}


def _error(field: ContactField, ftype: str, value: Any, reason: str = "", expected: str | None = None) -> ActionError:
    expected = expected or _EXPECTED[ftype]
    shown = _shown_value(ftype, value)
    detail = f"Field '{field.name}' cannot take '{shown}'"
    detail += f": {reason}" if reason else ""
    detail += f". Expected {expected}."
    return invalid(field.name, detail, code=CODE_INVALID_VALUE, value=shown, expected=expected, fieldType=ftype)


# ---------------------------------------------------------------------------------------------------------
# Per-type converters (raise _Bad)
# ---------------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A scalar as stripped text; raises _Bad for containers and other objects."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) >= 10**MAX_STRING_LENGTH:
            raise _Bad("the number is too long")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad("not a finite number")
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 1000 or value.adjusted() < -1000:
            raise _Bad("not a usable number")
        return format(value, "f")
    if isinstance(value, date):  # date or datetime
        return value.isoformat()
    raise _Bad(f"a {type(value).__name__} is not a single value")


def _to_string(value: Any) -> str:
    text = _text(value)
    if len(text) > MAX_STRING_LENGTH:
        raise _Bad(f"the text is {len(text)} characters long")
    if "\x00" in text:
        raise _Bad("the text contains a NUL character")
    return text


_INT_RE = re.compile(r"[+-]?[0-9]+")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Bad("a true/false value is not a number")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _Bad("not a whole number")
        n = int(value)
    elif isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise _Bad("not a whole number")
        if abs(value) > INT_MAX + 1:
            raise _Bad("out of range")
        n = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _INT_RE.fullmatch(text) or len(text) > 20:
            raise _Bad("not a whole number" if len(text) <= 20 else "out of range")
        n = int(text)
    else:
        raise _Bad(f"a {type(value).__name__} is not a number")
    if not INT_MIN <= n <= INT_MAX:
        raise _Bad(f"out of range ({INT_MIN} to {INT_MAX})")
    return n


_CURRENCY_RE = re.compile(r"^(?:€|EUR)\s*|\s*(?:€|EUR)$", re.IGNORECASE)
_MONEY_RE = re.compile(r"([+-]?)([0-9][0-9.,]*)")
_CENT = Decimal("0.01")


def _grouped(int_part: str, sep: str) -> str:
    """Digits grouped by ``sep`` in threes (1.234.567) -> 1234567; raises _Bad otherwise."""
    groups = int_part.split(sep)
    if not (1 <= len(groups[0]) <= 3) or any(len(g) != 3 for g in groups[1:]) or not all(g.isdigit() for g in groups):
        raise _Bad("the thousands separators are misplaced")
    return "".join(groups)


def _parse_money_text(text: str) -> Decimal:
    text = _CURRENCY_RE.sub("", text.strip()).strip()
    m = _MONEY_RE.fullmatch(text)
    if not m:
        raise _Bad("not an amount")
    sign, body = m.groups()
    if body[-1] in ".,":
        raise _Bad("not an amount")
    dots, commas = body.count("."), body.count(",")
    if dots and commas:
        dec = "." if body.rfind(".") > body.rfind(",") else ","
        thousands = "," if dec == "." else "."
        if body.count(dec) > 1:
            raise _Bad("more than one decimal separator")
        int_part, frac = body.split(dec)
        digits = _grouped(int_part, thousands) + "." + frac
    elif dots + commas > 1:
        digits = _grouped(body, "." if dots else ",")
    elif dots + commas == 1:
        sep = "." if dots else ","
        int_part, frac = body.split(sep)
        if len(frac) == 3 and int_part != "0" and len(int_part) <= 3:
            raise _Bad(f"'{sep}' followed by three digits could mean thousands or decimals; "
                       "write 1234 or 1234.50")
        digits = int_part + "." + frac
    else:
        digits = body
    if not digits.replace(".", "", 1).isdigit():
        raise _Bad("not an amount")
    return Decimal(sign + digits)


def _to_money(value: Any) -> str:
    if isinstance(value, bool):
        raise _Bad("a true/false value is not an amount")
    if isinstance(value, int):
        if abs(value) >= MONEY_LIMIT:
            raise _Bad("too large")
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad("not a finite number")
        amount = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise _Bad("not a finite number")
        amount = value
    elif isinstance(value, str):
        if len(value) > 64:
            raise _Bad("too long for an amount")
        amount = _parse_money_text(value)
    else:
        raise _Bad(f"a {type(value).__name__} is not an amount")
    if abs(amount) >= MONEY_LIMIT:
        raise _Bad("too large")
    try:
        cents = amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # pragma: no cover - guarded by the range check
        raise _Bad("not an amount") from exc
    if cents == 0:
        cents = abs(cents)  # no "-0.00"
    return f"{cents:.2f}"


_ISO_DATE_RE = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})")
_DMY_DATE_RE = re.compile(r"([0-9]{1,2})([-/.])([0-9]{1,2})\2([0-9]{4})")
_TIME_RE = r"(?:[T ]\s*([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?)?"
_TZ_RE = r"\s*(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
_ISO_DT_RE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})" + _TIME_RE + _TZ_RE, re.IGNORECASE)
_DMY_DT_RE = re.compile(r"([0-9]{1,2})([-/.])([0-9]{1,2})\2([0-9]{4})" + _TIME_RE + _TZ_RE, re.IGNORECASE)


def _make_date(y: str | int, m: str | int, d: str | int) -> date:
    try:
        result = date(int(y), int(m), int(d))
    except ValueError as exc:
        raise _Bad("no such date") from exc
    if not MIN_YEAR <= result.year <= MAX_YEAR:
        raise _Bad("the year must have four digits")
    return result


def _to_date(value: Any) -> str:
    if isinstance(value, datetime):
        return _make_date(value.year, value.month, value.day).isoformat()
    if isinstance(value, date):
        return _make_date(value.year, value.month, value.day).isoformat()
    if not isinstance(value, str):
        raise _Bad(f"a {type(value).__name__} is not a date")
    text = value.strip()
    if len(text) > 64:
        raise _Bad("too long for a date")
    m = _ISO_DATE_RE.fullmatch(text)
    if m:
        y, _, mo, d = m.groups()
        return _make_date(y, mo, d).isoformat()
    m = _DMY_DATE_RE.fullmatch(text)
    if m:
        d, _, mo, y = m.groups()
        if int(mo) > 12 >= int(d):
            raise _Bad("no such date; dates are day first (DD-MM-YYYY)")
        return _make_date(y, mo, d).isoformat()
    m = _ISO_DT_RE.fullmatch(text)  # an ISO date-time: its date part, as written
    if m and m.group(4) is not None:
        _parse_datetime_match(m, iso=True, naive_tz=UTC)  # validates the time part
        return _make_date(*m.groups()[:3]).isoformat()
    raise _Bad("")


def _to_birthdate(value: Any) -> str:
    result = _to_date(value)
    born = date.fromisoformat(result)
    if born.year < MIN_BIRTH_YEAR:
        raise _Bad(f"a birth date before {MIN_BIRTH_YEAR}")
    if born > datetime.now(UTC).date() + timedelta(days=1):
        raise _Bad("a birth date in the future")
    return result


def _offset(text: str | None) -> tzinfo | None:
    if text is None:
        return None
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise _Bad("the time zone offset is invalid")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _parse_datetime_match(m: re.Match[str], *, iso: bool, naive_tz: tzinfo) -> datetime:
    if iso:
        y, mo, d, hh, mi, ss, _frac, tz = m.groups()
    else:
        d, _sep, mo, y, hh, mi, ss, _frac, tz = m.groups()
    day = _make_date(y, mo, d)
    try:
        result = datetime(day.year, day.month, day.day, int(hh or 0), int(mi or 0), int(ss or 0))
    except ValueError as exc:
        raise _Bad("no such time") from exc
    offset = _offset(tz)
    return result.replace(tzinfo=offset if offset is not None else naive_tz)


def _format_datetime(dt: datetime, naive_tz: tzinfo) -> str:
    if dt.tzinfo is None or dt.utcoffset() is None:
        dt = dt.replace(tzinfo=naive_tz)
    offset = dt.utcoffset()
    try:
        if offset is None or offset % timedelta(minutes=1):  # offsets with seconds (historic LMT): use UTC
            dt = dt.astimezone(UTC)
        # a fixed offset keeps the wall time; a named zone is frozen into its offset
        dt = dt.replace(tzinfo=timezone(dt.utcoffset() or timedelta(0)), microsecond=0)
    except OverflowError as exc:
        raise _Bad("out of range") from exc
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise _Bad("the year must have four digits")
    return dt.isoformat()


def _to_datetime(value: Any, naive_tz: tzinfo) -> str:
    if isinstance(value, datetime):
        return _format_datetime(value, naive_tz)
    if isinstance(value, date):
        return _format_datetime(datetime(value.year, value.month, value.day), naive_tz)
    if not isinstance(value, str):
        raise _Bad(f"a {type(value).__name__} is not a date and time")
    text = value.strip()
    if len(text) > 64:
        raise _Bad("too long for a date and time")
    m = _ISO_DT_RE.fullmatch(text)
    if m:
        return _format_datetime(_parse_datetime_match(m, iso=True, naive_tz=naive_tz), naive_tz)
    m = _DMY_DT_RE.fullmatch(text)
    if m:
        return _format_datetime(_parse_datetime_match(m, iso=False, naive_tz=naive_tz), naive_tz)
    m = _ISO_DATE_RE.fullmatch(text)  # 2024/02/29 (date only, other separators)
    if m:
        y, _, mo, d = m.groups()
        day = _make_date(y, mo, d)
        return _format_datetime(datetime(day.year, day.month, day.day), naive_tz)
    raise _Bad("")


_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _to_email(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad("not text")
    text = value.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:].strip()
    if len(text) > 254 or text.count("@") != 1:
        raise _Bad("")
    local, domain = text.split("@")
    if not local or len(local) > 64 or not _LOCAL_RE.fullmatch(local):
        raise _Bad("the part before @ is not valid")
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2:
        raise _Bad("the domain has no dot")
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            raise _Bad("the domain is not valid")
        if not all(c.isalnum() or c == "-" for c in label):
            raise _Bad("the domain is not valid")
    tld = labels[-1]
    if len(tld) < 2 or tld.isdigit():
        raise _Bad("the domain is not valid")
    return f"{local}@{domain}"


_GENDER = {
    "M": ("m", "male", "man", "men", "mr", "mr.", "mister", "heer", "dhr", "dhr.", "de heer", "mannelijk"),
    "F": ("f", "female", "woman", "women", "v", "vrouw", "vrouwelijk", "w", "mrs", "mrs.", "ms", "ms.", "miss",
          "mevrouw", "mevr", "mevr.", "mw", "mw.", "fem", "mevrouw."),
    None: ("u", "unknown", "onbekend", "x", "o", "other", "anders", "none", "n/a", "na", "-", "?", "unspecified",
           "neutral", "neutraal", "divers"),
}
_GENDER_LOOKUP = {word: code for code, words in _GENDER.items() for word in words}


def _to_gender(value: Any) -> str | None:
    if not isinstance(value, str):
        raise _Bad("not text")
    key = " ".join(value.strip().lower().split())
    if key not in _GENDER_LOOKUP:
        raise _Bad("")
    return _GENDER_LOOKUP[key]


_PHONE_NOISE = re.compile(r"[\s\-./]|[()]")


def _to_mobnr(value: Any) -> str:
    if isinstance(value, bool):
        raise _Bad("not a phone number")
    if isinstance(value, int):
        text = str(value) if 0 <= value < 10**20 else ""
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise _Bad("not a phone number")
    if len(text) > 40:
        raise _Bad("too long for a phone number")
    text = text.replace("(0)", "") if text.startswith("+") else text  # +31 (0)6 ...: the 0 is not dialled
    text = _PHONE_NOISE.sub("", text)
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    if not digits.isascii() or not digits.isdigit():
        raise _Bad("only digits, with an optional leading +")
    if not 6 <= len(digits) <= 15:
        raise _Bad("a phone number has 6 to 15 digits")
    return ("+" if plus else "") + digits


_POSTCODE_RE = re.compile(r"[A-Z0-9](?:[A-Z0-9 -]*[A-Z0-9])?")


def _to_postcode(value: Any) -> str:
    if isinstance(value, bool):
        raise _Bad("not a postcode")
    if isinstance(value, int) and value >= 0:
        value = str(value)
    if not isinstance(value, str):
        raise _Bad("not a postcode")
    text = " ".join(value.strip().upper().split())
    if not 2 <= len(text) <= 10 or not text.isascii() or not _POSTCODE_RE.fullmatch(text):
        raise _Bad("")
    return text


_TRUE = {"true", "yes", "y", "ja", "j", "1", "on", "waar", "t"}
_FALSE = {"false", "no", "n", "nee", "0", "off", "onwaar", "f"}


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        key = value.strip().lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
    raise _Bad("")


def _to_set(field: ContactField, value: Any) -> list[str] | None:
    options = field.options
    valid = ", ".join(f"{o.name} ({o.value})" for o in options[:30]) + (", …" if len(options) > 30 else "")
    if not options:
        raise _Bad("the field has no options to choose from")
    by_value = {o.value: o for o in options}
    by_name: dict[str, list] = {}
    for o in options:
        by_name.setdefault(o.name.strip().lower(), []).append(o)

    def match(token: str):
        token = token.strip()
        if token in by_value:
            return by_value[token]
        found = by_name.get(token.lower(), [])
        if len(found) == 1:
            return found[0]
        return None

    if isinstance(value, str):
        text = value.strip()
        whole = match(text)
        if whole is not None:
            tokens = [text]
        else:
            tokens = text.split(";") if ";" in text else text.split(",")
    elif isinstance(value, list | tuple | set | frozenset):
        tokens = []
        for item in value:
            if item is None:
                continue
            if isinstance(item, list | tuple | dict | set | frozenset):
                raise _Bad("a list of options may not contain lists")
            tokens.append(_text(item))
    else:
        tokens = [_text(value)]
    chosen: set[str] = set()
    for token in tokens:
        if not token.strip():
            continue
        option = match(token)
        if option is None:
            raise _Bad(f"'{token.strip()[:60]}' is not an option; valid options: {valid}")
        chosen.add(option.value)
    if not chosen:
        return None
    return [o.value for o in options if o.value in chosen]


# ---------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return isinstance(value, list | tuple) and len(value) == 0


def coerce_value(field: ContactField, value: Any, *, naive_tz: tzinfo = UTC) -> Any:
    """Convert a maker's ``value`` to what the platform stores for ``field`` (see the module docstring).

    Returns None for a blank value (clear the field). Raises a 400 ActionError (code INVALID_FIELD_VALUE)
    with ``ext`` ``field``, ``value``, ``expected`` when the value cannot be converted. Idempotent:
    ``coerce_value(f, coerce_value(f, x)) == coerce_value(f, x)``.
    """
    ftype = _TYPES.get((field.type or "string").lower(), "string")
    if _blank(value):
        return None
    try:
        if ftype == "set":
            return _to_set(field, value)
        if isinstance(value, dict | list | tuple | set | frozenset):
            raise _Bad("a list or object is not a single value")
        if ftype == "int":
            return _to_int(value)
        if ftype == "money":
            return _to_money(value)
        if ftype == "date":
            return _to_date(value)
        if ftype == "birthdate":
            return _to_birthdate(value)
        if ftype == "dateTime":
            return _to_datetime(value, naive_tz)
        if ftype == "email":
            return _to_email(value)
        if ftype == "gender":
            return _to_gender(value)
        if ftype == "mobNr":
            return _to_mobnr(value)
        if ftype == "postcode":
            return _to_postcode(value)
        if ftype == "boolean":
            return _to_boolean(value)
        return _to_string(value) or None
    except _Bad as bad:
        raise _error(field, ftype, value, bad.reason) from None
    except (ValueError, ArithmeticError, OverflowError) as exc:  # defensive: never a 500 for odd input
        raise _error(field, ftype, value, "") from exc


def _norm_label(text: str) -> str:
    return " ".join(text.strip().lower().split())


def resolve_field(fields: Iterable[ContactField], name: str) -> ContactField:
    """The field ``name`` refers to: internal name (exact, then case-insensitive), then display name.

    Several display-name (or case-insensitive internal-name) matches -> 400 AMBIGUOUS_FIELD with ext
    ``candidates`` [{name, displayName}]; no match -> 400 UNKNOWN_FIELD with ext ``suggestions`` (close names).
    The ``field`` member of the problem is the name as given.
    """
    fields = list(fields)
    given = name.strip() if isinstance(name, str) else ""
    if not given:
        raise invalid("field", "Give the contact field's internal name or display name.", code=CODE_UNKNOWN)
    for f in fields:
        if f.name == given:
            return f
    key = _norm_label(given)
    for attr in ("name", "display_name"):
        matches = [f for f in fields if _norm_label(getattr(f, attr) or "") == key]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            candidates = [{"name": f.name, "displayName": f.display_name} for f in matches]
            listed = ", ".join(f"{c['name']} ({c['displayName']})" for c in candidates)
            raise invalid(
                given,
                f"Field '{given}' matches several contact fields: {listed}. Use the exact internal name.",
                code=CODE_AMBIGUOUS,
                candidates=candidates,
            )
    labels: dict[str, str] = {}
    for f in fields:
        labels.setdefault(f.name.lower(), f.name)
        if f.display_name:
            labels.setdefault(_norm_label(f.display_name), f.name)
    close = difflib.get_close_matches(key, list(labels), n=5, cutoff=0.6)
    suggestions = list(dict.fromkeys(labels[c] for c in close))
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    raise invalid(
        given,
        f"Contact field '{given[:80]}' does not exist.{hint} ListContactFields shows every field.",
        code=CODE_UNKNOWN,
        suggestions=suggestions,
    )


def coerce_properties(
    fields: Iterable[ContactField], values: Mapping[str, Any], *, naive_tz: tzinfo = UTC,
    allow_read_only: bool = False,
) -> dict[str, Any]:
    """Resolve and coerce a ``{name or display name: value}`` map to ``{internal name: stored value}``.

    Blank values become None (clear). Two entries for the same field and read-only fields are 400s.
    """
    fields = list(fields)
    out: dict[str, Any] = {}
    for given, value in values.items():
        f = resolve_field(fields, given)
        if f.read_only and not allow_read_only:
            raise invalid(f.name, f"Field '{f.name}' is read-only and cannot be set.", code=CODE_READ_ONLY)
        if f.name in out:
            raise invalid(f.name, f"Field '{f.name}' is given more than once.", code="DUPLICATE_FIELD")
        out[f.name] = coerce_value(f, value, naive_tz=naive_tz)
    return out


def describe_formats(naive_tz_name: str = "UTC") -> str:
    """A short description of the accepted formats per field type (for operation descriptions).

    ``naive_tz_name``: how a date-time without an offset is read (match the ``naive_tz`` given to coerce_value).
    """
    return (
        "Values are converted to the field's type. int: a whole number (42). "
        "money: 12.50, 12,50 or 1.234,56; stored with two decimals. "
        "date and birthdate: 2024-02-29 or day first 29-02-2024, 29/02/2024, 29.02.2024. "
        "dateTime: ISO 8601 such as 2024-02-29T13:45:00+01:00, or 29-02-2024 13:45; "
        f"without an offset the time is {naive_tz_name}. "
        "email: name@example.com. gender: M or F (male/female, man/vrouw). "
        "mobNr: +31612345678 (spaces and dashes are removed). postcode: 1234 AB. "
        "boolean: true/false, yes/no, ja/nee, 1/0. "
        "set: option names or values as a list or separated by ; or a comma. "
        "An empty value clears the field."
    )
