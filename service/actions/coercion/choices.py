"""string, boolean and set: text, yes/no in English and Dutch, and options chosen by name or value."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from service.actions.coercion.common import MAX_STRING_LENGTH, BadValue, as_text
from service.providers.base import ContactField


def to_string(value: Any) -> str:
    text = as_text(value)
    if len(text) > MAX_STRING_LENGTH:
        raise BadValue(f"the text is {len(text)} characters long")
    if "\x00" in text:
        raise BadValue("the text contains a NUL character")
    return text


_TRUE = {"true", "yes", "y", "ja", "j", "1", "on", "waar", "t"}
_FALSE = {"false", "no", "n", "nee", "0", "off", "onwaar", "f"}


def to_boolean(value: Any) -> bool:
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
    raise BadValue("")


def to_set(field: ContactField, value: Any) -> list[str] | None:
    options = field.options
    valid = ", ".join(f"{o.name} ({o.value})" for o in options[:30]) + (", …" if len(options) > 30 else "")
    if not options:
        raise BadValue("the field has no options to choose from")
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
                raise BadValue("a list of options may not contain lists")
            tokens.append(as_text(item))
    else:
        tokens = [as_text(value)]
    chosen: set[str] = set()
    for token in tokens:
        if not token.strip():
            continue
        option = match(token)
        if option is None:
            raise BadValue(f"'{token.strip()[:60]}' is not an option; valid options: {valid}")
        chosen.add(option.value)
    if not chosen:
        return None
    return [o.value for o in options if o.value in chosen]
