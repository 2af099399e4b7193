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

The parts: :mod:`.fields` finds the field a name means; :mod:`.numbers`, :mod:`.dates`, :mod:`.personal` and
:mod:`.choices` convert by type (they raise :class:`~.common.BadValue`); :mod:`.problems` turns that into the
maker's 400.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, tzinfo
from typing import Any

from service.actions.coercion.choices import to_boolean, to_set, to_string
from service.actions.coercion.common import CODE_AMBIGUOUS, CODE_INVALID_VALUE, CODE_READ_ONLY, CODE_UNKNOWN, BadValue
from service.actions.coercion.dates import to_birthdate, to_date, to_datetime
from service.actions.coercion.fields import resolve_field
from service.actions.coercion.numbers import to_int, to_money
from service.actions.coercion.personal import to_email, to_gender, to_mobnr, to_postcode
from service.actions.coercion.problems import value_problem
from service.actions.problems import invalid
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

_TYPES = {t.lower(): t for t in (
    "string", "int", "money", "date", "dateTime", "birthdate", "email", "gender", "mobNr", "postcode", "set",
    "boolean",
)}


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
            return to_set(field, value)
        if isinstance(value, dict | list | tuple | set | frozenset):
            raise BadValue("a list or object is not a single value")
        if ftype == "int":
            return to_int(value)
        if ftype == "money":
            return to_money(value)
        if ftype == "date":
            return to_date(value)
        if ftype == "birthdate":
            return to_birthdate(value)
        if ftype == "dateTime":
            return to_datetime(value, naive_tz)
        if ftype == "email":
            return to_email(value)
        if ftype == "gender":
            return to_gender(value)
        if ftype == "mobNr":
            return to_mobnr(value)
        if ftype == "postcode":
            return to_postcode(value)
        if ftype == "boolean":
            return to_boolean(value)
        return to_string(value) or None
    except BadValue as bad:
        raise value_problem(field, ftype, value, bad.reason) from None
    except (ValueError, ArithmeticError, OverflowError) as exc:  # defensive: never a 500 for odd input
        raise value_problem(field, ftype, value, "") from exc


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
