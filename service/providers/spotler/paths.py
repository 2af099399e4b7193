"""Configurable wire formats for the Spotler calls that the 2022 vendor description does not confirm.

The help centre says these calls exist (automation list and stop, tags, scores, automation fields) but not
their exact paths or bodies (reference §10). Each one is a *route* (``"METHOD path"``, path relative to the
base URL, ``{placeholders}`` percent-encoded into it) plus, where it sends a body, a *body template*: JSON
text in which a string that is exactly ``"{name}"`` is replaced by the value itself (a list, a number, ...;
the key is dropped when the value is None) and ``{name}`` inside a longer string is replaced by its text.

    route  "POST contact/{external_id}/tag"
    body   '{"tags": "{tags}", "score": "{score}"}'
    render(external_id="c 1", tags=["vip"], score=None)
        -> ("POST", "contact/c%201/tag", {"tags": ["vip"]})

An empty route disables the call (the provider then reports the operation as unsupported, or for the
audience-membership read falls back as documented in docs/spotler-api-coverage.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from service.providers.errors import ConfigValueError

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


class WireFormatError(ConfigValueError):
    """A route or body template in SpotlerConfig is malformed (raised at startup); ``field`` names it."""


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    body: Any = None  # parsed template, or None for no body
    has_body: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.path)

    def render(self, **values: Any) -> tuple[str, str, Any]:
        """``(method, path, json_body_or_None)`` with the placeholders filled in."""
        path = _PLACEHOLDER.sub(lambda m: quote(str(values[m.group(1)]), safe=""), self.path)
        body = _fill(self.body, values) if self.has_body else None
        return self.method, path, body


def _fill(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole:
            return values.get(whole.group(1))
        return _PLACEHOLDER.sub(lambda m: "" if values.get(m.group(1)) is None else str(values[m.group(1)]), node)
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            filled = _fill(v, values)
            if filled is not None:
                out[k] = filled
        return out
    if isinstance(node, list):
        return [x for x in (_fill(v, values) for v in node) if x is not None]
    return node


def _placeholders(node: Any) -> set[str]:
    if isinstance(node, str):
        return set(_PLACEHOLDER.findall(node))
    if isinstance(node, dict):
        return set().union(*(_placeholders(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_placeholders(v) for v in node)) if node else set()
    return set()


def _placeholder_words(allowed: set[str]) -> str:
    return ", ".join("{%s}" % p for p in sorted(allowed)) or "none"


def parse_route(name: str, route: str, body: str | None, allowed: set[str], body_name: str | None = None) -> Route:
    """Validate one configured route (+ body template); ``allowed`` are the placeholders it may use.
    ``name`` / ``body_name`` are the config fields, named by the WireFormatError."""
    body_name = body_name or name.replace("route_", "body_", 1)
    route = (route or "").strip()
    if not route:
        return Route(name=name, method="", path="")
    parts = route.split(None, 1)
    route_allowed = (f"'METHOD path' (METHOD: {', '.join(sorted(_METHODS))}; placeholders in the path: "
                     f"{_placeholder_words(allowed)}), or empty to disable the call")
    if len(parts) != 2 or parts[0].upper() not in _METHODS:
        raise WireFormatError(name, route_allowed)
    method, path = parts[0].upper(), parts[1].strip().lstrip("/")
    if set(_PLACEHOLDER.findall(path)) - allowed:
        raise WireFormatError(name, route_allowed)
    parsed_body: Any = None
    has_body = bool(body and body.strip())
    if has_body:
        body_allowed = (f"a JSON template (placeholders: {_placeholder_words(allowed)}; quote JSON in a .env "
                        "file), or empty for no body")
        try:
            parsed_body = json.loads(body)
        except ValueError:
            raise WireFormatError(body_name, body_allowed) from None
        if _placeholders(parsed_body) - allowed:
            raise WireFormatError(body_name, body_allowed)
    return Route(name=name, method=method, path=path, body=parsed_body, has_body=has_body)


# name -> (route field, body field or None, allowed placeholders)
ROUTES: dict[str, tuple[str, str | None, set[str]]] = {
    "automation_list": ("route_automation_list", None, set()),
    "automation_stop_run": ("route_automation_stop_run", "body_automation_stop_run", {"automation_contact_id"}),
    "automation_stop_contact": (
        "route_automation_stop_contact", "body_automation_stop_contact", {"trigger_code", "external_id"},
    ),
    "audience_list": ("route_audience_list", None, set()),
    "audience_members": ("route_audience_members", None, {"audience_id"}),
    "tag_list": ("route_tag_list", None, set()),
    "tag_add": ("route_tag_add", "body_tag_add", {"external_id", "tags", "score"}),
    "tag_remove": ("route_tag_remove", "body_tag_remove", {"external_id", "tags"}),
    "score": ("route_score", "body_score", {"external_id", "tag", "score", "mode"}),
}


def build_routes(config: Any) -> dict[str, Route]:
    """Parse every assumed route of a SpotlerConfig; raises WireFormatError naming the bad field."""
    out = {}
    for name, (route_field, body_field, allowed) in ROUTES.items():
        body = getattr(config, body_field) if body_field else None
        out[name] = parse_route(route_field, getattr(config, route_field), body, allowed, body_field)
    return out
