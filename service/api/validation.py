"""Request validation that never answers 500 and never echoes (or logs) a bad value at full length.

Connexion's own validators are replaced (``validator_map`` in create_app) by these subclasses:

* the JSON body is parsed without the failure modes of ``json.loads`` on hostile input: nesting deeper than
  :data:`MAX_JSON_DEPTH` (a RecursionError), integer literals of thousands of digits (a ValueError), ``NaN`` and
  ``Infinity`` (not JSON; PostgreSQL refuses them), NUL characters (PostgreSQL refuses them) and lone surrogates
  (not UTF-8): each is a 400 problem naming the field (``contacts[1].email``);
* schema errors name the field and show at most the first characters of the value (e-mail addresses masked);
  nothing is logged with the value (Connexion logs every body validation error with the value at INFO);
* the ``Idempotency-Key`` header answers the one ``INVALID_IDEMPOTENCY_KEY`` code, identifiers that break the
  identifier rule ``INVALID_IDENTIFIER``.
"""

from __future__ import annotations

import json
import math
import typing as t

from connexion.exceptions import BadRequestProblem, ExtraParameterProblem, ProblemException
from connexion.json_schema import Draft4RequestValidator, format_error_with_path
from connexion.validators import JSONRequestBodyValidator, ParameterValidator
from connexion.datastructures import MediaTypeDict
from connexion.validators import VALIDATOR_MAP
from jsonschema import Draft4Validator, ValidationError

from service import privacy
from service.actions.idempotency import IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE, INVALID_IDEMPOTENCY_KEY
from service.actions.resolution import IDENTIFIER_PATTERN, IDENTIFIER_RULE

#: deepest JSON nesting accepted (our bodies need 4)
MAX_JSON_DEPTH = 32
#: longest integer literal accepted (a score is 10 digits; a platform id may be 20)
MAX_INT_DIGITS = 30


class InputProblem(BadRequestProblem):
    """A 400 with our stable ``code`` and the ``field`` it is about."""

    def __init__(self, detail: str, *, code: str = "VALIDATION_FAILED", field: str | None = None) -> None:
        ext: dict[str, t.Any] = {"code": code}
        if field:
            ext["field"] = field
        ProblemException.__init__(self, status=400, title="Bad Request", detail=detail, ext=ext)


class _Bad:
    """A value the JSON parser met that no backend can store (reported with its field after parsing)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


def _constant(name: str) -> _Bad:
    return _Bad(f"the number {name}, which is not JSON (use a finite number)")


def _int(text: str) -> int | _Bad:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return _Bad(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _Bad("a number too large to represent")


def field_path(parts: t.Iterable[t.Any]) -> str:
    """``("contacts", 1, "email")`` -> ``contacts[1].email`` (as makers see it)."""
    out = ""
    for part in parts:
        if isinstance(part, int) or (isinstance(part, str) and part.isdigit() and out):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def check_json(doc: t.Any) -> None:
    """Raise InputProblem for the first value no backend can store, naming its field (iterative: no
    recursion on deep input)."""
    stack: list[tuple[t.Any, tuple, int]] = [(doc, (), 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InputProblem(f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels at "
                               f"'{field_path(path[:8])}…'.", code="JSON_TOO_DEEP", field=field_path(path[:8]))
        if isinstance(value, _Bad):
            name = field_path(path) or "body"
            raise InputProblem(f"'{name}' holds {value.what}.", code="INVALID_NUMBER", field=name)
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, path + (key,))
                stack.append((item, path + (key,), depth + 1))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                stack.append((item, path + (i,), depth + 1))


def _check_text(text: str, path: tuple) -> None:
    if "\x00" in text:
        name = field_path(path) or "body"
        raise InputProblem(f"'{name}' contains a NUL character (\\u0000), which cannot be stored.",
                           code="INVALID_CHARACTER", field=name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        name = field_path(path) or "body"
        raise InputProblem(f"'{name}' contains an invalid character (a lone UTF-16 surrogate such as \\ud800).",
                           code="INVALID_CHARACTER", field=name) from None


def _pattern_problem(pattern: str, name: str, value: t.Any) -> InputProblem | None:
    if pattern == IDENTIFIER_PATTERN:
        return InputProblem(f"'{_shown(value)}' is not a valid {name}: an id has {IDENTIFIER_RULE}.",
                            code="INVALID_IDENTIFIER", field=name)
    if pattern == IDEMPOTENCY_KEY_PATTERN:
        return InputProblem(IDEMPOTENCY_KEY_RULE, code=INVALID_IDEMPOTENCY_KEY, field=name)
    return None


def _shown(value: t.Any, keep: int = 24) -> str:
    text = privacy.mask_emails_in_text(str(value)) if isinstance(value, str) else str(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text[:keep])
    return text + ("…" if isinstance(value, str) and len(value) > keep else "")


def schema_problem(exc: ValidationError, name: str, *, idempotency_header: bool = False) -> InputProblem:
    """A short, value-safe problem for a JSON-schema error on field ``name``."""
    if idempotency_header:
        return InputProblem(IDEMPOTENCY_KEY_RULE, code=INVALID_IDEMPOTENCY_KEY, field=name)
    kind = exc.validator
    if kind == "pattern":
        found = _pattern_problem(str(exc.validator_value), name, exc.instance)
        if found is not None:
            return found
        return InputProblem(f"'{_shown(exc.instance)}' in '{name}' does not have the expected form.", field=name)
    if kind == "maxLength":
        return InputProblem(f"'{name}' is longer than {exc.validator_value} characters ('{_shown(exc.instance)}').",
                            code="VALUE_TOO_LONG", field=name)
    if kind in ("maxItems", "maxProperties"):
        return InputProblem(f"'{name}' has more than {exc.validator_value} items.", code="TOO_MANY_ITEMS",
                            field=name)
    message = privacy.shorten_quoted(privacy.mask_emails_in_text(exc.message), keep=16)
    suffix = f" - '{name}'" if name and name != "body" else ""
    return InputProblem(f"{message}{suffix}", field=name if name != "body" else None)


_VALIDATORS: dict[tuple[int, type], tuple[t.Any, t.Any]] = {}


def _built(schema: dict, cls: type):
    """The jsonschema validator of ``schema`` (an object of the loaded spec, which lives as long as the app),
    built once: building one per request (resolver, format checker, keyword table) cost more than the
    validation itself. The schema is kept with its validator, so its id is never reused for another."""
    key = (id(schema), cls)
    hit = _VALIDATORS.get(key)
    if hit is None or hit[0] is not schema:
        hit = _VALIDATORS[key] = (schema, cls(schema, format_checker=Draft4Validator.FORMAT_CHECKER))
    return hit[1]


class SafeJSONBodyValidator(JSONRequestBodyValidator):
    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope: t.Any) -> t.Any:
        raw = b"".join([message async for message in stream])
        try:
            text = raw.decode(self._encoding)
        except (UnicodeDecodeError, LookupError):
            raise InputProblem("The request body is not valid UTF-8 JSON.", code="INVALID_JSON") from None
        if not text:
            return None
        try:
            doc = json.loads(text, parse_constant=_constant, parse_int=_int, parse_float=_float)
        except RecursionError:
            raise InputProblem(f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels.",
                               code="JSON_TOO_DEEP") from None
        except ValueError as exc:  # JSONDecodeError: says where, never what
            pos = getattr(exc, "pos", None)
            where = f" at character {pos}" if isinstance(pos, int) else ""
            reason = getattr(exc, "msg", None) or "malformed"
            raise InputProblem(f"The request body is not valid JSON ({reason}{where}).",
                               code="INVALID_JSON") from None
        check_json(doc)
        return doc

    def _validate(self, body: t.Any) -> dict | None:
        if not self._nullable and body is None:
            raise InputProblem("The request body must not be empty.", code="BODY_REQUIRED")
        try:
            return self._validator.validate(body)
        except ValidationError as exc:
            name = field_path(exc.path) or "body"
            problem = schema_problem(exc, name)
            if problem.ext.get("field") is None and format_error_with_path(exc):
                problem.ext["field"] = name
            raise problem from None

    @property
    def _validator(self):
        # Connexion builds a body validator per request; the jsonschema validator is built once per schema
        return _built(self._schema, Draft4RequestValidator)


class SafeParameterValidator(ParameterValidator):
    """Query, path and header parameters: the same short, value-safe problems, naming the parameter."""

    @staticmethod
    def _problem(value: t.Any, param: dict, name: str) -> InputProblem | None:
        if value is None:
            if param.get("required"):
                return InputProblem(f"The {param.get('in')} parameter '{name}' is required.", field=name)
            return None
        schema = param.get("schema", param)
        try:
            _built(schema, Draft4Validator).validate(value)
        except ValidationError as exc:
            return schema_problem(exc, name, idempotency_header=name.lower() == "idempotency-key")
        return None

    def validate_request(self, request) -> None:
        if self.strict_validation:
            extra = self.validate_query_parameter_list(request, security_params=self.security_query_params)
            if extra:
                raise ExtraParameterProblem(param_type="query", extra_params=extra)
        getters = {
            "query": lambda p: request.query_params.get(p["name"]),
            "path": lambda p: request.path_params.get(p["name"].replace("-", "_")),
            "header": lambda p: request.headers.get(p["name"]),
            "cookie": lambda p: request.cookies.get(p["name"]),
        }
        for where, get in getters.items():
            for param in self.parameters.get(where, []):
                value = get(param)
                if isinstance(value, str):
                    _check_text(value, (param["name"],))
                problem = self._problem(value, param, param["name"])
                if problem is not None:
                    raise problem


def validator_map() -> dict:
    """Connexion's validator map with ours for JSON bodies and parameters (pass to ``add_api``)."""
    body = MediaTypeDict({**dict(VALIDATOR_MAP["body"]), "*/*json": SafeJSONBodyValidator})
    return {"parameter": SafeParameterValidator, "body": body}
