"""Builds the Power Platform connector definition from ``openapi.yaml`` and checks the certification rules.

Commands::

    python -m service.connector build [--host HOST] [--out connector-definition] [--spec openapi.yaml]
    python -m service.connector check [--out connector-definition] [--spec openapi.yaml]

``build`` writes ``apiDefinition.swagger.json``, ``apiProperties.json``, ``icon.png`` and ``readme.md``.
``check`` runs every rule (certification rules on the source spec and on the generated definition, the
official JSON schemas, dynamic references, dropdown coverage, the apiProperties rules) and verifies that the
checked-in folder is what the generator produces; it prints the violations and exits 1 when there are any.

Function API (used by the tests): :func:`build_definition`, :func:`build_properties`, :func:`build_icon`,
:func:`build_readme`, :func:`write_all`, :func:`check_rules`, :func:`check_connector_definition`,
:func:`check_properties`, :func:`check_dynamic_references`, :func:`check_dropdown_parameters`,
:func:`validate_schemas`, :func:`check_output_current`, :func:`check_all`.

This module never imports Flask or Connexion: it reads the YAML file and writes plain files.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import math
import os
import re
import string
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi.yaml"
OUT_DIR = ROOT / "connector-definition"
SCHEMA_DIRS = (ROOT / "tests" / "contract" / "schemas", ROOT.parent / "shared" / "reference" / "powerplatform")
DEFINITION_FILE = "apiDefinition.swagger.json"
PROPERTIES_FILE = "apiProperties.json"
ICON_FILE = "icon.png"
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

_REF_RE = re.compile(r"^#/(definitions|parameters|responses)/[^/]+$")
_HOST_RE = re.compile(r"^[^{}/ :\\]+(?::\d+)?$")
_PASCAL_RE = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_CONN_PARAM_RE = re.compile(r"@connectionParameters\('([^']*)'")
_PATH_TEMPLATE_RE = re.compile(r"{([^{}]+)}")
# Keys whose value maps names to objects: their own keys are names, not keywords (never stripped).
_NAME_MAPS = frozenset({"paths", "definitions", "parameters", "responses", "securityDefinitions", "properties",
                        "headers", "scopes", "patternProperties"})
# Keys whose value is data (examples, defaults): copied verbatim, never walked.
_DATA_KEYS = frozenset({"example", "examples", "default", "enum"})


class ConnectorError(ValueError):
    """Raised for an unusable input (a host with a path, a spec that is not a Swagger 2.0 object)."""


# --------------------------------------------------------------------------------------------- loading


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


# --------------------------------------------------------------------------------------------- helpers


def iter_operations(doc: dict) -> Iterator[tuple[str, str, dict, dict]]:
    """Yield ``(path, method, operation, path_item)`` in document order."""
    for path, item in (doc.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                yield path, method, op, item


def _pointer_get(doc: dict, ref: str) -> Any:
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
        node = _pointer_get(doc, ref)
    return node


def _op_label(path: str, method: str, op: dict) -> str:
    opid = op.get("operationId")
    return f"{method.upper()} {path}" + (f" ({opid})" if opid else "")


def _loc(doc: dict, parts: tuple) -> str:
    """Readable location: ``POST /x (OpId): parameters[0]/schema`` or ``definitions/Foo/properties/bar``."""
    prefix, rest = "", list(parts)
    if len(rest) >= 3 and rest[0] == "paths" and rest[2] in HTTP_METHODS:
        op = (doc.get("paths") or {}).get(rest[1], {}).get(rest[2], {})
        prefix, rest = _op_label(rest[1], rest[2], op if isinstance(op, dict) else {}), rest[3:]
    elif len(rest) >= 2 and rest[0] == "paths":
        prefix, rest = f"paths {rest[1]}", rest[2:]
    out = ""
    for p in rest:
        out += f"[{p}]" if isinstance(p, int) else (f"/{p}" if out else str(p))
    return f"{prefix}: {out}" if prefix and out else (prefix or out or "/")


def _is_excluded(op: dict) -> bool:
    return op.get(EXCLUDE_KEY) is True


def _operation_parameters(doc: dict, item: dict, op: dict) -> list[dict]:
    """Effective parameters (path-item ones overridden by operation ones with the same name+in), resolved."""
    merged: dict[tuple, dict] = {}
    for source in (item.get("parameters") or [], op.get("parameters") or []):
        for raw in source:
            param = resolve(doc, raw)
            if isinstance(param, dict):
                merged[(param.get("name"), param.get("in"))] = param
    return list(merged.values())


def _success_schema(doc: dict, op: dict) -> dict | None:
    """The schema of the first 2xx response that has one (200 first), resolved."""
    responses = op.get("responses") or {}
    for code in sorted(k for k in responses if str(k).startswith("2") and len(str(k)) == 3):
        resp = resolve(doc, responses[code])
        if isinstance(resp, dict) and isinstance(resp.get("schema"), dict):
            return resp["schema"]
    return None


def _collect_refs(node: Any, into: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            into.add(ref)
        for k, v in node.items():
            if k not in _DATA_KEYS:
                _collect_refs(v, into)
    elif isinstance(node, list):
        for v in node:
            _collect_refs(v, into)


def normalize_host(host: str) -> str:
    """``https://api.example.com/`` -> ``api.example.com``; rejects paths, braces and spaces."""
    value = (host or "").strip()
    value = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", value).rstrip("/")
    if not value or not _HOST_RE.match(value):
        raise ConnectorError(f"invalid host {host!r}: give a host name (and optional :port), without a path")
    return value


def default_host() -> str:
    return normalize_host(os.environ.get("PUBLIC_HOST") or DEFAULT_HOST)


# --------------------------------------------------------------------------------------------- building


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


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no alpha: always opaque
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Minimal decoder for the PNGs :func:`build_icon` writes: ``(width, height, colour_type, rgb_pixels)``."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ConnectorError("not a PNG file")
    pos, idat = 8, b""
    width = height = 0
    colour_type = -1
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if tag == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour_type != 2 or interlace:
                raise ConnectorError("only 8-bit RGB, non-interlaced PNGs are supported")
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 3 + 1
    rows = [raw[i * stride:(i + 1) * stride] for i in range(height)]
    if any(r[0] != 0 for r in rows):
        raise ConnectorError("only unfiltered scanlines are supported")
    return width, height, colour_type, b"".join(r[1:] for r in rows)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@lru_cache(maxsize=2)
def build_icon(color: str = BRAND_COLOR, size: int = ICON_SIZE) -> bytes:
    """A 230x230 opaque PNG: brand-colour background, a white ring around a white "play" triangle
    (start an action). Pure Python (zlib + struct), anti-aliased by 4x4 supersampling on the edges."""
    bg, fg = _rgb(color), (255, 255, 255)
    c = size / 2.0
    r_out, r_in = 0.40 * size, 0.34 * size
    tri = ((c - 0.10 * size, c - 0.17 * size), (c - 0.10 * size, c + 0.17 * size), (c + 0.19 * size, c))
    edges = []  # (nx, ny, offset): n.p + offset >= 0 inside; normals unit length
    for (x1, y1), (x2, y2) in zip(tri, tri[1:] + tri[:1], strict=True):
        nx, ny = y1 - y2, x2 - x1
        length = math.hypot(nx, ny)
        nx, ny = nx / length, ny / length
        cx, cy = sum(p[0] for p in tri) / 3, sum(p[1] for p in tri) / 3
        off = -(nx * x1 + ny * y1)
        if nx * cx + ny * cy + off < 0:
            nx, ny, off = -nx, -ny, -off
        edges.append((nx, ny, off))

    def inside(x: float, y: float) -> bool:
        d = math.hypot(x - c, y - c)
        if r_in <= d <= r_out:
            return True
        return all(nx * x + ny * y + off >= 0 for nx, ny, off in edges)

    def near_edge(x: float, y: float) -> bool:
        d = math.hypot(x - c, y - c)
        if abs(d - r_out) < 1 or abs(d - r_in) < 1:
            return True
        dists = [nx * x + ny * y + off for nx, ny, off in edges]
        return min(dists) > -1 and any(abs(v) < 1 for v in dists)

    samples = [(i + 0.5) / 4 for i in range(4)]
    rows: list[bytes] = []
    for y in range((size + 1) // 2):  # the glyph is symmetric about the horizontal axis: mirror the top half
        row = bytearray()
        for x in range(size):
            px, py = x + 0.5, y + 0.5
            if near_edge(px, py):
                cover = sum(inside(x + sx, y + sy) for sx in samples for sy in samples) / 16
            else:
                cover = 1.0 if inside(px, py) else 0.0
            row += bytes(round(b + (f - b) * cover) for b, f in zip(bg, fg, strict=True))
        rows.append(bytes(row))
    rows += rows[: size // 2][::-1]
    return _png(size, size, rows)


def _md(text: str) -> str:
    return " ".join(str(text or "").split())


def build_readme(definition: dict, properties: dict) -> str:
    """``readme.md`` with the certification template sections; Supported Operations comes from the spec."""
    info = definition.get("info") or {}
    props = properties.get("properties") or {}
    title = info.get("title", "Marketing Actions")
    visible, helpers = [], []
    for _, _, op, _ in iter_operations(definition):
        entry = f"### {_md(op.get('summary'))}\n{_md(op.get('description'))}\n"
        (helpers if op.get("x-ms-visibility") == "internal" else visible).append(entry)
    lines = [
        f"# {title}",
        _md(info.get("description")),
        "",
        f"## Publisher: {props.get('publisher', PUBLISHER)}",
        "",
        "## Prerequisites",
        "- A Power Automate, Power Apps or Logic Apps plan that allows custom connectors (premium).",
        "- A running Marketing Actions instance (hosted, or self-hosted from this repository) reachable over HTTPS.",
        "- An API key of that instance, and an account on the marketing platform it drives (Spotler Mail+, "
        "Piggy or Spoki). Without platform credentials the instance runs in sandbox mode against its simulator.",
        "",
        "## Supported Operations",
        "The connector supports the following operations:",
        "",
        *visible,
    ]
    if helpers:
        lines += ["### Helper operations",
                  "These operations are hidden in the designer; they feed dropdowns and the connection test:", ""]
        lines += [f"- {h.splitlines()[0][4:]}: {h.splitlines()[1]}" for h in helpers]
        lines.append("")
    lines += [
        "## Obtaining Credentials",
        "The operator of your Marketing Actions instance issues the API key (the `API_KEYS` setting of the "
        "service). Ask them for a key per team or flow owner; keys can be rotated without changing flows. "
        "The instance holds the marketing platform credentials itself: makers never see them.",
        "",
        "## Getting Started",
        "1. Create a connection: enter the host name of your instance (without `https://`) and your API key. "
        "The connection test calls the *Test the connection* operation.",
        "2. Add an action such as *Get platform capabilities* to see which actions your platform supports.",
        "3. Pick automations, campaigns, audiences, fields, tags and permissions from the dropdowns instead of "
        "pasting ids.",
        "",
        "## Known Issues and Limitations",
        "- Power Apps handles dynamic schemas poorly: every action with dynamic inputs also accepts fixed-type "
        "inputs (for automation fields: the `fieldsText` text, `a=b;c={1,2}`, or a plain name/value map).",
        "- Power Automate retries failed calls (408, 429, 5xx) up to 8 times; write actions are idempotent, so a "
        "retried call causes one change on the platform and returns the same answer.",
        "- A platform that lacks an operation answers 501 with the reason; *Get platform capabilities* lists them.",
        "- Custom connectors are limited to 500 requests per minute per connection, and a call must finish "
        "within 120 seconds.",
        "",
        "## Deployment Instructions",
        "Generate the files from `openapi.yaml` (the host is the public host name of your instance):",
        "",
        "```",
        "python -m service.connector build --host your-instance.example.com",
        "```",
        "",
        "Then import the folder with the Power Platform CLI:",
        "",
        "```",
        f"pac connector create --api-definition-file {DEFINITION_FILE} --api-properties-file {PROPERTIES_FILE} "
        f"--icon-file {ICON_FILE} --environment <environment id>",
        "```",
        "",
        "or with the paconn CLI:",
        "",
        "```",
        f"paconn validate --api-def {DEFINITION_FILE}",
        f"paconn create --api-def {DEFINITION_FILE} --api-prop {PROPERTIES_FILE} --icon {ICON_FILE} "
        "-e <environment id>",
        "```",
        "",
        "`paconn update` fails when `stackOwner` is present in `apiProperties.json`: remove it from a copy used "
        "for updates.",
        "",
    ]
    return "\n".join(lines)


def _dump_json(data: dict) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def render_files(spec: dict, host: str) -> dict[str, bytes]:
    """Every file of the connector folder, as bytes, keyed by file name."""
    definition = build_definition(spec, host)
    properties = build_properties(definition["host"], definition.get("basePath", "/"))
    return {
        DEFINITION_FILE: _dump_json(definition),
        PROPERTIES_FILE: _dump_json(properties),
        ICON_FILE: build_icon(),
        README_FILE: build_readme(definition, properties).encode("utf-8"),
    }


def write_all(out_dir: str | os.PathLike = OUT_DIR, host: str | None = None,
              spec: dict | None = None) -> list[Path]:
    """Generate the connector folder; returns the written paths."""
    spec = spec if spec is not None else load_spec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in render_files(spec, host or default_host()).items():
        target = out / name
        target.write_bytes(data)
        written.append(target)
    return written


# --------------------------------------------------------------------------------------------- certification rules


def _check_text_summary(summary: Any, where: str) -> list[str]:
    if not isinstance(summary, str) or not summary.strip():
        return [f"{where}: summary is required"]
    problems = []
    if len(summary) > SUMMARY_MAX:
        problems.append(f"{where}: summary is {len(summary)} characters long (at most {SUMMARY_MAX})")
    bad = sorted(set(summary) & SUMMARY_FORBIDDEN)
    if bad:
        problems.append(f"{where}: summary contains restricted characters {''.join(bad)} (none of /\\<>*%&? allowed)")
    last = summary[-1]
    if last.isspace() or (last in string.punctuation and last != ")"):
        problems.append(f"{where}: summary must not end with punctuation or a space")
    words = summary.split()
    if not words[0][:1].isupper() and not words[0][:1].isdigit():
        problems.append(f"{where}: summary must be in sentence case (start with a capital letter)")
    titled = [w for w in (w.strip("()[],.;:'\"") for w in words[1:]) if re.fullmatch(r"[A-Z][a-z]+", w)
              and w not in PROPER_NOUNS]
    if titled:
        problems.append(f"{where}: summary must be in sentence case, not Title Case (capitalised: "
                        f"{', '.join(titled)})")
    return problems


def _check_schema_properties(doc: dict, schema: Any, parts: tuple, problems: list[str]) -> None:
    """Every property (inline, nested objects, array items, additionalProperties, allOf) has ``x-ms-summary``
    and ``description``; internal required properties have a default. ``$ref``'d definitions are checked where
    they are defined."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return
    props = schema.get("properties")
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    if isinstance(props, dict):
        for name, prop in props.items():
            where = _loc(doc, parts + ("properties", name))
            if not isinstance(prop, dict):
                problems.append(f"{where}: property must be a schema object")
                continue
            if set(prop) != {"$ref"}:
                problems += _check_labels(prop, where)
                if prop.get("x-ms-visibility") == "internal" and name in required and "default" not in prop:
                    problems.append(f"{where}: internal required property needs a default")
            _check_schema_properties(doc, prop, parts + ("properties", name), problems)
    items = schema.get("items")
    if isinstance(items, dict):
        _check_schema_properties(doc, items, parts + ("items",), problems)
    elif isinstance(items, list):
        for i, item in enumerate(items):
            _check_schema_properties(doc, item, parts + ("items", i), problems)
    if isinstance(schema.get("additionalProperties"), dict):
        _check_schema_properties(doc, schema["additionalProperties"], parts + ("additionalProperties",), problems)
    for i, sub in enumerate(schema.get("allOf") or []):
        _check_schema_properties(doc, sub, parts + ("allOf", i), problems)


def _check_labels(node: dict, where: str) -> list[str]:
    problems = []
    label = node.get("x-ms-summary")
    if not isinstance(label, str) or not label.strip():
        problems.append(f"{where}: x-ms-summary is required")
    elif len(label) > SUMMARY_MAX:
        problems.append(f"{where}: x-ms-summary is longer than {SUMMARY_MAX} characters")
    desc = node.get("description")
    if not isinstance(desc, str) or not desc.strip():
        problems.append(f"{where}: description is required")
    vis = node.get("x-ms-visibility")
    if vis is not None and vis not in VISIBILITIES:
        problems.append(f"{where}: x-ms-visibility must be one of {', '.join(VISIBILITIES)}")
    return problems


def _check_parameter(doc: dict, param: Any, parts: tuple, problems: list[str]) -> None:
    where = _loc(doc, parts)
    if not isinstance(param, dict):
        problems.append(f"{where}: parameter must be an object")
        return
    if "$ref" in param:
        return  # checked under #/parameters
    name = param.get("name")
    where = f"{where} ({name})" if name else where
    problems += _check_labels(param, where)
    location = param.get("in")
    if param.get("x-ms-visibility") == "internal" and param.get("required") is True and "default" not in param:
        problems.append(f"{where}: internal required parameter needs a default")
    if location == "body":
        if not isinstance(param.get("schema"), dict):
            problems.append(f"{where}: body parameter needs a schema")
        else:
            _check_schema_properties(doc, param["schema"], parts + ("schema",), problems)
    if location == "path":
        if param.get("required") is not True:
            problems.append(f"{where}: path parameter must be required")
        if param.get("type") == "string" and param.get("x-ms-url-encoding") not in ("single", "double"):
            problems.append(f"{where}: string path parameter needs x-ms-url-encoding (single or double)")


def _check_info(doc: dict) -> list[str]:
    problems = []
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    title = info.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append("info/title: title is required")
    else:
        if len(title) > TITLE_MAX:
            problems.append(f"info/title: title is {len(title)} characters long (at most {TITLE_MAX})")
        if re.search(r"\bapi\b", title, re.I) or "connector" in title.lower():
            problems.append("info/title: title must not contain 'API' or 'Connector'")
        if any(p in title.lower() for p in PRODUCT_NAMES):
            problems.append("info/title: title must not contain a Power Platform product name")
        if not title[-1].isalnum():
            problems.append("info/title: title must end with a letter or digit")
    desc = info.get("description")
    if not isinstance(desc, str) or not desc.strip():
        problems.append("info/description: description is required")
    else:
        if not DESCRIPTION_MIN <= len(desc) <= DESCRIPTION_MAX:
            problems.append(f"info/description: description is {len(desc)} characters long "
                            f"({DESCRIPTION_MIN} to {DESCRIPTION_MAX})")
        if re.search(r"\bapi\b", desc, re.I):
            problems.append("info/description: description must not contain 'API'")
    contact = info.get("contact")
    if not isinstance(contact, dict) or not any(contact.get(k) for k in ("name", "url", "email")):
        problems.append("info/contact: contact (name, url, email) is required")
    metadata = doc.get("x-ms-connector-metadata")
    if not isinstance(metadata, list):
        return problems + ["x-ms-connector-metadata: required (Website, Privacy policy, Categories)"]
    values = {m.get("propertyName"): m.get("propertyValue") for m in metadata if isinstance(m, dict)}
    for key in ("Website", "Privacy policy"):
        value = values.get(key)
        if not isinstance(value, str) or not value.startswith("https://"):
            problems.append(f"x-ms-connector-metadata: {key} is required, as an https URL")
    categories = [c.strip() for c in str(values.get("Categories") or "").split(";") if c.strip()]
    if REQUIRED_CATEGORY not in categories:
        problems.append(f"x-ms-connector-metadata: Categories must include {REQUIRED_CATEGORY}")
    unknown = [c for c in categories if c not in ALLOWED_CATEGORIES]
    if unknown:
        problems.append(f"x-ms-connector-metadata: unknown categories {', '.join(unknown)}")
    return problems


def _check_refs(doc: dict, node: Any, parts: tuple, problems: list[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if "$ref" in node:
            where = _loc(doc, parts)
            if not isinstance(ref, str) or not _REF_RE.match(ref):
                problems.append(f"{where}: $ref {ref!r} must point to #/definitions/X, #/parameters/X or "
                                "#/responses/X")
            elif _pointer_get(doc, ref) is None:
                problems.append(f"{where}: $ref {ref} points to nothing")
        for k, v in node.items():
            if k not in _DATA_KEYS and not (k.startswith("x-ms-") and k not in ("x-ms-notification-content",)):
                _check_refs(doc, v, parts + (k,), problems)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_refs(doc, v, parts + (i,), problems)


def _check_responses(doc: dict, op: dict, parts: tuple, problems: list[str]) -> None:
    where = _loc(doc, parts)
    responses = op.get("responses")
    if not isinstance(responses, dict) or not responses:
        problems.append(f"{where}: responses are required")
        return
    success = [c for c in responses if re.fullmatch(r"2\d\d", str(c))]
    if not success:
        problems.append(f"{where}: a 2xx response is required (default must not be the only response)")
    for code, raw in responses.items():
        rwhere = _loc(doc, parts + ("responses", code))
        if str(code).startswith("x-"):
            continue
        if not re.fullmatch(r"\d{3}|default", str(code)):
            problems.append(f"{rwhere}: response code must be three digits or default")
        resp = resolve(doc, raw)
        if not isinstance(resp, dict):
            if not (isinstance(raw, dict) and "$ref" in raw):  # a broken $ref is reported by the $ref rule
                problems.append(f"{rwhere}: response must be an object with a description")
            continue
        desc = resp.get("description")
        if not isinstance(desc, str) or not desc.strip() or desc.strip().lower() == "default":
            problems.append(f"{rwhere}: response needs a meaningful description")
        if code == "default" and "schema" in resp:
            problems.append(f"{rwhere}: the default response must not have a schema")
        if code in success and code != "204":
            schema = resolve(doc, resp.get("schema"))
            if not isinstance(schema, dict):
                problems.append(f"{rwhere}: 2xx response needs a schema (only 204 may have none)")
            elif not schema.get("type"):
                problems.append(f"{rwhere}: 2xx response schema needs a declared type")
        if isinstance(raw, dict) and "$ref" not in raw and isinstance(resp.get("schema"), dict):
            _check_schema_properties(doc, resp["schema"], parts + ("responses", code, "schema"), problems)


def check_rules(definition: dict) -> list[str]:
    """The certification rules (reference §2) on a Swagger 2.0 document: the source spec or the generated
    definition. Returns human-readable violations, empty when the document complies."""
    doc = definition
    problems = _check_info(doc)
    if doc.get("swagger") != "2.0":
        problems.append("swagger: must be 2.0")
    seen_ids: dict[str, str] = {}
    seen_paths: dict[str, str] = {}
    for path in doc.get("paths") or {}:
        if path.lower() in seen_paths:
            problems.append(f"paths {path}: differs from {seen_paths[path.lower()]} only by case")
        seen_paths.setdefault(path.lower(), path)
    for path, method, op, item in iter_operations(doc):
        parts = ("paths", path, method)
        where = _op_label(path, method, op)
        opid = op.get("operationId")
        if not isinstance(opid, str) or not opid:
            problems.append(f"{where}: operationId is required")
        else:
            if not _PASCAL_RE.match(opid):
                problems.append(f"{where}: operationId must be PascalCase (letters and digits, no _ or -)")
            if opid.lower() in seen_ids:
                problems.append(f"{where}: operationId is not unique (also on {seen_ids[opid.lower()]})")
            seen_ids.setdefault(opid.lower(), f"{method.upper()} {path}")
        summary = op.get("summary")
        problems += _check_text_summary(summary, where)
        desc = op.get("description")
        if not isinstance(desc, str) or not desc.strip():
            problems.append(f"{where}: description is required")
        else:
            if not desc.rstrip().endswith("."):
                problems.append(f"{where}: description must end with a period")
            if isinstance(summary, str) and desc.strip().rstrip(".").lower() == summary.strip().rstrip(".").lower():
                problems.append(f"{where}: description must differ from the summary")
        vis = op.get("x-ms-visibility")
        if vis not in VISIBILITIES:
            problems.append(f"{where}: x-ms-visibility is required ({', '.join(VISIBILITIES)})")
        for src, params in (("item", item.get("parameters") or []), ("op", op.get("parameters") or [])):
            for i, param in enumerate(params):
                pparts = (("paths", path, "parameters", i) if src == "item" else parts + ("parameters", i))
                if src == "item" and method != next(m for m in HTTP_METHODS if m in item):
                    continue  # path-level parameters: check once
                _check_parameter(doc, param, pparts, problems)
        declared = {p.get("name") for p in _operation_parameters(doc, item, op) if p.get("in") == "path"}
        for name in _PATH_TEMPLATE_RE.findall(path):
            if name not in declared:
                problems.append(f"{where}: path parameter {{{name}}} is not declared")
        _check_responses(doc, op, parts, problems)
    for name, param in (doc.get("parameters") or {}).items():
        _check_parameter(doc, param, ("parameters", name), problems)
    for name, resp in (doc.get("responses") or {}).items():
        if isinstance(resp, dict) and isinstance(resp.get("schema"), dict):
            _check_schema_properties(doc, resp["schema"], ("responses", name, "schema"), problems)
    for name, schema in (doc.get("definitions") or {}).items():
        _check_schema_properties(doc, schema, ("definitions", name), problems)
    for path, item in (doc.get("paths") or {}).items():
        content = item.get("x-ms-notification-content") if isinstance(item, dict) else None
        if isinstance(content, dict) and isinstance(content.get("schema"), dict):
            _check_schema_properties(doc, content["schema"], ("paths", path, "x-ms-notification-content", "schema"),
                                     problems)
    _check_refs(doc, doc, (), problems)
    problems += _check_test_connection(doc)
    return problems


def _check_test_connection(doc: dict) -> list[str]:
    caps = doc.get("x-ms-capabilities")
    test = caps.get("testConnection") if isinstance(caps, dict) else None
    if test is None:
        return []
    where = "x-ms-capabilities/testConnection"
    ops = {op.get("operationId"): (path, method, op, item) for path, method, op, item in iter_operations(doc)}
    if not isinstance(test, dict) or test.get("operationId") not in ops:
        return [f"{where}: operationId must name an operation of the document"]
    path, method, op, item = ops[test["operationId"]]
    problems = []
    if method != "get":
        problems.append(f"{where}: {test['operationId']} must be a GET operation")
    given = test.get("parameters") or {}
    for param in _operation_parameters(doc, item, op):
        if param.get("required") and "default" not in param and param.get("name") not in given:
            problems.append(f"{where}: {test['operationId']} requires parameter {param.get('name')!r}, "
                            "which testConnection does not supply")
    return problems


def check_connector_definition(definition: dict) -> list[str]:
    """Rules that only apply to the generated definition (the source spec legitimately differs)."""
    problems = []
    host = definition.get("host")
    if not isinstance(host, str) or not _HOST_RE.match(host):
        problems.append(f"host: {host!r} must be a host name without scheme or path")
    if definition.get("schemes") != ["https"]:
        problems.append("schemes: must be [https]")
    if not str(definition.get("basePath", "")).startswith("/"):
        problems.append("basePath: must start with /")
    leftovers: list[str] = []

    def walk(node: Any, parts: tuple, name_map: bool = False) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if name_map:
                    walk(v, parts + (k,))
                elif k.startswith("x-ms-") or k in _DATA_KEYS:
                    continue
                elif k.startswith("x-"):
                    leftovers.append(f"{_loc(definition, parts + (k,))}: vendor extension {k} is not for the "
                                     "connector (Connexion-only keys must be removed)")
                else:
                    walk(v, parts + (k,), k in _NAME_MAPS and isinstance(v, dict))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, parts + (i,))

    walk(definition, ())
    problems += leftovers
    caps = definition.get("x-ms-capabilities")
    if not (isinstance(caps, dict) and isinstance(caps.get("testConnection"), dict)):
        problems.append("x-ms-capabilities: testConnection is required")
    used: set[str] = set()
    _collect_refs({k: v for k, v in definition.items() if k not in ("definitions", "parameters", "responses")}, used)
    pending = set(used)
    while pending:
        found: set[str] = set()
        _collect_refs(_pointer_get(definition, pending.pop()), found)
        pending |= found - used
        used |= found
    for section in ("definitions", "parameters", "responses"):
        for name in definition.get(section) or {}:
            if f"#/{section}/{name}" not in used:
                problems.append(f"{section}/{name}: unused (remove it from the connector definition)")
    schemes = definition.get("securityDefinitions") or {}
    if not any(isinstance(s, dict) and s.get("type") == "apiKey" and s.get("in") == "header"
               for s in schemes.values()):
        problems.append("securityDefinitions: an apiKey scheme sent in a header is required")
    return problems


def check_properties(properties: dict, definition: dict | None = None) -> list[str]:
    """Rules for ``apiProperties.json`` (and its link to the definition when given)."""
    problems = []
    props = properties.get("properties") if isinstance(properties, dict) else None
    if not isinstance(props, dict):
        return ["properties: required"]
    color = props.get("iconBrandColor")
    if not isinstance(color, str) or not _COLOR_RE.match(color):
        problems.append("properties/iconBrandColor: must be a #rrggbb colour")
    elif color.lower() in FORBIDDEN_BRAND_COLORS:
        problems.append(f"properties/iconBrandColor: {color} is not allowed for certified connectors")
    for key in ("publisher", "stackOwner"):
        if not isinstance(props.get(key), str) or not props[key].strip():
            problems.append(f"properties/{key}: required")
    caps = props.get("capabilities")
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        problems.append("properties/capabilities: must be a list of strings")
    params = props.get("connectionParameters") or {}
    key = params.get(API_KEY_PARAMETER)
    if not isinstance(key, dict) or key.get("type") != "securestring":
        problems.append(f"properties/connectionParameters/{API_KEY_PARAMETER}: must be a securestring parameter")
    for name, param in params.items():
        ui = param.get("uiDefinition") if isinstance(param, dict) else None
        if not isinstance(ui, dict) or not ui.get("displayName") or not ui.get("description"):
            problems.append(f"properties/connectionParameters/{name}: uiDefinition needs displayName and description")
    policies = props.get("policyTemplateInstances") or []
    host_policies = [p for p in policies if isinstance(p, dict) and str(p.get("templateId", "")).lower() ==
                     "dynamichosturl"]
    if not host_policies:
        problems.append("properties/policyTemplateInstances: a dynamichosturl policy for the instance host is required")
    op_ids = ({op.get("operationId") for _, _, op, _ in iter_operations(definition)} if definition else None)
    for i, policy in enumerate(policies):
        where = f"properties/policyTemplateInstances[{i}]"
        parameters = policy.get("parameters") if isinstance(policy, dict) else None
        if not isinstance(parameters, dict):
            problems.append(f"{where}: parameters are required")
            continue
        for value in parameters.values():
            for ref in _CONN_PARAM_RE.findall(value) if isinstance(value, str) else []:
                if ref not in params:
                    problems.append(f"{where}: @connectionParameters('{ref}') is not a connection parameter")
                elif params[ref].get("type") not in ("string", "securestring"):
                    problems.append(f"{where}: connection parameter {ref} must be a string")
        template = parameters.get("x-ms-apimTemplateParameter.urlTemplate")
        if str(policy.get("templateId", "")).lower() == "dynamichosturl":
            if not isinstance(template, str) or not template.startswith("https://@connectionParameters('"):
                problems.append(f"{where}: urlTemplate must be https://@connectionParameters('...')")
        if op_ids is not None:
            for name in parameters.get("x-ms-apimTemplate-operationName") or []:
                if name not in op_ids:
                    problems.append(f"{where}: operation {name} is not in the definition")
    if definition is not None:
        schemes = definition.get("securityDefinitions") or {}
        if not any(isinstance(s, dict) and s.get("type") == "apiKey" and s.get("in") == "header"
                   and s.get("name") for s in schemes.values()):
            problems.append("securityDefinitions: the api_key connection parameter needs an apiKey header scheme")
    return problems


def validate_schemas(definition: dict | None = None, properties: dict | None = None) -> list[str]:
    """Validate against the official JSON schemas (``//`` comments stripped)."""
    import jsonschema  # imported here: only the checks need it

    problems = []
    for name, data, schema_name, validator_cls in (
        (DEFINITION_FILE, definition, "apiDefinition.swagger.schema.json", jsonschema.Draft4Validator),
        (PROPERTIES_FILE, properties, "paconn-apiProperties.schema.json", jsonschema.Draft7Validator),
    ):
        if data is None:
            continue
        validator = validator_cls(load_official_schema(schema_name))
        for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
            where = "/".join(str(p) for p in error.absolute_path) or "/"
            message = error.message if len(error.message) < 300 else error.message[:297] + "..."
            problems.append(f"{name}: {where}: {message}")
    return problems


# --------------------------------------------------------------------------------------------- dynamic references


def _find_dynamic(node: Any, parts: tuple) -> Iterator[tuple[tuple, str, Any]]:
    """Every dynamic extension in a node (no $ref following): ``(parts, extension, value)``."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in DYNAMIC_EXTENSIONS:
                yield parts + (k,), k, v
            elif k not in _DATA_KEYS:
                yield from _find_dynamic(v, parts + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _find_dynamic(v, parts + (i,))


def _schema_props(doc: dict, schema: Any) -> dict:
    schema = resolve(doc, schema)
    if not isinstance(schema, dict):
        return {}
    props = dict(schema.get("properties") or {})
    for sub in schema.get("allOf") or []:
        props.update(_schema_props(doc, sub))
    return props


def _is_array(doc: dict, schema: Any) -> bool:
    schema = resolve(doc, schema)
    return isinstance(schema, dict) and (schema.get("type") == "array" or "items" in schema)


def _navigate(doc: dict, schema: Any, path: str) -> tuple[Any, str | None]:
    """Follow a ``a/b/c`` path through properties ($refs and array items followed). Returns the schema found and
    ``None``, or ``None`` and the first segment that does not exist."""
    node = resolve(doc, schema)
    for segment in [s for s in path.split("/") if s]:
        for _ in range(8):  # arrays of arrays; bounded against a self-referencing items chain
            if not _is_array(doc, node):
                break
            node = resolve(doc, resolve(doc, node).get("items"))
        props = _schema_props(doc, node)
        if segment not in props:
            return None, segment
        node = resolve(doc, props[segment])
    return node, None


def _items_of(doc: dict, schema: Any, collection: str | None, key: str, target: str) -> tuple[Any, list[str]]:
    """The item schema of the list a dropdown reads (``value-collection`` / ``itemsPath`` or the root)."""
    if collection:
        node, missing = _navigate(doc, schema, collection)
        if node is None:
            return None, [f"{key} {collection!r} is not in {target}'s response (no {missing!r})"]
    else:
        node = resolve(doc, schema)
    if not _is_array(doc, node):
        what = f"{key} {collection!r}" if collection else f"{target}'s response (no {key} given)"
        return None, [f"{what} is not an array"]
    return resolve(doc, resolve(doc, node).get("items")), []


def _check_target(doc: dict, ext: str, value: Any, ops: dict) -> list[str]:
    """Checks of a dynamic reference against the operation it calls."""
    if not isinstance(value, dict):
        return [f"{ext} must be an object"]
    opid = value.get("operationId")
    if opid is None and ext == "x-ms-dynamic-values" and (value.get("builtInOperation") or value.get("capability")):
        return []
    if not isinstance(opid, str) or not opid:
        return [f"{ext} needs an operationId"]
    if opid not in ops:
        return [f"{ext} refers to operation {opid!r}, which does not exist"]
    _, _, op, item = ops[opid]
    problems: list[str] = []
    target_params = {p.get("name"): p for p in _operation_parameters(doc, item, op)}
    given = value.get("parameters") or {}
    if not isinstance(given, dict):
        problems.append(f"{ext}: parameters must be an object")
        given = {}
    new_style = ext in ("x-ms-dynamic-list", "x-ms-dynamic-properties")
    for name, arg in given.items():
        if name not in target_params:
            problems.append(f"{ext}: parameter {name!r} is not a parameter of {opid}")
        if new_style:
            if not (isinstance(arg, dict) and len(arg) == 1 and set(arg) <= {"value", "parameterReference"}):
                problems.append(f"{ext}: parameter {name!r} must be {{value: ...}} or {{parameterReference: ...}}")
        elif isinstance(arg, dict) and not ({"parameter"} <= set(arg) or "value" in arg):
            problems.append(f"{ext}: parameter {name!r} must be a literal, {{parameter: ...}} or {{value: ...}}")
    for name, param in target_params.items():
        if param.get("required") and "default" not in param and name not in given:
            problems.append(f"{ext}: {opid} requires parameter {name!r}, which the reference does not supply")
    schema = _success_schema(doc, op)
    if schema is None:
        return problems + [f"{ext}: {opid} has no 2xx response schema"]
    if ext in ("x-ms-dynamic-values", "x-ms-dynamic-list"):
        coll_key, value_key, title_key = (("value-collection", "value-path", "value-title") if ext ==
                                          "x-ms-dynamic-values" else ("itemsPath", "itemValuePath", "itemTitlePath"))
        item_schema, errs = _items_of(doc, schema, value.get(coll_key), coll_key, opid)
        problems += [f"{ext}: {e}" for e in errs]
        if item_schema is not None:
            if not value.get(value_key):
                problems.append(f"{ext}: {value_key} is required")
            for key in (value_key, title_key):
                path = value.get(key)
                if path:
                    found, missing = _navigate(doc, item_schema, path)
                    if found is None:
                        problems.append(f"{ext}: {key} {path!r} is not in the items of {opid}'s response "
                                        f"(no {missing!r})")
    else:
        key = "value-path" if ext == "x-ms-dynamic-schema" else "itemValuePath"
        path = value.get(key)
        if path:
            found, missing = _navigate(doc, schema, path)
            if found is None:
                problems.append(f"{ext}: {key} {path!r} is not in {opid}'s response (no {missing!r})")
    return problems


def _caller_reference_ok(doc: dict, caller_params: list[dict], ref: str) -> bool:
    """``name`` or ``name/prop/...`` refers to a caller parameter (or a body property of one)."""
    segments = [s for s in ref.split("/") if s]
    if not segments:
        return False
    head, *rest = segments
    by_name = {p.get("name"): p for p in caller_params}
    body_props = {}
    for p in caller_params:
        if p.get("in") == "body":
            body_props.update(_schema_props(doc, p.get("schema")))
    if head in by_name:
        param = by_name[head]
        if not rest:
            return True
        return param.get("in") == "body" and _navigate(doc, param.get("schema"), "/".join(rest))[0] is not None
    if head in body_props:  # a sibling body property, as the older x-ms-dynamic-values form allows
        return not rest or _navigate(doc, body_props[head], "/".join(rest))[0] is not None
    return False


def check_dynamic_references(spec: dict) -> list[str]:
    """Resolve every ``x-ms-dynamic-values/-list/-schema/-properties`` of the document: the referenced operation
    exists, its parameters exist and are supplied, the value/title/collection paths exist in its 2xx response
    schema, and the caller-side parameter references exist on the calling operation."""
    doc = spec
    ops = {op.get("operationId"): (path, method, op, item) for path, method, op, item in iter_operations(doc)
           if op.get("operationId")}
    problems: list[str] = []
    for parts, ext, value in _find_dynamic(doc, ()):
        problems += [f"{_loc(doc, parts[:-1])}: {msg}" for msg in _check_target(doc, ext, value, ops)]
    # Caller side: {parameter: x} / {parameterReference: x/y} must exist on every operation that uses the
    # extension (directly or through a $ref'd definition).
    for path, method, op, item in iter_operations(doc):
        caller_params = _operation_parameters(doc, item, op)
        label = _op_label(path, method, op)
        for parts, ext, value in _dynamic_in_operation(doc, path, method, item, op):
            args = value.get("parameters") if isinstance(value, dict) else None
            for name, arg in (args or {}).items() if isinstance(args, dict) else []:
                ref = arg.get("parameter") or arg.get("parameterReference") if isinstance(arg, dict) else None
                if isinstance(ref, str) and not _caller_reference_ok(doc, caller_params, ref):
                    problems.append(f"{_loc(doc, parts[:-1])}: {ext}: parameter {name!r} refers to {ref!r}, "
                                    f"which is not a parameter of {label}")
    return list(dict.fromkeys(problems))


def _dynamic_in_operation(doc: dict, path: str, method: str, item: dict, op: dict) -> Iterator[tuple]:
    """Dynamic extensions an operation uses, following $refs into definitions (each target once)."""
    roots = [(("paths", path, "parameters"), item.get("parameters") or []),
             (("paths", path, method, "parameters"), op.get("parameters") or []),
             (("paths", path, method, "responses"), op.get("responses") or {})]
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        parts, node = stack.pop()
        yield from _find_dynamic(node, parts)
        refs: set[str] = set()
        _collect_refs(node, refs)
        for ref in sorted(refs - seen):
            seen.add(ref)
            target = _pointer_get(doc, ref)
            if target is not None:
                stack.append((tuple(ref[2:].split("/")), target))


def _has_dropdown(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if any(k in schema for k in DROPDOWN_EXTENSIONS):
        return True
    items = schema.get("items")
    return isinstance(items, dict) and any(k in items for k in DROPDOWN_EXTENSIONS)


def check_dropdown_parameters(spec: dict, names: Iterable[str] = DROPDOWN_PARAMETER_NAMES) -> list[str]:
    """Every path/query/body parameter (and body property, nested) named in ``names`` (case-insensitive) carries
    ``x-ms-dynamic-values`` or ``x-ms-dynamic-list``. Operations left out of the connector and internal
    operations/parameters (dropdown helpers, not shown to makers) are skipped."""
    wanted = {n.lower() for n in names}
    doc = spec
    problems: list[str] = []
    for path, method, op, item in iter_operations(doc):
        if _is_excluded(op) or op.get("x-ms-visibility") == "internal":
            continue
        label = _op_label(path, method, op)
        for param in _operation_parameters(doc, item, op):
            if param.get("x-ms-visibility") == "internal":
                continue
            name, location = str(param.get("name")), param.get("in")
            if location in ("path", "query") and name.lower() in wanted and not _has_dropdown(param):
                problems.append(f"{label}: {location} parameter {name!r} needs a dropdown "
                                "(x-ms-dynamic-values or x-ms-dynamic-list)")
            if location == "body":
                _dropdown_props(doc, param.get("schema"), f"{label}: body", wanted, problems, set())
    return problems


def _dropdown_props(doc: dict, schema: Any, where: str, wanted: set[str], problems: list[str],
                    seen: set[int]) -> None:
    schema = resolve(doc, schema)
    if not isinstance(schema, dict) or id(schema) in seen:
        return
    seen.add(id(schema))
    for name, prop in _schema_props(doc, schema).items():
        resolved = resolve(doc, prop)
        if not isinstance(resolved, dict) or resolved.get("x-ms-visibility") == "internal":
            continue
        if name.lower() in wanted and not (_has_dropdown(prop) or _has_dropdown(resolved)):
            problems.append(f"{where} property {name!r} needs a dropdown (x-ms-dynamic-values or x-ms-dynamic-list)")
        _dropdown_props(doc, resolved, f"{where}.{name}", wanted, problems, seen)
    if _is_array(doc, schema):
        _dropdown_props(doc, schema.get("items"), where, wanted, problems, seen)


# --------------------------------------------------------------------------------------------- output checks


def check_output_current(out_dir: str | os.PathLike = OUT_DIR, spec: dict | None = None) -> list[str]:
    """The checked-in folder equals what the generator produces (with the host recorded in it)."""
    out = Path(out_dir)
    hint = "run `python -m service.connector build` and commit connector-definition/"
    current = out / DEFINITION_FILE
    if not current.is_file():
        return [f"{current} is missing: {hint}"]
    try:
        host = json.loads(current.read_text(encoding="utf-8")).get("host") or default_host()
        expected = render_files(spec if spec is not None else load_spec(), host)
    except (ValueError, ConnectorError) as exc:
        return [f"{current}: cannot compare ({exc}): {hint}"]
    problems = []
    for name, data in expected.items():
        target = out / name
        if not target.is_file():
            problems.append(f"{target} is missing: {hint}")
            continue
        actual = target.read_bytes()
        if name == ICON_FILE:
            # Compare pixels, not bytes: another zlib build may compress the same image differently.
            try:
                same = decode_png(actual) == decode_png(data)
            except (ConnectorError, zlib.error, struct.error):
                same = False
        else:
            same = actual == data
        if not same:
            problems.append(f"{target} differs from what the generator produces: {hint}")
    return problems


def check_all(spec_path: str | os.PathLike = SPEC_PATH, out_dir: str | os.PathLike = OUT_DIR) -> list[str]:
    """Everything ``python -m service.connector check`` verifies."""
    spec = load_spec(spec_path)
    out = Path(out_dir)
    problems = [f"openapi.yaml: {p}" for p in check_rules(spec)]
    problems += [f"openapi.yaml: {p}" for p in check_dynamic_references(spec)]
    problems += [f"openapi.yaml: {p}" for p in check_dropdown_parameters(spec)]
    host = default_host()
    if (out / DEFINITION_FILE).is_file():
        try:
            host = json.loads((out / DEFINITION_FILE).read_text(encoding="utf-8")).get("host") or host
        except ValueError:
            pass
    definition = build_definition(spec, host)
    properties = build_properties(definition["host"], definition.get("basePath", "/"))
    problems += [f"{DEFINITION_FILE}: {p}" for p in check_rules(definition)]
    problems += [f"{DEFINITION_FILE}: {p}" for p in check_connector_definition(definition)]
    problems += [f"{PROPERTIES_FILE}: {p}" for p in check_properties(properties, definition)]
    problems += validate_schemas(definition, properties)
    problems += check_output_current(out, spec)
    return list(dict.fromkeys(problems))


# --------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.connector",
                                     description="Build or check the Power Platform connector definition.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="generate connector-definition/ from openapi.yaml")
    build.add_argument("--host", default=None,
                       help=f"public host name of the service (default: $PUBLIC_HOST or {DEFAULT_HOST})")
    build.add_argument("--out", default=str(OUT_DIR), help="output folder (default: connector-definition)")
    build.add_argument("--spec", default=str(SPEC_PATH), help="source spec (default: openapi.yaml)")
    check = sub.add_parser("check", help="check the rules; exit 1 with the list of violations")
    check.add_argument("--out", default=str(OUT_DIR),
                       help="connector folder to compare (default: connector-definition)")
    check.add_argument("--spec", default=str(SPEC_PATH), help="source spec (default: openapi.yaml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            spec = load_spec(args.spec)
            for path in write_all(args.out, args.host or default_host(), spec=spec):
                print(f"wrote {path}")
            problems = check_rules(spec)
            if problems:
                print(f"warning: openapi.yaml has {len(problems)} rule violation(s); run "
                      "`python -m service.connector check`", file=sys.stderr)
            return 0
        problems = check_all(args.spec, args.out)
    except (ConnectorError, OSError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if problems:
        print(f"{len(problems)} violation(s):")
        for problem in problems:
            print(f"- {problem}")
        return 1
    print("connector definition ok: every rule passes and connector-definition/ is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
