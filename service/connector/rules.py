"""Certification rules (summaries, labels, responses, info, refs, test connection, apiProperties) and the
official JSON schemas."""

from __future__ import annotations

import re
import string
from typing import Any

from service.connector.spec import (
    _COLOR_RE,
    _CONN_PARAM_RE,
    _DATA_KEYS,
    _HOST_RE,
    _NAME_MAPS,
    _PASCAL_RE,
    _PATH_TEMPLATE_RE,
    _REF_RE,
    ALLOWED_CATEGORIES,
    API_KEY_PARAMETER,
    DEFINITION_FILE,
    ENTRA_REDIRECT_MODE,
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    FORBIDDEN_BRAND_COLORS,
    HTTP_METHODS,
    PRODUCT_NAMES,
    PROPER_NOUNS,
    PROPERTIES_FILE,
    REQUIRED_CATEGORY,
    SUMMARY_FORBIDDEN,
    SUMMARY_MAX,
    TITLE_MAX,
    TOKEN_PARAMETER,
    VISIBILITIES,
    _collect_refs,
    _loc,
    _op_label,
    _operation_parameters,
    _pointer_get,
    iter_operations,
    load_official_schema,
    resolve,
)


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
                # a webhook trigger's callback URL is filled in by the platform itself (x-ms-notification-url)
                if prop.get("x-ms-visibility") == "internal" and name in required and "default" not in prop \
                        and prop.get("x-ms-notification-url") is not True:
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
        if code == "202" and _polling_trigger(op) and "schema" not in resp:
            continue  # a polling trigger's "nothing new yet": Location + Retry-After, no body
        if code in success and code != "204":
            schema = resolve(doc, resp.get("schema"))
            if not isinstance(schema, dict):
                problems.append(f"{rwhere}: 2xx response needs a schema (only 204 may have none)")
            elif not schema.get("type"):
                problems.append(f"{rwhere}: 2xx response schema needs a declared type")
        if isinstance(raw, dict) and "$ref" not in raw and isinstance(resp.get("schema"), dict):
            _check_schema_properties(doc, resp["schema"], parts + ("responses", code, "schema"), problems)


TRIGGER_KINDS = ("single", "batch")
POLLING_METADATA = {"kind": "query", "mode": "polling"}


def _polling_trigger(op: dict) -> bool:
    meta = op.get("x-ms-trigger-metadata")
    return bool(op.get("x-ms-trigger")) and isinstance(meta, dict) and meta.get("mode") == "polling"


def _check_trigger(doc: dict, op: dict, method: str, parts: tuple, problems: list[str]) -> None:
    """Triggers (reference §3, §4.2): kind, hint, polling metadata, and the polling answer shapes - 200 with the
    events (an array for a batch trigger, bare or in ``value``) and 202 for "nothing new" (Location)."""
    kind = op.get("x-ms-trigger")
    if kind is None:
        return
    where = _loc(doc, parts)
    if kind not in TRIGGER_KINDS:
        problems.append(f"{where}: x-ms-trigger must be single or batch")
    hint = op.get("x-ms-trigger-hint")
    if not isinstance(hint, str) or not hint.strip():
        problems.append(f"{where}: a trigger needs an x-ms-trigger-hint (how to make it fire)")
    meta = op.get("x-ms-trigger-metadata")
    notification = isinstance(op.get("parameters"), list) and any(
        isinstance(resolve(doc, p), dict) and _has_notification_url(doc, resolve(doc, p)) for p in op["parameters"])
    if meta is None and not notification:
        problems.append(f"{where}: a polling trigger needs x-ms-trigger-metadata {POLLING_METADATA}")
    if meta is None:
        return
    if meta != POLLING_METADATA:
        problems.append(f"{where}: x-ms-trigger-metadata must be {POLLING_METADATA}")
        return
    if method != "get":
        problems.append(f"{where}: a polling trigger must be a GET operation")
    responses = op.get("responses") if isinstance(op.get("responses"), dict) else {}
    if "202" not in responses:
        problems.append(f"{where}: a polling trigger needs a 202 response (nothing new yet; Location, Retry-After)")
    ok = resolve(doc, responses.get("200"))
    schema = resolve(doc, ok.get("schema")) if isinstance(ok, dict) else None
    if not isinstance(schema, dict):
        problems.append(f"{where}: a polling trigger needs a 200 response with the events' schema")
    elif kind == "batch":
        value = resolve(doc, (schema.get("properties") or {}).get("value")) if schema.get("type") == "object" \
            else schema
        if not (isinstance(value, dict) and value.get("type") == "array"):
            problems.append(f"{where}: a batch trigger answers an array (bare, or as the value of an object)")


def _has_notification_url(doc: dict, param: dict) -> bool:
    if param.get("x-ms-notification-url") is True:
        return True
    schema = resolve(doc, param.get("schema"))
    props = schema.get("properties") if isinstance(schema, dict) else None
    return isinstance(props, dict) and any(isinstance(v, dict) and v.get("x-ms-notification-url") is True
                                           for v in props.values())


def has_triggers(definition: dict) -> bool:
    return any(op.get("x-ms-trigger") for _, _, op, _ in iter_operations(definition))


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
        _check_trigger(doc, op, method, parts, problems)
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
    for name, scheme in schemes.items():
        if isinstance(scheme, dict) and scheme.get("type") == "oauth2":
            if scheme.get("flow") != "accessCode":
                problems.append(f"securityDefinitions/{name}: an Entra ID sign-in uses flow accessCode")
            for url_key in ("authorizationUrl", "tokenUrl"):
                if not str(scheme.get(url_key, "")).startswith("https://login.microsoftonline.com/"):
                    problems.append(f"securityDefinitions/{name}: {url_key} must be a Microsoft Entra ID endpoint "
                                    "(https://login.microsoftonline.com/...)")
    security = definition.get("security")
    for requirement in security if isinstance(security, list) else []:
        for name in requirement if isinstance(requirement, dict) else []:
            if name not in schemes:
                problems.append(f"security: {name} is not in securityDefinitions")
    return problems


def _parameter_groups(props: dict, problems: list[str]) -> list[tuple[str, dict]]:
    """``[(location, parameters)]``: the flat ``connectionParameters``, or one entry per connection type of
    ``connectionParameterSets`` (whose own structure is checked here)."""
    sets = props.get("connectionParameterSets")
    if sets is None:
        params = props.get("connectionParameters")
        return [("properties/connectionParameters", params if isinstance(params, dict) else {})]
    where = "properties/connectionParameterSets"
    if "connectionParameters" in props:
        problems.append(f"{where}: use either connectionParameters or connectionParameterSets, not both")
    if not isinstance(sets, dict):
        problems.append(f"{where}: must be an object with uiDefinition and values")
        return []
    ui = sets.get("uiDefinition")
    if not isinstance(ui, dict) or not ui.get("displayName") or not ui.get("description"):
        problems.append(f"{where}: uiDefinition needs displayName and description")
    values = sets.get("values")
    if not isinstance(values, list) or len(values) < 2:
        problems.append(f"{where}/values: at least two connection types are needed (else use connectionParameters)")
        values = values if isinstance(values, list) else []
    groups, names = [], set()
    for i, value in enumerate(values):
        loc = f"{where}/values[{i}]"
        if not isinstance(value, dict):
            problems.append(f"{loc}: must be an object")
            continue
        name = value.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) or name in names:
            problems.append(f"{loc}: needs a unique name (letters, digits, - and _)")
        names.add(name)
        vui = value.get("uiDefinition")
        if not isinstance(vui, dict) or not vui.get("displayName") or not vui.get("description"):
            problems.append(f"{loc}: uiDefinition needs displayName and description")
        params = value.get("parameters")
        if not isinstance(params, dict) or not params:
            problems.append(f"{loc}: parameters are required")
            continue
        for pname, param in params.items():
            constraints = ((param.get("uiDefinition") or {}).get("constraints") or {}) if isinstance(param, dict) \
                else {}
            if constraints.get("required") != "true":  # mandatory for every parameter of a set (multi-auth docs)
                problems.append(f"{loc}/parameters/{pname}: uiDefinition.constraints.required must be \"true\"")
        groups.append((f"{loc}/parameters", params))
    return groups


def _check_entra_token(param: Any, where: str) -> list[str]:
    """The Entra ID connection: identity provider aad, the connector app's client id, the service's app id URI
    as resource, the Microsoft login host, a per-connector redirect, not first party."""
    problems = []
    settings = param.get("oAuthSettings") if isinstance(param, dict) else None
    if not isinstance(param, dict) or param.get("type") != "oauthSetting" or not isinstance(settings, dict):
        return [f"{where}: must be an oauthSetting parameter with oAuthSettings"]
    if settings.get("identityProvider") != "aad":
        problems.append(f"{where}: identityProvider must be aad (Microsoft Entra ID)")
    if not isinstance(settings.get("clientId"), str) or not settings["clientId"].strip():
        problems.append(f"{where}: clientId (the connector's app registration) is required")
    custom = settings.get("customParameters") if isinstance(settings.get("customParameters"), dict) else {}

    def value(key: str) -> str:
        entry = custom.get(key)
        v = entry.get("value") if isinstance(entry, dict) else None
        return v.strip() if isinstance(v, str) else ""

    if not value("resourceUri"):
        problems.append(f"{where}: customParameters.resourceUri (the service's Application ID URI) is required")
    if value("loginUri") not in ("https://login.microsoftonline.com", "https://login.windows.net"):
        problems.append(f"{where}: customParameters.loginUri must be https://login.microsoftonline.com")
    if not value("tenantId"):
        problems.append(f"{where}: customParameters.tenantId is required (common for any tenant)")
    if settings.get("redirectMode") != ENTRA_REDIRECT_MODE:
        problems.append(f"{where}: redirectMode must be {ENTRA_REDIRECT_MODE} (per-connector redirect URI, "
                        "mandatory for OAuth connectors)")
    if ((settings.get("properties") or {}).get("IsFirstParty")) != "False":
        problems.append(f"{where}: properties.IsFirstParty must be \"False\"")
    return problems


def check_properties(properties: dict, definition: dict | None = None) -> list[str]:
    """Rules for ``apiProperties.json`` (and its link to the definition when given)."""
    problems: list[str] = []
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
    elif definition is not None:
        triggers = has_triggers(definition)
        actions = any(not op.get("x-ms-trigger") for _, _, op, _ in iter_operations(definition))
        for name, present in (("actions", actions), ("triggers", triggers)):
            if present and name not in caps:
                problems.append(f"properties/capabilities: must list {name!r} (the definition has {name})")
            if not present and name in caps:
                problems.append(f"properties/capabilities: lists {name!r} but the definition has none")
    groups = _parameter_groups(props, problems)
    key_groups = [g for g in groups if API_KEY_PARAMETER in g[1]]
    for loc, params in key_groups:
        if not isinstance(params[API_KEY_PARAMETER], dict) or params[API_KEY_PARAMETER].get("type") != "securestring":
            problems.append(f"{loc}/{API_KEY_PARAMETER}: must be a securestring parameter")
    if not key_groups:
        where = groups[0][0] if len(groups) == 1 else "properties/connectionParameterSets"
        problems.append(f"{where}/{API_KEY_PARAMETER}: must be a securestring parameter (an API key connection "
                        "is required)")
    token_groups = [g for g in groups if TOKEN_PARAMETER in g[1]]
    for loc, params in token_groups:
        problems += _check_entra_token(params[TOKEN_PARAMETER], f"{loc}/{TOKEN_PARAMETER}")
    for loc, params in groups:
        for name, param in params.items():
            ui = param.get("uiDefinition") if isinstance(param, dict) else None
            if not isinstance(ui, dict) or not ui.get("displayName") or not ui.get("description"):
                problems.append(f"{loc}/{name}: uiDefinition needs displayName and description")
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
                missing = [loc for loc, params in groups if ref not in params]
                if missing or not groups:
                    problems.append(f"{where}: @connectionParameters('{ref}') is not a connection parameter"
                                    + (f" of {', '.join(missing)}" if len(groups) > 1 else ""))
                elif any(params[ref].get("type") not in ("string", "securestring") for _, params in groups):
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
        if key_groups and not any(isinstance(s, dict) and s.get("type") == "apiKey" and s.get("in") == "header"
                                  and s.get("name") for s in schemes.values()):
            problems.append("securityDefinitions: the api_key connection parameter needs an apiKey header scheme")
        has_oauth = any(isinstance(s, dict) and s.get("type") == "oauth2" for s in schemes.values())
        if token_groups and not has_oauth:
            problems.append("securityDefinitions: the Entra ID connection (token) needs an oauth2 scheme")
        if has_oauth and not token_groups:
            problems.append("properties/connectionParameterSets: the definition's oauth2 scheme needs an Entra ID "
                            f"connection type with a {TOKEN_PARAMETER} parameter")
    return problems


#: ``connectionParameterSets`` (multi-auth, learn.microsoft.com/connectors/custom-connectors/multi-auth) is newer
#: than the paconn schema, whose ``properties`` allow no such key: the wrapper is checked against this schema, and
#: each connection type's parameters against the official schema as the ``connectionParameters`` they replace.
CONNECTION_PARAMETER_SETS_SCHEMA: dict = {
    "type": "object",
    "required": ["uiDefinition", "values"],
    "additionalProperties": False,
    "properties": {
        "uiDefinition": {"$ref": "#/definitions/ui"},
        "values": {
            "type": "array",
            "minItems": 2,
            "items": {
                "type": "object",
                "required": ["name", "uiDefinition", "parameters"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]*$"},
                    "uiDefinition": {"$ref": "#/definitions/ui"},
                    "metadata": {"type": "object", "additionalProperties": False,
                                 "properties": {"allowSharing": {"type": "boolean"}}},
                    "parameters": {"type": "object", "minProperties": 1},
                },
            },
        },
    },
    "definitions": {
        "ui": {"type": "object", "required": ["displayName", "description"], "additionalProperties": False,
               "properties": {"displayName": {"type": "string"}, "description": {"type": "string"},
                              "constraints": {"type": "object"}}},
    },
}


def _current_platform(schema: dict) -> dict:
    """The paconn schema with what the platform accepts today and the schema predates: ``redirectMode``
    ``GlobalPerConnector`` (per-connector redirect URIs, mandatory for OAuth connectors since February 2024)."""
    import copy

    schema = copy.deepcopy(schema)
    mode = (((schema.get("definitions") or {}).get("oAuthSettings") or {}).get("properties") or {}).get(
        "redirectMode")
    if isinstance(mode, dict) and isinstance(mode.get("enum"), list) and ENTRA_REDIRECT_MODE not in mode["enum"]:
        mode["enum"] = [*mode["enum"], ENTRA_REDIRECT_MODE]
    return schema


def _schema_errors(validator, data: Any, prefix: str, rename: tuple[str, str] | None = None) -> list[str]:
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in error.absolute_path) or "/"
        if rename and where.startswith(rename[0]):
            where = rename[1] + where[len(rename[0]):]
        message = error.message if len(error.message) < 300 else error.message[:297] + "..."
        problems.append(f"{prefix}: {where}: {message}")
    return problems


def validate_schemas(definition: dict | None = None, properties: dict | None = None) -> list[str]:
    """Validate against the official JSON schemas (``//`` comments stripped). ``apiProperties.json`` with
    ``connectionParameterSets``: the wrapper against :data:`CONNECTION_PARAMETER_SETS_SCHEMA`, and each
    connection type as if its parameters were the ``connectionParameters``."""
    import copy

    import jsonschema  # imported here: only the checks need it

    problems = []
    if definition is not None:
        validator = jsonschema.Draft4Validator(load_official_schema("apiDefinition.swagger.schema.json"))
        problems += _schema_errors(validator, definition, DEFINITION_FILE)
    if properties is not None:
        validator = jsonschema.Draft7Validator(_current_platform(load_official_schema(
            "paconn-apiProperties.schema.json")))
        props = properties.get("properties") if isinstance(properties, dict) else None
        sets = props.get("connectionParameterSets") if isinstance(props, dict) else None
        if sets is None:
            problems += _schema_errors(validator, properties, PROPERTIES_FILE)
        else:
            problems += _schema_errors(jsonschema.Draft7Validator(CONNECTION_PARAMETER_SETS_SCHEMA), sets,
                                       f"{PROPERTIES_FILE}: properties/connectionParameterSets")
            values = sets.get("values") if isinstance(sets, dict) else None
            for i, value in enumerate(values if isinstance(values, list) else []):
                doc = copy.deepcopy(properties)
                doc["properties"].pop("connectionParameterSets")
                doc["properties"]["connectionParameters"] = (value.get("parameters") or {}) \
                    if isinstance(value, dict) else {}
                problems += _schema_errors(validator, doc, PROPERTIES_FILE, (
                    "properties/connectionParameters", f"properties/connectionParameterSets/values/{i}/parameters"))
    return list(dict.fromkeys(problems))
