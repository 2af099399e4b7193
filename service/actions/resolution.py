"""Contact resolution: the one piece of code every action uses to turn ``contact`` input into a Contact."""

from __future__ import annotations

import re
from typing import Any

from service import privacy
from service.actions.problems import ActionError, invalid
from service.providers.base import Contact, ContactRef, Provider


#: One rule for every identifier we put into an upstream URL or send as an id (contact externalId, automation,
#: trigger, campaign and audience ids, run ids), also stated in openapi.yaml (a contract test compares them): 1 to
#: 200 characters, no control character, no slash or backslash (a platform cannot address an id with a "/" in its
#: path: the contact would be created and then not be found), not "." or ".." (a path segment that means
#: something else).
MAX_IDENTIFIER_LENGTH = 200
IDENTIFIER_PATTERN = r"^(?!\.{1,2}$)[^/\\\x00-\x1F\x7F]+$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
IDENTIFIER_RULE = (f"1 to {MAX_IDENTIFIER_LENGTH} characters, without '/', '\\' or control characters, and not "
                   "'.' or '..'")


def parse_identifier(value: Any, field: str, *, max_length: int = MAX_IDENTIFIER_LENGTH) -> str:
    """A valid identifier (surrounding blanks removed) or a 400 ``INVALID_IDENTIFIER`` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid(field, f"'{field}' must be text.", code="INVALID_IDENTIFIER")
    text = str(value).strip()
    if not text or len(text) > max_length or not _IDENTIFIER.match(text):
        shown = "".join(ch if ch.isprintable() else "?" for ch in text[:40]) + ("…" if len(text) > 40 else "")
        raise invalid(field, f"'{shown}' is not a valid {field}: an id has "
                      f"{IDENTIFIER_RULE.replace(str(MAX_IDENTIFIER_LENGTH), str(max_length))}.",
                      code="INVALID_IDENTIFIER")
    return text


def parse_email(value: Any, field: str = "contact.email") -> str:
    """The address (domain lower-cased) or a 400 ``INVALID_EMAIL`` that names ``field`` and says why, without
    repeating the value (``contact.email has no @``)."""
    text = str(value).strip()
    flaw = privacy.email_flaw(text)
    if flaw:
        raise invalid(field, f"{field} {flaw}; an e-mail address looks like name@example.com.",
                      code="INVALID_EMAIL")
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def contact_ref(data: Any, field: str = "contact") -> ContactRef:
    """Validate a ``{email, externalId}`` object. At least one is required; externalId wins when both are."""
    if data is None and field == "contact":
        raise invalid(field, "Give the contact (its email or externalId), or a Dataverse record in 'regarding' "
                      "whose email address is the contact.", code="CONTACT_REQUIRED")
    if not isinstance(data, dict):
        raise invalid(field, f"'{field}' must be an object with an email or an externalId.", code="CONTACT_REQUIRED")
    email = data.get("email")
    external_id = data.get("externalId")
    email = parse_email(email, f"{field}.email") if email not in (None, "") else None
    external_id = parse_identifier(external_id, f"{field}.externalId") if external_id not in (None, "") else None
    if not email and not external_id:
        raise invalid(field, f"Give the contact's email or externalId in '{field}'.", code="CONTACT_REQUIRED")
    return ContactRef(email=email, external_id=external_id)


def describe(ref: ContactRef) -> str:
    """The contact as a problem names it: its externalId, or its e-mail address masked (never in clear)."""
    return f"externalId '{ref.external_id}'" if ref.external_id else f"email '{privacy.mask_email(ref.email)}'"


#: the request field that creates a missing contact, and its label in the connector
CREATE_OPTION = "createContactIfMissing"
CREATE_OPTION_LABEL = "Create contact if missing"


def contact_not_found(provider: Provider, ref: ContactRef, *, can_create: bool = False) -> ActionError:
    """The 404 for an unknown contact. ``can_create``: the operation has the ``createContactIfMissing`` option,
    so the answer names it (the JSON field for REST callers, the label for flow makers)."""
    detail = f"No contact with {describe(ref)} exists on {provider.display_name}. Create it first (Upsert contact)"
    if can_create:
        detail += f", or set {CREATE_OPTION} to true ('{CREATE_OPTION_LABEL}' in the connector)"
        return ActionError(404, "CONTACT_NOT_FOUND", detail + ".", field="contact", option=CREATE_OPTION)
    return ActionError(404, "CONTACT_NOT_FOUND", detail + ".", field="contact")


def resolve_contact(provider: Provider, ref: ContactRef, *, create_if_missing: bool = False,
                    can_create: bool = False) -> tuple[Contact, bool]:
    """The contact for ``ref`` and whether it was created now. 404 when absent and not to be created
    (``can_create``: the operation offers ``createContactIfMissing``; the 404 then says so)."""
    contact = provider.find_contact(ref)
    if contact is not None:
        return contact, False
    if not create_if_missing:
        raise contact_not_found(provider, ref, can_create=can_create)
    if not ref.email:
        raise invalid("contact.email", "To create a missing contact, give its email address.",
                      code="EMAIL_REQUIRED_TO_CREATE")
    return provider.upsert_contact(ref, {}), True
