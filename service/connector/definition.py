"""``apiDefinition.swagger.json`` and ``apiProperties.json`` built from the source spec."""

from __future__ import annotations

import copy
from typing import Any

from service.connector.spec import (
    _DATA_KEYS,
    _NAME_MAPS,
    API_KEY_PARAMETER,
    BRAND_COLOR,
    DEFAULT_HOST,
    HOST_PARAMETER,
    HTTP_METHODS,
    PUBLISHER,
    STACK_OWNER,
    TEST_CONNECTION_OPERATION,
    _collect_refs,
    _is_excluded,
    _pointer_get,
    iter_operations,
    normalize_host,
)


def strip_vendor_extensions(node: Any, _name_map: bool = False) -> Any:
    """Copy without the non ``x-ms-`` vendor extensions (Connexion's ``x-swagger-router-controller``,
    ``x-apikeyInfoFunc``, ``x-connector-exclude``, ``x-nullable`` ...). Property names, path names and data
    (examples, defaults, enums) are kept as they are; ``x-ms-*`` values are copied verbatim."""
    if isinstance(node, list):
        return [strip_vendor_extensions(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict = {}
    for key, value in node.items():
        if _name_map:
            out[key] = strip_vendor_extensions(value)
        elif key.startswith("x-ms-") or key in _DATA_KEYS:
            out[key] = copy.deepcopy(value)
        elif key.startswith("x-"):
            continue
        else:
            out[key] = strip_vendor_extensions(value, _name_map=key in _NAME_MAPS and isinstance(value, dict))
    return out


def _prune_unused(doc: dict) -> None:
    """Drop definitions/parameters/responses no kept operation reaches (transitively)."""
    sections = ("definitions", "parameters", "responses")
    used: set[str] = set()
    pending: set[str] = set()
    _collect_refs({k: v for k, v in doc.items() if k not in sections}, pending)
    while pending:
        ref = pending.pop()
        if ref in used:
            continue
        used.add(ref)
        target = _pointer_get(doc, ref)
        if target is not None:
            found: set[str] = set()
            _collect_refs(target, found)
            pending |= found - used
    for section in sections:
        entries = doc.get(section)
        if not isinstance(entries, dict):
            continue
        kept = {name: v for name, v in entries.items() if f"#/{section}/{name}" in used}
        if kept:
            doc[section] = kept
        else:
            doc.pop(section)


_ROOT_ORDER = ("swagger", "info", "host", "basePath", "schemes", "consumes", "produces", "paths", "definitions",
               "parameters", "responses", "securityDefinitions", "security", "tags", "x-ms-connector-metadata",
               "x-ms-capabilities")


def build_definition(spec: dict, host: str) -> dict:
    """The connector's ``apiDefinition.swagger.json`` content, built from the source spec (not modified)."""
    host = normalize_host(host)
    src = copy.deepcopy(spec)
    capabilities = copy.deepcopy(src.get("x-ms-capabilities") or {})

    paths: dict = {}
    used_tags: set[str] = set()
    for path, item in (src.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        kept = {}
        for key, value in item.items():
            if key in HTTP_METHODS:
                if not isinstance(value, dict) or _is_excluded(value):
                    continue
                op_caps = value.get("x-ms-capabilities")
                if isinstance(op_caps, dict) and "testConnection" in op_caps:
                    # testConnection belongs at the root of the document, not on the operation.
                    capabilities.setdefault("testConnection", op_caps.pop("testConnection"))
                    if not op_caps:
                        value.pop("x-ms-capabilities")
                used_tags.update(t for t in value.get("tags") or [] if isinstance(t, str))
            kept[key] = value
        if any(m in kept for m in HTTP_METHODS):
            paths[path] = kept

    out: dict = {k: v for k, v in src.items() if k != "paths"}
    out["paths"] = paths
    out["host"] = host
    out["basePath"] = src.get("basePath") or "/"
    out["schemes"] = ["https"]
    op_ids = {op.get("operationId") for _, _, op, _ in iter_operations(out)}
    if "testConnection" not in capabilities and TEST_CONNECTION_OPERATION in op_ids:
        capabilities["testConnection"] = {"operationId": TEST_CONNECTION_OPERATION, "parameters": {}}
    if capabilities:
        out["x-ms-capabilities"] = capabilities
    else:
        out.pop("x-ms-capabilities", None)
    if isinstance(out.get("tags"), list):
        tags = [t for t in out["tags"] if isinstance(t, dict) and t.get("name") in used_tags]
        if tags:
            out["tags"] = tags
        else:
            out.pop("tags")

    out = strip_vendor_extensions(out)
    _prune_unused(out)
    ordered = {k: out[k] for k in _ROOT_ORDER if k in out}
    ordered.update({k: v for k, v in out.items() if k not in ordered})
    return ordered


def _host_url_template(base_path: str) -> str:
    # The dynamichosturl policy replaces the host and drops the swagger basePath: fold the base path in.
    suffix = "" if base_path in ("", "/") else "/" + base_path.strip("/")
    return f"https://@connectionParameters('{HOST_PARAMETER}'){suffix}"


def build_properties(host: str | None = None, base_path: str = "/") -> dict:
    """``apiProperties.json``: API key connection parameter, instance host parameter (dynamichosturl policy),
    brand colour, publisher, stack owner, capabilities. ``host`` pre-fills the host parameter."""
    host_param: dict = {
        "type": "string",
        "uiDefinition": {
            "displayName": "Instance host name",
            "description": "The host name of your Marketing Actions instance, without https:// "
                           f"(for example {host or DEFAULT_HOST}).",
            "tooltip": "The host name of the Marketing Actions service this connection calls",
            "constraints": {"tabIndex": 1, "clearText": True, "required": "true"},
        },
    }
    if host:
        host_param["defaultValue"] = normalize_host(host)
    return {
        "properties": {
            "connectionParameters": {
                HOST_PARAMETER: host_param,
                API_KEY_PARAMETER: {
                    "type": "securestring",
                    "uiDefinition": {
                        "displayName": "API key",
                        "description": "The API key of your Marketing Actions instance, sent as the X-API-Key header.",
                        "tooltip": "Provide your Marketing Actions API key",
                        "constraints": {"tabIndex": 2, "clearText": False, "required": "true"},
                    },
                },
            },
            "iconBrandColor": BRAND_COLOR,
            "capabilities": ["actions"],
            "policyTemplateInstances": [
                {
                    "templateId": "dynamichosturl",
                    "title": "Route to the instance host",
                    "parameters": {"x-ms-apimTemplateParameter.urlTemplate": _host_url_template(base_path)},
                }
            ],
            "publisher": PUBLISHER,
            "stackOwner": STACK_OWNER,
        }
    }
