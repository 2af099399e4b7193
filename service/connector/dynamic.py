"""Dynamic references (dropdowns, dynamic schemas) resolve to real operations; every id a maker would paste has
a dropdown."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from service.connector.spec import (
    DATA_KEYS,
    DROPDOWN_EXTENSIONS,
    DROPDOWN_PARAMETER_NAMES,
    DYNAMIC_EXTENSIONS,
    collect_refs,
    is_excluded,
    iter_operations,
    location_of,
    operation_label,
    operation_parameters,
    pointer_get,
    resolve,
    success_schema,
)


def _find_dynamic(node: Any, parts: tuple) -> Iterator[tuple[tuple, str, Any]]:
    """Every dynamic extension in a node (no $ref following): ``(parts, extension, value)``."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in DYNAMIC_EXTENSIONS:
                yield parts + (k,), k, v
            elif k not in DATA_KEYS:
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
    target_params = {p.get("name"): p for p in operation_parameters(doc, item, op)}
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
    schema = success_schema(doc, op)
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
        problems += [f"{location_of(doc, parts[:-1])}: {msg}" for msg in _check_target(doc, ext, value, ops)]
    # Caller side: {parameter: x} / {parameterReference: x/y} must exist on every operation that uses the
    # extension (directly or through a $ref'd definition).
    for path, method, op, item in iter_operations(doc):
        caller_params = operation_parameters(doc, item, op)
        label = operation_label(path, method, op)
        for parts, ext, value in _dynamic_in_operation(doc, path, method, item, op):
            args = value.get("parameters") if isinstance(value, dict) else None
            for name, arg in (args or {}).items() if isinstance(args, dict) else []:
                ref = arg.get("parameter") or arg.get("parameterReference") if isinstance(arg, dict) else None
                if isinstance(ref, str) and not _caller_reference_ok(doc, caller_params, ref):
                    problems.append(f"{location_of(doc, parts[:-1])}: {ext}: parameter {name!r} refers to {ref!r}, "
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
        collect_refs(node, refs)
        for ref in sorted(refs - seen):
            seen.add(ref)
            target = pointer_get(doc, ref)
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
        if is_excluded(op) or op.get("x-ms-visibility") == "internal":
            continue
        label = operation_label(path, method, op)
        for param in operation_parameters(doc, item, op):
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
