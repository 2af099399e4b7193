"""Automation and campaign personalisation fields: the ``fieldsText`` syntax, typed inputs and the dynamic schema.

An automation (or campaign trigger) accepts named fields that personalise its messages
(``[automationField:invoiceEmail]`` in Spotler). Each field has a type: ``STRING``, ``URL`` or
``PRODUCTLIST`` (a list of product references). A caller gives values in two ways, which may be combined:

* ``fields``: a typed JSON object ``{name: value}`` (what Power Automate sends for the inputs generated from
  :func:`dynamic_schema`, or what a REST client sends). A value is a string, a number or boolean (converted
  to text) or, for a PRODUCTLIST, an array of strings.
* ``fieldsText``: the incumbent's text syntax, for Power Apps and for makers who build the value in an
  expression. See :func:`parse_fields_text`.

Rules of the text syntax (``fieldsText``)
-----------------------------------------
* Pairs ``name=value`` are separated by ``;`` or by line breaks (``\\n``, ``\\r\\n``, ``\\r``). Blank
  segments are ignored.
* Whitespace around names and values is trimmed. The value is everything after the *first* ``=``, so a value
  may contain ``=`` (``url=https://x.test/?a=1&b=2``). A name may not.
* A blank value (``invoiceCode=``) means "do not send this field", exactly like leaving the pair out.
* ``{a,b,c}`` is a list (for PRODUCTLIST fields). Items are trimmed; empty items (``{a,,b}``, ``{a,b,}``) are
  dropped, because an empty product reference means nothing and such gaps usually come from joining an
  array that held a blank. A list with no non-empty item (``{}``, ``{ , }``) is blank: the field is not sent.
  Braces must balance: a value that starts with ``{`` must end with ``}`` and vice versa, and a list item may
  not contain ``{`` or ``}``. Braces elsewhere inside a plain value are kept as text.
* The type hints the incumbent pre-fills (``<STRING>``, ``<URL>``, ``<PRODUCTLIST>``,
  ``{<STRING>,<STRING>,etc}``) are rejected with a message telling the maker to replace or remove them.
* A segment without ``=`` and a pair without a name (``=value``) are rejected; silently dropping data the maker
  typed would hide a mistake.
* A name given twice with a non-blank value is rejected (``DUPLICATE_FIELD``): the text does not say which one
  was meant. Names are case-sensitive on the platform; when the definitions are known, a name that differs
  only in case from exactly one defined field is accepted for that field.
* The syntax cannot carry ``;`` or line breaks inside a value, nor ``,``/braces inside a list item. There is
  no escape: use the typed ``fields`` input for such values (it can carry anything).

Combining (:func:`build_field_values`)
--------------------------------------
Typed values win over ``fieldsText`` values for the same field. A blank typed value (``None``, ``""``,
``[]``) counts as "not given", so the text value for that field still applies. A blank value is never
checked against the definitions (an unknown name with a blank value is ignored, like a blank known one).

For a PRODUCTLIST a plain (non-list) value is split on commas: ``crosssell=123,567`` and
``crosssell={123,567}`` mean the same, and a typed ``"123"`` becomes ``["123"]``. Product references
therefore cannot contain a comma unless they are sent as a typed array.

Errors are 400 :class:`~service.actions.problems.ActionError` problems whose ``field`` member names the
automation field (or ``fieldsText`` when no field name can be told), with the codes below.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from service.actions.problems import ActionError, invalid
from service.providers.base import AutomationField, FieldValue

__all__ = [
    "FIELDS_TEXT_PARAM",
    "FIELD_TYPES",
    "build_field_values",
    "dynamic_schema",
    "fields_text_template",
    "parse_fields_text",
    "render_fields_text",
]

FIELD_TYPES = ("STRING", "URL", "PRODUCTLIST")
#: the request property that carries the text syntax (named in problems when no field name can be told)
FIELDS_TEXT_PARAM = "fieldsText"
FIELDS_PARAM = "fields"

# Stable problem codes
CODE_SYNTAX = "FIELDS_TEXT_INVALID"
CODE_TYPE_HINT = "TYPE_HINT_NOT_REPLACED"
CODE_DUPLICATE = "DUPLICATE_FIELD"
CODE_UNKNOWN = "UNKNOWN_AUTOMATION_FIELD"
CODE_INVALID_VALUE = "INVALID_FIELD_VALUE"

_SEPARATORS = re.compile(r"\r\n|[;\r\n]")
_TYPE_HINT = re.compile(r"<\s*(string|url|productlist)\s*>", re.IGNORECASE)
_ETC = {"etc", "etc.", "...", "…"}
_MAX_SHOWN = 60


def _show(text: str) -> str:
    text = str(text)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _hint_in(value: str | list[str]) -> str | None:
    """The type hint a value still holds (e.g. ``<STRING>``), or None."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        m = _TYPE_HINT.fullmatch(item.strip())
        if m:
            return f"<{m.group(1).upper()}>"
    return None


def _hint_error(name: str, hint: str, parameter: str) -> ActionError:
    return invalid(
        name,
        f"Field '{name}' still holds the type hint {hint}; replace it with the value to send, or remove the field.",
        code=CODE_TYPE_HINT,
        parameter=parameter,
        hint=hint,
    )


# ---------------------------------------------------------------------------------------------------------
# Text syntax
# ---------------------------------------------------------------------------------------------------------


def _parse_list(name: str, raw: str) -> list[str]:
    inner = raw[1:-1]
    if "{" in inner or "}" in inner:
        raise invalid(
            name,
            f"Field '{name}' has a list with nested or misplaced braces: {_show(raw)}. "
            "Write a list as {item1,item2,item3}.",
            code=CODE_SYNTAX,
            parameter=FIELDS_TEXT_PARAM,
        )
    items = [item.strip() for item in inner.split(",")]
    if any(_TYPE_HINT.fullmatch(item) for item in items):
        hint = _hint_in(items) or "<PRODUCTLIST>"
        raise _hint_error(name, hint, FIELDS_TEXT_PARAM)
    return [item for item in items if item]


def _parse_value(name: str, raw: str) -> str | list[str]:
    """Parse one (trimmed, non-empty) value; returns "" or [] when it is blank."""
    starts, ends = raw.startswith("{"), raw.endswith("}")
    if starts and ends and len(raw) >= 2:
        return _parse_list(name, raw)
    if starts or ends:
        missing = "}" if starts else "{"
        raise invalid(
            name,
            f"Field '{name}' has unbalanced braces (missing '{missing}') in {_show(raw)}. "
            "Write a list as {item1,item2,item3}; note that ';' always separates fields.",
            code=CODE_SYNTAX,
            parameter=FIELDS_TEXT_PARAM,
        )
    hint = _hint_in(raw)
    if hint:
        raise _hint_error(name, hint, FIELDS_TEXT_PARAM)
    return raw


def parse_fields_text(text: str | None) -> list[tuple[str, str | list[str]]]:
    """Parse the ``fieldsText`` syntax (see the module docstring) into ``[(name, value or [items])]``.

    Blank pairs are left out; the order is the order of the text. Raises a 400 ActionError on a syntax error,
    an unreplaced type hint or a duplicate name.
    """
    if text is None:
        return []
    if not isinstance(text, str):
        raise invalid(FIELDS_TEXT_PARAM, "fieldsText must be text such as 'name=value;other=value'.",
                      code=CODE_SYNTAX)
    result: list[tuple[str, str | list[str]]] = []
    seen: set[str] = set()
    for segment in _SEPARATORS.split(text):
        segment = segment.strip()
        if not segment:
            continue
        name, eq, raw_value = segment.partition("=")
        name = name.strip()
        if not eq:
            raise invalid(
                FIELDS_TEXT_PARAM,
                f"fieldsText part '{_show(segment)}' has no '='. Write each field as name=value, separated by "
                "';' or line breaks; leave a field out (or write name=) to send nothing for it.",
                code=CODE_SYNTAX,
                segment=_show(segment),
            )
        if not name:
            raise invalid(
                FIELDS_TEXT_PARAM,
                f"fieldsText part '{_show(segment)}' has a value but no field name before '='.",
                code=CODE_SYNTAX,
                segment=_show(segment),
            )
        raw_value = raw_value.strip()
        if not raw_value:
            continue  # blank: not sent
        value = _parse_value(name, raw_value)
        if not value:
            continue  # {} or { , }: blank list
        if name in seen:
            raise invalid(
                name,
                f"Field '{name}' appears more than once in fieldsText; keep one value for it.",
                code=CODE_DUPLICATE,
                parameter=FIELDS_TEXT_PARAM,
            )
        seen.add(name)
        result.append((name, value))
    return result


def _representable_atom(text: str, *, in_list: bool) -> bool:
    if not text or text != text.strip():
        return False
    if any(c in text for c in ";\r\n"):
        return False
    if _TYPE_HINT.fullmatch(text):
        return False
    if in_list:
        return not any(c in text for c in ",{}")
    return not (text.startswith("{") or text.endswith("}"))


def render_fields_text(fields: Mapping[str, str | list[str]], separator: str = ";") -> str:
    """The ``fieldsText`` for ``fields``: ``parse_fields_text(render_fields_text(x)) == list(x.items())``.

    ``separator`` is ``";"`` or ``"\\n"``. Raises ValueError for a name or value the syntax cannot carry
    (see the module docstring); use the typed ``fields`` input for those.
    """
    if separator not in (";", "\n", "\r\n"):
        raise ValueError("separator must be ';' or a line break")
    parts: list[str] = []
    for name, value in fields.items():
        if not isinstance(name, str) or not _representable_atom(name, in_list=False) or "=" in name:
            raise ValueError(f"field name {name!r} cannot be written in fieldsText")
        if isinstance(value, str):
            if not _representable_atom(value, in_list=False):
                raise ValueError(f"value of {name!r} cannot be written in fieldsText")
            parts.append(f"{name}={value}")
        else:
            items = list(value)
            if not items or not all(isinstance(i, str) and _representable_atom(i, in_list=True) for i in items):
                raise ValueError(f"list value of {name!r} cannot be written in fieldsText")
            parts.append(f"{name}={{{','.join(items)}}}")
    return separator.join(parts)


def fields_text_template(definitions: Iterable[AutomationField], separator: str = "\n") -> str:
    """The incumbent's pre-filled template (``invoiceEmail=<STRING>``, ``crosssell={<PRODUCTLIST>}``).

    Useful for showing makers what to fill in; parsing it unchanged fails with TYPE_HINT_NOT_REPLACED.
    """
    lines = []
    for d in _unique_definitions(definitions):
        hint = f"<{_norm_type(d.type)}>"
        lines.append(f"{d.name}={{{hint}}}" if _norm_type(d.type) == "PRODUCTLIST" else f"{d.name}={hint}")
    return separator.join(lines)


# ---------------------------------------------------------------------------------------------------------
# Combining typed inputs and text, checking against the automation's definitions
# ---------------------------------------------------------------------------------------------------------


def _norm_type(t: str | None) -> str:
    t = (t or "STRING").strip().upper()
    return t if t in FIELD_TYPES else "STRING"


def _unique_definitions(definitions: Iterable[AutomationField]) -> list[AutomationField]:
    seen: set[str] = set()
    out = []
    for d in definitions:
        if d.name not in seen:
            seen.add(d.name)
            out.append(d)
    return out


def _scalar_text(name: str, value: Any) -> str:
    """A typed scalar as text (Power Automate may send numbers and booleans for typed inputs)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) >= 10**100:
            raise invalid(name, f"Field '{name}' has a number too large to send.", code=CODE_INVALID_VALUE,
                          parameter=FIELDS_PARAM)
        return str(value)
    if isinstance(value, float | Decimal):
        finite = math.isfinite(value) if isinstance(value, float) else value.is_finite()
        if not finite:
            raise invalid(name, f"Field '{name}' has a number that is not finite.", code=CODE_INVALID_VALUE,
                          parameter=FIELDS_PARAM)
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
        if value.adjusted() > 100:
            raise invalid(name, f"Field '{name}' has a number too large to send.", code=CODE_INVALID_VALUE,
                          parameter=FIELDS_PARAM)
        return format(value, "f")
    raise invalid(
        name,
        f"Field '{name}' must be text, a number or (for a product list) an array of text; "
        f"got {type(value).__name__}.",
        code=CODE_INVALID_VALUE,
        parameter=FIELDS_PARAM,
    )


def _typed_value(name: str, value: Any) -> str | list[str]:
    """Normalise one typed input; "" / [] mean blank."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            if item is None:
                continue
            if isinstance(item, list | tuple | dict):
                raise invalid(name, f"Field '{name}' must be a flat list of text values.",
                              code=CODE_INVALID_VALUE, parameter=FIELDS_PARAM)
            text = _scalar_text(name, item)
            if text:
                items.append(text)
        hint = _hint_in(items)
        if hint:
            raise _hint_error(name, hint, FIELDS_PARAM)
        return items
    text = _scalar_text(name, value)
    hint = _hint_in(text)
    if hint:
        raise _hint_error(name, hint, FIELDS_PARAM)
    return text


class _Resolver:
    """Maps a given name to a definition: exact name first, then a unique case-insensitive match."""

    def __init__(self, definitions: list[AutomationField]) -> None:
        self.definitions = definitions
        self.by_name = {d.name: d for d in definitions}
        self.by_lower: dict[str, list[AutomationField]] = {}
        for d in definitions:
            self.by_lower.setdefault(d.name.lower(), []).append(d)

    def resolve(self, name: str, parameter: str) -> AutomationField:
        d = self.by_name.get(name)
        if d is not None:
            return d
        matches = self.by_lower.get(name.lower(), [])
        if len(matches) == 1:
            return matches[0]
        known = [x.name for x in self.definitions]
        if not known:
            detail = f"Field '{name}' is unknown: this automation takes no fields. Remove it."
        else:
            shown = ", ".join(known[:25]) + (", …" if len(known) > 25 else "")
            detail = f"Field '{name}' is unknown for this automation. Known fields: {shown}."
        raise invalid(name, detail, code=CODE_UNKNOWN, parameter=parameter, known=known)


def _is_absolute_http_url(text: str) -> bool:
    if not text or any(c.isspace() for c in text) or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return False
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https"):
        return False
    host = parts.hostname
    if not host:
        return False
    if ":" in host:  # IPv6 literal, already bracket-checked by urlsplit
        return True
    labels = host.rstrip(".").split(".")
    return all(label and not label.startswith("-") and not label.endswith("-")
               and all(c.isalnum() or c in "-_" for c in label) for label in labels)


def _check_type(d: AutomationField, value: str | list[str], parameter: str) -> FieldValue | None:
    ftype = _norm_type(d.type)
    if ftype == "PRODUCTLIST":
        items = value if isinstance(value, list) else [i.strip() for i in value.split(",")]
        items = [i for i in items if i]
        if not items:
            return None
        return FieldValue(name=d.name, type=ftype, values=tuple(items))
    if isinstance(value, list):
        raise invalid(
            d.name,
            f"Field '{d.name}' is a {ftype} field and takes one value, not a list.",
            code=CODE_INVALID_VALUE,
            parameter=parameter,
            expected="a single text value" if ftype == "STRING" else "an absolute http(s) URL",
        )
    if ftype == "URL" and not _is_absolute_http_url(value):
        raise invalid(
            d.name,
            f"Field '{d.name}' must be an absolute http or https URL such as https://example.com/page; "
            f"got '{_show(value)}'.",
            code=CODE_INVALID_VALUE,
            parameter=parameter,
            expected="an absolute http(s) URL",
        )
    return FieldValue(name=d.name, type=ftype, value=value)


def build_field_values(
    definitions: Iterable[AutomationField],
    typed: Mapping[str, Any] | None,
    text: str | None,
) -> list[FieldValue]:
    """Combine typed ``fields`` and ``fieldsText`` into checked FieldValues, in definition order.

    Typed values win over text values for the same field; blank values are not sent. Raises a 400
    ActionError naming the field for unknown names, wrong types, invalid URLs and text syntax errors.
    """
    defs = _unique_definitions(definitions)
    resolver = _Resolver(defs)
    chosen: dict[str, tuple[str | list[str], str]] = {}  # definition name -> (value, parameter)

    if typed is not None:
        if not isinstance(typed, Mapping):
            raise invalid(FIELDS_PARAM, "fields must be an object of field name to value.", code=CODE_INVALID_VALUE)
        for key, raw in typed.items():
            if not isinstance(key, str) or not key.strip():
                raise invalid(FIELDS_PARAM, "fields has an entry without a field name.", code=CODE_INVALID_VALUE)
            name = key.strip()
            value = _typed_value(name, raw)
            if not value:
                continue
            d = resolver.resolve(name, FIELDS_PARAM)
            if d.name in chosen:
                raise invalid(d.name, f"Field '{d.name}' is given more than once in fields.",
                              code=CODE_DUPLICATE, parameter=FIELDS_PARAM)
            chosen[d.name] = (value, FIELDS_PARAM)

    text_seen: set[str] = set()
    for name, value in parse_fields_text(text):
        d = resolver.resolve(name, FIELDS_TEXT_PARAM)
        if d.name in text_seen:
            raise invalid(d.name, f"Field '{d.name}' appears more than once in fieldsText; keep one value for it.",
                          code=CODE_DUPLICATE, parameter=FIELDS_TEXT_PARAM)
        text_seen.add(d.name)
        chosen.setdefault(d.name, (value, FIELDS_TEXT_PARAM))  # typed wins

    out: list[FieldValue] = []
    for d in defs:
        if d.name in chosen:
            value, parameter = chosen[d.name]
            fv = _check_type(d, value, parameter)
            if fv is not None:
                out.append(fv)
    return out


# ---------------------------------------------------------------------------------------------------------
# Dynamic schema for Power Automate
# ---------------------------------------------------------------------------------------------------------


def dynamic_schema(definitions: Iterable[AutomationField]) -> dict[str, Any]:
    """The JSON schema of an automation's fields, for ``x-ms-dynamic-schema`` / ``x-ms-dynamic-properties``.

    Returned as the response body itself (the schema object at the root), so the operation that serves it is
    referenced *without* ``value-path`` / ``itemValuePath`` (Power Platform then takes the response root as
    the schema; power-platform-connector.md §3). STRING -> ``string``, URL -> ``string`` + ``format: uri``,
    PRODUCTLIST -> ``array`` of ``string``. Every property has ``x-ms-summary`` and ``description``; no field
    is required (a blank field is simply not sent). Deterministic: same definitions, same schema.
    """
    properties: dict[str, Any] = {}
    for d in _unique_definitions(definitions):
        ftype = _norm_type(d.type)
        if ftype == "PRODUCTLIST":
            prop: dict[str, Any] = {
                "type": "array",
                "items": {"type": "string", "x-ms-summary": "Product reference",
                          "description": "One product reference (id or SKU) as known to the platform."},
                "x-ms-summary": d.name,
                "description": f"Product list for [automationField:{d.name}]: one product reference per item. "
                               "Leave empty to send nothing.",
            }
        elif ftype == "URL":
            prop = {
                "type": "string",
                "format": "uri",
                "x-ms-summary": d.name,
                "description": f"Absolute http(s) URL for [automationField:{d.name}]. Leave empty to send nothing.",
            }
        else:
            prop = {
                "type": "string",
                "x-ms-summary": d.name,
                "description": f"Text for [automationField:{d.name}]. Leave empty to send nothing.",
            }
        properties[d.name] = prop
    return {"type": "object", "properties": properties}
