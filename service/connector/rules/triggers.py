"""Certification rules on triggers (reference §3, §4.2): kind, hint, polling metadata and the polling answers."""

from __future__ import annotations

from service.connector.spec import iter_operations, location_of, resolve

TRIGGER_KINDS = ("single", "batch")
POLLING_METADATA = {"kind": "query", "mode": "polling"}


def is_polling_trigger(op: dict) -> bool:
    meta = op.get("x-ms-trigger-metadata")
    return bool(op.get("x-ms-trigger")) and isinstance(meta, dict) and meta.get("mode") == "polling"


def check_trigger(doc: dict, op: dict, method: str, parts: tuple, problems: list[str]) -> None:
    """Triggers (reference §3, §4.2): kind, hint, polling metadata, and the polling answer shapes - 200 with the
    events (an array for a batch trigger, bare or in ``value``) and 202 for "nothing new" (Location)."""
    kind = op.get("x-ms-trigger")
    if kind is None:
        return
    where = location_of(doc, parts)
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
