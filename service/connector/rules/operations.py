"""Certification rules on an operation's parts: its parameters (labels, internal defaults, body schemas, path
parameters), the properties of every schema it uses, and its responses (a 2xx with a typed schema, meaningful
descriptions, a default without schema)."""

from __future__ import annotations

import re
from typing import Any

from service.connector.rules.texts import check_labels
from service.connector.rules.triggers import is_polling_trigger
from service.connector.spec import location_of, resolve


def check_parameter(doc: dict, param: Any, parts: tuple, problems: list[str]) -> None:
    where = location_of(doc, parts)
    if not isinstance(param, dict):
        problems.append(f"{where}: parameter must be an object")
        return
    if "$ref" in param:
        return  # checked under #/parameters
    name = param.get("name")
    where = f"{where} ({name})" if name else where
    problems += check_labels(param, where)
    location = param.get("in")
    if param.get("x-ms-visibility") == "internal" and param.get("required") is True and "default" not in param:
        problems.append(f"{where}: internal required parameter needs a default")
    if location == "body":
        if not isinstance(param.get("schema"), dict):
            problems.append(f"{where}: body parameter needs a schema")
        else:
            check_schema_properties(doc, param["schema"], parts + ("schema",), problems)
    if location == "path":
        if param.get("required") is not True:
            problems.append(f"{where}: path parameter must be required")
        if param.get("type") == "string" and param.get("x-ms-url-encoding") not in ("single", "double"):
            problems.append(f"{where}: string path parameter needs x-ms-url-encoding (single or double)")


def check_schema_properties(doc: dict, schema: Any, parts: tuple, problems: list[str]) -> None:
    """Every property (inline, nested objects, array items, additionalProperties, allOf) has ``x-ms-summary``
    and ``description``; internal required properties have a default. ``$ref``'d definitions are checked where
    they are defined."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return
    props = schema.get("properties")
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    if isinstance(props, dict):
        for name, prop in props.items():
            where = location_of(doc, parts + ("properties", name))
            if not isinstance(prop, dict):
                problems.append(f"{where}: property must be a schema object")
                continue
            if set(prop) != {"$ref"}:
                problems += check_labels(prop, where)
                # a webhook trigger's callback URL is filled in by the platform itself (x-ms-notification-url)
                if prop.get("x-ms-visibility") == "internal" and name in required and "default" not in prop \
                        and prop.get("x-ms-notification-url") is not True:
                    problems.append(f"{where}: internal required property needs a default")
            check_schema_properties(doc, prop, parts + ("properties", name), problems)
    items = schema.get("items")
    if isinstance(items, dict):
        check_schema_properties(doc, items, parts + ("items",), problems)
    elif isinstance(items, list):
        for i, item in enumerate(items):
            check_schema_properties(doc, item, parts + ("items", i), problems)
    if isinstance(schema.get("additionalProperties"), dict):
        check_schema_properties(doc, schema["additionalProperties"], parts + ("additionalProperties",), problems)
    for i, sub in enumerate(schema.get("allOf") or []):
        check_schema_properties(doc, sub, parts + ("allOf", i), problems)


def check_responses(doc: dict, op: dict, parts: tuple, problems: list[str]) -> None:
    where = location_of(doc, parts)
    responses = op.get("responses")
    if not isinstance(responses, dict) or not responses:
        problems.append(f"{where}: responses are required")
        return
    success = [c for c in responses if re.fullmatch(r"2\d\d", str(c))]
    if not success:
        problems.append(f"{where}: a 2xx response is required (default must not be the only response)")
    for code, raw in responses.items():
        rwhere = location_of(doc, parts + ("responses", code))
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
        if code == "202" and is_polling_trigger(op) and "schema" not in resp:
            continue  # a polling trigger's "nothing new yet": Location + Retry-After, no body
        if code in success and code != "204":
            schema = resolve(doc, resp.get("schema"))
            if not isinstance(schema, dict):
                problems.append(f"{rwhere}: 2xx response needs a schema (only 204 may have none)")
            elif not schema.get("type"):
                problems.append(f"{rwhere}: 2xx response schema needs a declared type")
        if isinstance(raw, dict) and "$ref" not in raw and isinstance(resp.get("schema"), dict):
            check_schema_properties(doc, resp["schema"], parts + ("responses", code, "schema"), problems)
