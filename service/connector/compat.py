"""A stable contract: the breaking-change rules Power Platform's certification applies between the last
released connector definition and the one generated now (``shared/reference/connector-anchors.md`` §3).

Between the released copy (``connector-definition/released/apiDefinition.swagger.json``, changed only by
``python -m service.connector release``) and the generated definition:

* no operation removed ("The operation has been deleted");
* no required input added: a new required parameter, a parameter or body field that became required, or a new
  required field inside the body ("The required input field has been added");
* no output field removed from a success response ("The output field has been deleted");
* no type changed, of an input or of an output field ("The type has been changed for the output field").

Adding operations, optional inputs and output fields is fine. An incompatible change needs a new version of
the operation: a new operationId with ``x-ms-api-annotation: {family: <first version's operationId>,
revision: <n>}``, while the old one stays as it was and is marked ``deprecated: true`` ("(deprecated)" in its
summary). :func:`check_versioning` checks that every older revision of a family is deprecated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.connector.spec import DEFINITION_FILE, OUT_DIR, iter_operations, resolve

RELEASED_DIR = OUT_DIR / "released"
RELEASED_PATH = RELEASED_DIR / DEFINITION_FILE
_MAX_DEPTH = 12  # schemas are walked this deep (recursive definitions end there)


def load_released(path: str | Path = RELEASED_PATH) -> dict | None:
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _operations(doc: dict) -> dict[str, tuple[str, str, dict, dict]]:
    return {op["operationId"]: (path, method, op, item) for path, method, op, item in iter_operations(doc)
            if isinstance(op.get("operationId"), str)}


def _parameters(doc: dict, item: dict, op: dict) -> dict[tuple[str, str], dict]:
    merged: dict[tuple[str, str], dict] = {}
    for source in (item.get("parameters") or [], op.get("parameters") or []):
        for raw in source:
            param = resolve(doc, raw)
            if isinstance(param, dict) and param.get("name"):
                merged[(param.get("in", ""), param["name"])] = param
    return merged


def _schema(doc: dict, node: Any) -> dict:
    node = resolve(doc, node)
    return node if isinstance(node, dict) else {}


def _type(schema: dict) -> str | None:
    t = schema.get("type")
    if t is None and "properties" in schema:
        return "object"
    return t if isinstance(t, str) else None


def _required_fields(old_doc: dict, old: dict, new_doc: dict, new: dict, where: str, depth: int = 0) -> list[str]:
    """Input schema: fields required now that were not required before (within objects both have)."""
    old, new = _schema(old_doc, old), _schema(new_doc, new)
    if depth > _MAX_DEPTH:
        return []
    problems = []
    old_required = set(old.get("required") or [])
    old_props = old.get("properties") or {}
    for name in new.get("required") or []:
        if name not in old_required:
            state = "is now required" if name in old_props else "is new and required"
            problems.append(f"{where}.{name}: the required input field has been added ({state})")
    new_props = new.get("properties") or {}
    for name, old_prop in old_props.items():
        if name in new_props:
            problems += _required_fields(old_doc, old_prop, new_doc, new_props[name], f"{where}.{name}", depth + 1)
    if _type(old) == "array" and _type(new) == "array":
        problems += _required_fields(old_doc, old.get("items") or {}, new_doc, new.get("items") or {},
                                     f"{where}[]", depth + 1)
    return problems


def _type_changes(old_doc: dict, old: Any, new_doc: dict, new: Any, where: str, kind: str, *,
                  removed_fields: bool, depth: int = 0) -> list[str]:
    """Type changes anywhere in a schema; with ``removed_fields``, also fields that are gone (outputs)."""
    old, new = _schema(old_doc, old), _schema(new_doc, new)
    if depth > _MAX_DEPTH or not old:
        return []
    problems = []
    old_type, new_type = _type(old), _type(new)
    if old_type and new_type and old_type != new_type:
        problems.append(f"{where}: the type has been changed for the {kind} field ({old_type} -> {new_type})")
        return problems
    if old.get("format") and new.get("format") and old["format"] != new["format"]:
        problems.append(f"{where}: the format has been changed for the {kind} field "
                        f"({old['format']} -> {new['format']})")
    new_props = new.get("properties") or {}
    for name, old_prop in (old.get("properties") or {}).items():
        if name not in new_props:
            if removed_fields:
                problems.append(f"{where}.{name}: the {kind} field has been deleted")
            continue
        problems += _type_changes(old_doc, old_prop, new_doc, new_props[name], f"{where}.{name}", kind,
                                  removed_fields=removed_fields, depth=depth + 1)
    if old_type == "array" and new_type == "array":
        problems += _type_changes(old_doc, old.get("items") or {}, new_doc, new.get("items") or {}, f"{where}[]",
                                  kind, removed_fields=removed_fields, depth=depth + 1)
    return problems


def _compare_operation(old_doc: dict, new_doc: dict, op_id: str, old: tuple, new: tuple) -> list[str]:
    (old_path, old_method, old_op, old_item), (new_path, new_method, new_op, new_item) = old, new
    label = f"{op_id} ({old_method.upper()} {old_path})"
    problems = []
    if (old_path, old_method) != (new_path, new_method):
        problems.append(f"{label}: moved to {new_method.upper()} {new_path}; existing flows call the old address")
    old_params, new_params = _parameters(old_doc, old_item, old_op), _parameters(new_doc, new_item, new_op)
    for key, param in new_params.items():
        where = f"{label}: {key[0]} parameter '{key[1]}'"
        before = old_params.get(key)
        if param.get("required") and not (before and before.get("required")):
            problems.append(f"{where}: the required input field has been added"
                            + (" (was optional)" if before else ""))
        if before is None:
            continue
        if key[0] == "body":
            problems += _required_fields(old_doc, before.get("schema") or {}, new_doc, param.get("schema") or {},
                                         f"{label}: body")
            problems += _type_changes(old_doc, before.get("schema") or {}, new_doc, param.get("schema") or {},
                                      f"{label}: body", "input", removed_fields=False)
        elif before.get("type") and param.get("type") and before["type"] != param["type"]:
            problems.append(f"{where}: the type has been changed for the input field "
                            f"({before['type']} -> {param['type']})")
    old_responses = old_op.get("responses") or {}
    new_responses = new_op.get("responses") or {}
    for code, old_response in old_responses.items():
        if not str(code).startswith("2"):
            continue
        old_schema = _schema(old_doc, old_response).get("schema")
        if not old_schema:
            continue
        new_response = new_responses.get(code)
        new_schema = _schema(new_doc, new_response).get("schema") if new_response is not None else None
        if not new_schema:
            problems.append(f"{label}: response {code}: the output has been deleted")
            continue
        problems += _type_changes(old_doc, old_schema, new_doc, new_schema, f"{label}: response {code}", "output",
                                  removed_fields=True)
    return problems


def check_versioning(doc: dict) -> list[str]:
    """Every operation family (``x-ms-api-annotation.family``): distinct revisions, and every revision below
    the newest marked ``deprecated: true``."""
    families: dict[str, list[tuple[int, str, dict]]] = {}
    ops = _operations(doc)
    problems = []
    for op_id, (_, _, op, _) in ops.items():
        note = op.get("x-ms-api-annotation")
        if not isinstance(note, dict) or "family" not in note:
            continue
        revision = note.get("revision", 1)
        if not isinstance(revision, int) or revision < 1:
            problems.append(f"{op_id}: x-ms-api-annotation.revision must be a whole number from 1")
            continue
        families.setdefault(str(note["family"]), []).append((revision, op_id, op))
    for family, members in families.items():
        if family in ops and not any(op_id == family for _, op_id, _ in members):
            first = ops[family][2]  # the first version, without an annotation of its own: revision 1
            members.append((1, family, first))
        revisions = [r for r, _, _ in members]
        if len(set(revisions)) != len(revisions):
            problems.append(f"family {family}: two operations have the same revision {sorted(revisions)}")
            continue
        newest = max(revisions)
        for revision, op_id, op in members:
            if revision < newest and op.get("deprecated") is not True:
                problems.append(f"{op_id}: revision {revision} of family {family} has a newer revision "
                                f"({newest}); mark it deprecated: true")
    return problems


def check_compatible(released: dict, current: dict) -> list[str]:
    """Every breaking change from ``released`` to ``current`` (both connector definitions), plus the
    versioning rules on ``current``. Empty when ``current`` can replace ``released``."""
    old_ops, new_ops = _operations(released), _operations(current)
    problems = []
    for op_id, old in old_ops.items():
        if op_id not in new_ops:
            problems.append(f"{op_id} ({old[1].upper()} {old[0]}): the operation has been deleted; keep it "
                            "(mark it deprecated) and add a new version instead")
            continue
        problems += _compare_operation(released, current, op_id, old, new_ops[op_id])
    problems += check_versioning(current)
    if problems and any("deleted" in p or "added" in p or "changed" in p or "moved" in p for p in problems):
        problems.append("an incompatible change needs a new operation version: a new operationId with "
                        "x-ms-api-annotation {family: <old operationId>, revision: <n>}, the old operation kept "
                        "as it was and marked deprecated: true (see docs/connector.md, A stable contract)")
    return problems
