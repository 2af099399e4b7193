"""The 400 problem of a value that cannot be converted: it names the field, the value (masked for personal data)
and the expected format."""

from __future__ import annotations

from typing import Any

from service.actions.coercion.common import CODE_INVALID_VALUE, MAX_STRING_LENGTH
from service.actions.problems import ActionError, invalid
from service.providers.base import ContactField

_PERSONAL_TYPES = {"email", "mobNr"}


def _shown_value(ftype: str, value: Any) -> str:
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # e.g. an int with more digits than Python will print
        text = f"<{type(value).__name__}>"
    if ftype in _PERSONAL_TYPES:
        text = text.strip()
        return (text[:1] + "***") if text else "***"
    return text if len(text) <= 80 else text[:79] + "…"


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


def value_problem(field: ContactField, ftype: str, value: Any, reason: str = "", expected: str | None = None) -> ActionError:
    expected = expected or _EXPECTED[ftype]
    shown = _shown_value(ftype, value)
    detail = f"Field '{field.name}' cannot take '{shown}'"
    detail += f": {reason}" if reason else ""
    detail += f". Expected {expected}."
    return invalid(field.name, detail, code=CODE_INVALID_VALUE, value=shown, expected=expected, fieldType=ftype)
