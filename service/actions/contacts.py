"""Contact actions: read, upsert, anonymize, set/clear one field, permissions. Independent of the platform.

Field names are resolved and values converted by :mod:`service.actions.coercion`; contacts are found by
:func:`service.actions.resolution.resolve_contact`. The field and permission lists come from the short-lived
list cache (the dropdown data); a name that is not in the cached list refreshes it once before it is refused,
so a field created on the platform a moment ago is found.
"""

from __future__ import annotations

import re
from typing import Any, Callable, TypeVar

from service.actions.deps import Platform
from service.actions.automation_fields import parse_fields_text
from service.actions.coercion import CODE_READ_ONLY, CODE_UNKNOWN, coerce_properties, coerce_value, resolve_field
from service.actions.idempotency import ActionResult, JobContext
from service.actions.problems import ActionError, invalid
from service.actions.resolution import contact_ref, resolve_contact
from service.providers.base import Contact, ContactField, FieldOption

T = TypeVar("T")

#: most names (tags, permissions) one call may carry
MAX_NAMES = 100


# -- shared helpers ---------------------------------------------------------------------------------------

def with_fresh_list(platform: Platform, attempt: Callable[[], T], retry_codes: tuple[str, ...]) -> T:
    """Run ``attempt``; when it fails with one of ``retry_codes`` (a name not in the cached list), clear the
    list cache and run it once more."""
    try:
        return attempt()
    except ActionError as exc:
        if exc.problem.code not in retry_codes:
            raise
    platform.cache.clear()
    return attempt()


def parse_names(value: Any, field: str, *, separators: str = ",;", split_all: bool = True, what: str = "names",
                max_items: int = MAX_NAMES, max_length: int = 255) -> list[str]:
    """``"a,b"`` / ``"a;b"`` / ``["a", "b"]`` (items may themselves be separated) -> unique names in order.

    ``separators``: the characters that split text; every one of them (``split_all``), or only the first one
    present in a text (so that ``"A;B, C"`` is the two names ``A`` and ``B, C``).
    """
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise invalid(field, f"'{field}' must be text like 'a{separators[0]}b' or an array of {what}.",
                          code="INVALID_LIST")
        text = str(item)
        if split_all:
            parts = re.split(f"[{re.escape(separators)}]", text)
        else:
            sep = next((s for s in separators if s in text), None)
            parts = text.split(sep) if sep else [text]
        for part in parts:
            part = part.strip()
            if not part:
                continue
            if len(part) > max_length:
                raise invalid(field, f"'{part[:40]}…' in '{field}' is longer than {max_length} characters.",
                              code="INVALID_LIST")
            if part not in seen:
                seen.add(part)
                names.append(part)
                if len(names) > max_items:
                    raise invalid(field, f"At most {max_items} {what} per call; '{field}' has more.",
                                  code="TOO_MANY_ITEMS")
    if not names:
        raise invalid(field, f"Give at least one of the {what} in '{field}'.", code="INVALID_LIST")
    return names


def contact_summary(contact: Contact, created: bool | None = None) -> dict:
    out: dict[str, Any] = {"externalId": contact.external_id}
    if created is not None:
        out["created"] = created
    return out


def contact_out(contact: Contact) -> dict:
    """The ``Contact`` definition: externalId, email when known, the fields that hold a value."""
    out: dict[str, Any] = {"externalId": contact.external_id,
                           "fields": {k: v for k, v in (contact.properties or {}).items() if v is not None}}
    if contact.email:
        out["email"] = contact.email
    return out


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


# -- contact fields ---------------------------------------------------------------------------------------

def contact_fields(platform: Platform) -> list[ContactField]:
    return platform.cache.get(("contact_fields",), platform.provider.list_contact_fields)


def list_contact_fields(platform: Platform) -> dict:
    value = []
    for f in contact_fields(platform):
        info: dict[str, Any] = {"name": f.name, "displayName": f.display_name or f.name, "type": f.type,
                                "title": f"{f.display_name} ({f.name})" if f.display_name and f.display_name != f.name
                                else f.name}
        if f.options:
            info["options"] = [{"name": o.name, "value": o.value} for o in f.options]
        value.append(info)
    return {"value": value}


def find_field(platform: Platform, name: Any) -> ContactField:
    """The field ``name`` (internal or display name) means; 400 when unknown or ambiguous."""
    return with_fresh_list(platform, lambda: resolve_field(contact_fields(platform), name), (CODE_UNKNOWN,))


def _writable(field: ContactField) -> ContactField:
    if field.read_only:
        raise invalid(field.name, f"Field '{field.name}' is read-only and cannot be changed.", code=CODE_READ_ONLY)
    return field


# -- read -------------------------------------------------------------------------------------------------

def get_contact(platform: Platform, email: str | None, external_id: str | None) -> dict:
    if not (email or "").strip() and not (external_id or "").strip():
        raise invalid("email", "Give the contact's email or externalId.", code="CONTACT_REQUIRED")
    ref = contact_ref({"email": email, "externalId": external_id})
    contact, _ = resolve_contact(platform.provider, ref)
    return contact_out(contact)


# -- writes -----------------------------------------------------------------------------------------------

def _given_fields(body: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``fieldsText`` pairs, the typed ``fields`` map)."""
    text = body.get("fieldsText")
    from_text = dict(parse_fields_text(text)) if isinstance(text, str) and text.strip() else {}
    typed = body.get("fields")
    if typed is not None and not isinstance(typed, dict):
        raise invalid("fields", "'fields' must be an object of field name: value.", code="VALIDATION_FAILED")
    return from_text, dict(typed or {})


def upsert_contact(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    from_text, typed = _given_fields(body)
    purge = bool(body.get("purge"))
    props: dict[str, Any] = {}
    if from_text or typed:
        props = with_fresh_list(platform, lambda: _coerce_merged(contact_fields(platform), from_text, typed), (CODE_UNKNOWN,))
    existing = provider.find_contact(ref)
    contact = provider.upsert_contact(ref, props, purge=purge)
    created = existing is None
    job.add_upstream_ids("contactExternalIds", [contact.external_id])
    verb = "created" if created else "updated"
    return ActionResult(
        body={"jobId": job.job_id, "resultCode": "OK",
              "message": f"The contact was {verb}" + (f" with {len(props)} field(s)." if props else "."),
              "contact": contact_summary(contact, created), "fieldsSet": list(props), "record": contact_out(contact)},
        upstream_ids={"contactExternalIds": [contact.external_id]},
        message=f"Contact {verb}.")


def _coerce_merged(fields: list[ContactField], from_text: dict[str, Any], typed: dict[str, Any]) -> dict[str, Any]:
    """Resolve and coerce both inputs; for a field given in both (by any of its names) the typed value wins.
    One field named twice within the same input is a 400 (coerce_properties)."""
    chosen = dict(typed)
    typed_fields = {resolve_field(fields, name).name for name in typed}
    for name, value in from_text.items():
        if resolve_field(fields, name).name not in typed_fields:
            chosen[name] = value
    return coerce_properties(fields, chosen)


def anonymize_contact(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    contact, _ = resolve_contact(provider, contact_ref(body.get("contact")))
    provider.anonymize_contact(contact)
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK",
                              "message": "The contact's personal data was removed from the platform.",
                              "contact": contact_summary(contact)},
                        message="Contact anonymized.")


def set_contact_field(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    field = _writable(find_field(platform, body.get("field")))
    value = coerce_value(field, body.get("value"))
    contact, _ = resolve_contact(provider, ref)
    provider.update_contact(contact, {field.name: value})
    out: dict[str, Any] = {"jobId": job.job_id, "resultCode": "OK", "contact": contact_summary(contact),
                           "field": field.name}
    if value is None:
        out["message"] = f"The field '{field.name}' was cleared (the value was empty)."
    else:
        out["value"] = _as_text(value)
        out["message"] = f"The field '{field.name}' was set."
    return ActionResult(body=out, message=out["message"])


def clear_contact_field(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    field = _writable(find_field(platform, body.get("field")))
    contact, _ = resolve_contact(provider, ref)
    provider.update_contact(contact, {field.name: None})
    message = f"The field '{field.name}' was cleared."
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK", "message": message,
                              "contact": contact_summary(contact), "field": field.name},
                        message=message)


# -- permissions ------------------------------------------------------------------------------------------

def permissions(platform: Platform) -> list[FieldOption]:
    return platform.cache.get(("permissions",), platform.provider.list_permissions)


def list_permissions(platform: Platform) -> dict:
    return {"value": [{"name": o.name, "value": o.value} for o in permissions(platform)]}


def _match_permissions(options: list[FieldOption], value: Any) -> list[FieldOption]:
    """Options named by ``value`` (names case-insensitively, or values/bits); 400 UNKNOWN_PERMISSION."""
    by_value = {o.value: o for o in options}
    by_name: dict[str, list[FieldOption]] = {}
    for o in options:
        by_name.setdefault(o.name.strip().lower(), []).append(o)

    def match(token: str) -> FieldOption | None:
        if token in by_value:
            return by_value[token]
        found = by_name.get(token.lower(), [])
        return found[0] if len(found) == 1 else None

    # a whole text that names one option (a name containing ',' or ';') wins over splitting it
    if isinstance(value, str) and match(value.strip()) is not None:
        return [match(value.strip())]
    tokens = parse_names(value, "permissions", separators=";,", split_all=False, what="permissions")
    chosen: list[FieldOption] = []
    unknown: list[str] = []
    for token in tokens:
        o = match(token)
        if o is None:
            unknown.append(token)
        elif o not in chosen:
            chosen.append(o)
    if unknown:
        valid = ", ".join(f"{o.name} ({o.value})" for o in options[:30]) or "none"
        raise invalid("permissions",
                      f"Unknown permission(s): {', '.join(u[:60] for u in unknown[:10])}. Use a name or value from "
                      f"the list: {valid}.", code="UNKNOWN_PERMISSION", unknown=unknown[:50],
                      options=[{"name": o.name, "value": o.value} for o in options[:100]])
    return chosen


def set_permissions(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise invalid("enabled", "'enabled' must be true or false.")
    chosen = with_fresh_list(platform, lambda: _match_permissions(permissions(platform), body.get("permissions")),
                             ("UNKNOWN_PERMISSION",))
    contact, _ = resolve_contact(provider, ref)
    state = provider.set_permissions(contact, {o.value: enabled for o in chosen})
    names = {o.value: o.name for o in permissions(platform)}
    names.update({o.value: o.name for o in chosen})
    everything = [{"name": names.get(v, v), "value": v, "enabled": bool(on)} for v, on in state.items()]
    changed = [{"name": o.name, "value": o.value, "enabled": bool(state.get(o.value, enabled))} for o in chosen]
    verb = "subscribed to" if enabled else "unsubscribed from"
    message = f"The contact was {verb} {', '.join(o.name for o in chosen)}."
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK", "message": message,
                              "contact": contact_summary(contact), "changed": changed, "permissions": everything},
                        message=message)
