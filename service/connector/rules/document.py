"""The certification rules (reference §2) on a whole Swagger 2.0 document, the source spec or the generated
definition: operation ids, summaries and descriptions, each operation's parts (:mod:`.operations`, :mod:`.triggers`),
the shared parameters, responses and definitions, ``$ref`` targets and the test connection."""

from __future__ import annotations

from typing import Any

from service.connector.rules.operations import check_parameter, check_responses, check_schema_properties
from service.connector.rules.texts import check_info, check_summary
from service.connector.rules.triggers import check_trigger
from service.connector.spec import (
    DATA_KEYS,
    HTTP_METHODS,
    PASCAL_RE,
    PATH_TEMPLATE_RE,
    REF_RE,
    VISIBILITIES,
    iter_operations,
    location_of,
    operation_label,
    operation_parameters,
    pointer_get,
)


def check_rules(definition: dict) -> list[str]:
    """The certification rules (reference §2) on a Swagger 2.0 document: the source spec or the generated
    definition. Returns human-readable violations, empty when the document complies."""
    doc = definition
    problems = check_info(doc)
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
        where = operation_label(path, method, op)
        opid = op.get("operationId")
        if not isinstance(opid, str) or not opid:
            problems.append(f"{where}: operationId is required")
        else:
            if not PASCAL_RE.match(opid):
                problems.append(f"{where}: operationId must be PascalCase (letters and digits, no _ or -)")
            if opid.lower() in seen_ids:
                problems.append(f"{where}: operationId is not unique (also on {seen_ids[opid.lower()]})")
            seen_ids.setdefault(opid.lower(), f"{method.upper()} {path}")
        summary = op.get("summary")
        problems += check_summary(summary, where)
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
                check_parameter(doc, param, pparts, problems)
        declared = {p.get("name") for p in operation_parameters(doc, item, op) if p.get("in") == "path"}
        for name in PATH_TEMPLATE_RE.findall(path):
            if name not in declared:
                problems.append(f"{where}: path parameter {{{name}}} is not declared")
        check_responses(doc, op, parts, problems)
        check_trigger(doc, op, method, parts, problems)
    for name, param in (doc.get("parameters") or {}).items():
        check_parameter(doc, param, ("parameters", name), problems)
    for name, resp in (doc.get("responses") or {}).items():
        if isinstance(resp, dict) and isinstance(resp.get("schema"), dict):
            check_schema_properties(doc, resp["schema"], ("responses", name, "schema"), problems)
    for name, schema in (doc.get("definitions") or {}).items():
        check_schema_properties(doc, schema, ("definitions", name), problems)
    for path, item in (doc.get("paths") or {}).items():
        content = item.get("x-ms-notification-content") if isinstance(item, dict) else None
        if isinstance(content, dict) and isinstance(content.get("schema"), dict):
            check_schema_properties(doc, content["schema"], ("paths", path, "x-ms-notification-content", "schema"),
                                     problems)
    check_refs(doc, doc, (), problems)
    problems += check_test_connection(doc)
    return problems


def check_refs(doc: dict, node: Any, parts: tuple, problems: list[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if "$ref" in node:
            where = location_of(doc, parts)
            if not isinstance(ref, str) or not REF_RE.match(ref):
                problems.append(f"{where}: $ref {ref!r} must point to #/definitions/X, #/parameters/X or "
                                "#/responses/X")
            elif pointer_get(doc, ref) is None:
                problems.append(f"{where}: $ref {ref} points to nothing")
        for k, v in node.items():
            if k not in DATA_KEYS and not (k.startswith("x-ms-") and k not in ("x-ms-notification-content",)):
                check_refs(doc, v, parts + (k,), problems)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_refs(doc, v, parts + (i,), problems)


def check_test_connection(doc: dict) -> list[str]:
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
    for param in operation_parameters(doc, item, op):
        if param.get("required") and "default" not in param and param.get("name") not in given:
            problems.append(f"{where}: {test['operationId']} requires parameter {param.get('name')!r}, "
                            "which testConnection does not supply")
    return problems
