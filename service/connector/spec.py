"""The connector's fixed facts (files, brand, certification limits) and the source spec: loading and walking."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
SPEC_PATH = ROOT / "openapi.yaml"
OUT_DIR = ROOT / "connector-definition"
SCHEMA_DIRS = (ROOT / "tests" / "contract" / "schemas", ROOT.parent / "shared" / "reference" / "powerplatform")
DEFINITION_FILE = "apiDefinition.swagger.json"
PROPERTIES_FILE = "apiProperties.json"
ICON_FILE = "icon.png"
#: the icon is a checked-in file (230x230, opaque, the brand colour): every build copies it as it is
ICON_SOURCE = OUT_DIR / ICON_FILE
README_FILE = "readme.md"
FILES = (DEFINITION_FILE, PROPERTIES_FILE, ICON_FILE, README_FILE)

DEFAULT_HOST = "marketing-actions.example.com"
EXCLUDE_KEY = "x-connector-exclude"
TEST_CONNECTION_OPERATION = "TestConnection"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")

BRAND_COLOR = "#6B2FBA"
FORBIDDEN_BRAND_COLORS = ("#007ee5", "#ffffff")
PUBLISHER = "Marketing Actions"
STACK_OWNER = "Marketing Actions"
ICON_SIZE = 230
API_KEY_PARAMETER = "api_key"
HOST_PARAMETER = "hostName"
#: the Entra ID connection: an ``oauthSetting`` parameter named ``token`` (paconn --secret fills it)
TOKEN_PARAMETER = "token"
API_KEY_SET, ENTRA_SET = "apiKey", "entraId"
#: the hosted connection types (one shared deployment of the publisher, issue 22): the maker brings the platform
#: account; the connector forwards it in headers with setheader policies
HOSTED_SET, HOSTED_ENTRA_SET = "hosted", "hostedEntraId"
PLATFORM_PARAMETER, PLATFORM_KEY_PARAMETER, PLATFORM_SECRET_PARAMETER = "platform", "platformKey", "platformSecret"
#: connection parameter -> the request header its setheader policy sets
HOSTED_HEADERS = {PLATFORM_PARAMETER: "X-Platform", PLATFORM_KEY_PARAMETER: "X-Platform-Key",
                  PLATFORM_SECRET_PARAMETER: "X-Platform-Secret"}
#: the platforms a hosted connection offers (value, what the maker sees)
HOSTED_PLATFORMS = (("spotler", "Spotler Mail+"), ("piggy", "Piggy (Leat)"), ("spoki", "Spoki"))
ENTRA_LOGIN_URI = "https://login.microsoftonline.com"
ENTRA_SCOPE = "access_as_user"
#: per-connector redirect URIs are mandatory for OAuth connectors since February 2024 (learn.microsoft.com,
#: custom connectors: per-connector redirect URI); the paconn schema predates it and lists Global/Direct only
ENTRA_REDIRECT_MODE = "GlobalPerConnector"
#: placeholders of the checked-in folder; `build --entra-client-id/--entra-resource` (or the environment) fill them
ENTRA_CLIENT_ID_PLACEHOLDER = "<<connector app (client) id>>"
ENTRA_RESOURCE_PLACEHOLDER = "api://<<service app (client) id>>"

VISIBILITIES = ("important", "advanced", "internal")
SUMMARY_FORBIDDEN = set("/\\<>*%&?")
SUMMARY_MAX = 80
TITLE_MAX = 30
DESCRIPTION_MIN, DESCRIPTION_MAX = 30, 500
PRODUCT_NAMES = ("power automate", "power apps", "powerapps", "power bi", "power pages", "power platform",
                 "copilot studio", "logic apps", "dynamics 365")
ALLOWED_CATEGORIES = (
    "AI", "Business Management", "Business Intelligence", "Collaboration", "Commerce", "Communication",
    "Content and Files", "Finance", "Data", "Human Resources", "Internet of Things", "IT Operations",
    "Lifestyle and Entertainment", "Marketing", "Productivity", "Sales and CRM", "Security", "Social Media",
    "Website",
)
REQUIRED_CATEGORY = "Marketing"
# Capitalised words a sentence-case summary may contain after its first word (names, not Title Case).
PROPER_NOUNS = frozenset({
    "Spotler", "MailPlus", "Mail+", "Piggy", "Leat", "Spoki", "Marketing", "Actions", "Power", "Automate", "Apps",
    "Microsoft", "Dynamics", "Excel", "Outlook", "Teams", "SharePoint", "Dataverse", "WhatsApp", "I",
})
# Body/query/path parameters a maker would otherwise paste: they need a dropdown (DESIGN.md "Dropdowns").
DROPDOWN_PARAMETER_NAMES = ("automationId", "campaignId", "triggerId", "audienceId", "field", "tag", "permissions")
DYNAMIC_EXTENSIONS = ("x-ms-dynamic-values", "x-ms-dynamic-list", "x-ms-dynamic-schema", "x-ms-dynamic-properties")
DROPDOWN_EXTENSIONS = ("x-ms-dynamic-values", "x-ms-dynamic-list")

REF_RE = re.compile(r"^#/(definitions|parameters|responses)/[^/]+$")
HOST_RE = re.compile(r"^[^{}/ :\\]+(?::\d+)?$")
PASCAL_RE = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
CONNECTION_PARAMETER_RE = re.compile(r"@connectionParameters\('([^']*)'")
#: a reference and its optional default: ``@connectionParameters('name')`` or ``@connectionParameters('name', '')``
CONNECTION_PARAMETER_CALL_RE = re.compile(r"@connectionParameters\('([^']*)'(\s*,\s*'[^']*')?\s*\)")
PATH_TEMPLATE_RE = re.compile(r"{([^{}]+)}")
# Keys whose value maps names to objects: their own keys are names, not keywords (never stripped).
NAME_MAPS = frozenset({"paths", "definitions", "parameters", "responses", "securityDefinitions", "properties",
                        "headers", "scopes", "patternProperties"})
# Keys whose value is data (examples, defaults): copied verbatim, never walked.
DATA_KEYS = frozenset({"example", "examples", "default", "enum"})


class ConnectorError(ValueError):
    """Raised for an unusable input (a host with a path, a spec that is not a Swagger 2.0 object)."""


def _jsonable(node: Any) -> Any:
    """YAML -> JSON data model: string keys (YAML reads ``200:`` as an int), ISO dates instead of date objects."""
    if isinstance(node, dict):
        return {str(k): _jsonable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_jsonable(v) for v in node]
    if isinstance(node, (_dt.date, _dt.datetime)):
        return node.isoformat()
    return node


def load_spec(path: str | os.PathLike = SPEC_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        spec = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # safe loader
    if not isinstance(spec, dict) or spec.get("swagger") != "2.0":
        raise ConnectorError(f"{path} is not a Swagger 2.0 document")
    return _jsonable(spec)


def strip_json_comments(text: str) -> str:
    """Drop ``//`` line comments outside JSON strings (the official schemas carry a few)."""
    out: list[str] = []
    i, n, in_string = 0, len(text), False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
            continue
        if c == '"':
            in_string = True
        elif c == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        out.append(c)
        i += 1
    return "".join(out)


def schema_dir() -> Path:
    env = os.environ.get("POWERPLATFORM_SCHEMA_DIR")
    for candidate in ([Path(env)] if env else []) + list(SCHEMA_DIRS):
        if (candidate / "apiDefinition.swagger.schema.json").is_file():
            return candidate
    raise ConnectorError("the Power Platform JSON schemas were not found (looked in "
                         + ", ".join(str(d) for d in SCHEMA_DIRS) + "; or set POWERPLATFORM_SCHEMA_DIR)")


@lru_cache(maxsize=4)
def load_official_schema(name: str) -> dict:
    """``apiDefinition.swagger.schema.json`` or ``paconn-apiProperties.schema.json``, comments stripped."""
    return json.loads(strip_json_comments((schema_dir() / name).read_text(encoding="utf-8")))


def iter_operations(doc: dict) -> Iterator[tuple[str, str, dict, dict]]:
    """Yield ``(path, method, operation, path_item)`` in document order."""
    for path, item in (doc.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                yield path, method, op, item


def pointer_get(doc: dict, ref: str) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return None
    node: Any = doc
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def resolve(doc: dict, node: Any) -> Any:
    """Follow ``$ref`` chains (``None`` for a broken or cyclic chain)."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            return None
        seen.add(ref)
        node = pointer_get(doc, ref)
    return node


def operation_label(path: str, method: str, op: dict) -> str:
    opid = op.get("operationId")
    return f"{method.upper()} {path}" + (f" ({opid})" if opid else "")


def location_of(doc: dict, parts: tuple) -> str:
    """Readable location: ``POST /x (OpId): parameters[0]/schema`` or ``definitions/Foo/properties/bar``."""
    prefix, rest = "", list(parts)
    if len(rest) >= 3 and rest[0] == "paths" and rest[2] in HTTP_METHODS:
        op = (doc.get("paths") or {}).get(rest[1], {}).get(rest[2], {})
        prefix, rest = operation_label(rest[1], rest[2], op if isinstance(op, dict) else {}), rest[3:]
    elif len(rest) >= 2 and rest[0] == "paths":
        prefix, rest = f"paths {rest[1]}", rest[2:]
    out = ""
    for p in rest:
        out += f"[{p}]" if isinstance(p, int) else (f"/{p}" if out else str(p))
    return f"{prefix}: {out}" if prefix and out else (prefix or out or "/")


def is_excluded(op: dict) -> bool:
    return op.get(EXCLUDE_KEY) is True


def operation_parameters(doc: dict, item: dict, op: dict) -> list[dict]:
    """Effective parameters (path-item ones overridden by operation ones with the same name+in), resolved."""
    merged: dict[tuple, dict] = {}
    for source in (item.get("parameters") or [], op.get("parameters") or []):
        for raw in source:
            param = resolve(doc, raw)
            if isinstance(param, dict):
                merged[(param.get("name"), param.get("in"))] = param
    return list(merged.values())


def success_schema(doc: dict, op: dict) -> dict | None:
    """The schema of the first 2xx response that has one (200 first), resolved."""
    responses = op.get("responses") or {}
    for code in sorted(k for k in responses if str(k).startswith("2") and len(str(k)) == 3):
        resp = resolve(doc, responses[code])
        if isinstance(resp, dict) and isinstance(resp.get("schema"), dict):
            return resp["schema"]
    return None


def collect_refs(node: Any, into: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            into.add(ref)
        for k, v in node.items():
            if k not in DATA_KEYS:
                collect_refs(v, into)
    elif isinstance(node, list):
        for v in node:
            collect_refs(v, into)


def normalize_host(host: str) -> str:
    """``https://api.example.com/`` -> ``api.example.com``; rejects paths, braces and spaces."""
    value = (host or "").strip()
    value = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", value).rstrip("/")
    if not value or not HOST_RE.match(value):
        raise ConnectorError(f"invalid host {host!r}: give a host name (and optional :port), without a path")
    return value


def default_host() -> str:
    return normalize_host(os.environ.get("PUBLIC_HOST") or DEFAULT_HOST)


class EntraConnection(NamedTuple):
    """What the Entra ID connection signs in to: the connector's own app registration (``client_id``) and the
    service's app id URI (``resource``, the tokens' audience)."""

    client_id: str = ENTRA_CLIENT_ID_PLACEHOLDER
    resource: str = ENTRA_RESOURCE_PLACEHOLDER


def default_entra() -> EntraConnection:
    """From the environment: ``ENTRA_CONNECTOR_CLIENT_ID``; ``ENTRA_APP_ID_URI`` or ``api://ENTRA_CLIENT_ID``."""
    env = os.environ
    resource = env.get("ENTRA_APP_ID_URI") or (f"api://{env['ENTRA_CLIENT_ID']}" if env.get("ENTRA_CLIENT_ID")
                                               else ENTRA_RESOURCE_PLACEHOLDER)
    return EntraConnection(env.get("ENTRA_CONNECTOR_CLIENT_ID") or ENTRA_CLIENT_ID_PLACEHOLDER, resource)


def recorded_entra(properties: Any) -> EntraConnection | None:
    """The Entra ID values a generated ``apiProperties.json`` holds (None when it has no Entra ID set)."""
    props = properties.get("properties") if isinstance(properties, dict) else None
    sets = (props or {}).get("connectionParameterSets") or {}
    for value in sets.get("values") or [] if isinstance(sets, dict) else []:
        token = ((value or {}).get("parameters") or {}).get(TOKEN_PARAMETER) if isinstance(value, dict) else None
        settings = token.get("oAuthSettings") if isinstance(token, dict) else None
        if isinstance(settings, dict):
            resource = ((settings.get("customParameters") or {}).get("resourceUri") or {}).get("value")
            return EntraConnection(str(settings.get("clientId") or ENTRA_CLIENT_ID_PLACEHOLDER),
                                   str(resource or ENTRA_RESOURCE_PLACEHOLDER))
    return None


def recorded_publisher_key(properties: Any) -> bool:
    """True when a generated ``apiProperties.json``'s hosted connection type asks for the publisher's API key."""
    props = properties.get("properties") if isinstance(properties, dict) else None
    sets = (props or {}).get("connectionParameterSets") or {}
    for value in sets.get("values") or [] if isinstance(sets, dict) else []:
        if isinstance(value, dict) and value.get("name") == HOSTED_SET:
            return API_KEY_PARAMETER in (value.get("parameters") or {})
    return False
