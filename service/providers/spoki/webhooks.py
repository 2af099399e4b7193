"""Spoki outgoing webhooks (V2): the events, the ``external-webhooks`` API and the ``X-Spoki-Signature`` check.

Facts (``webhooks-relay.md`` §2): one webhook per event, each with its own ``whsec_...`` secret returned on
create [S]; ``GET/POST /api/1/external-webhooks/``, ``GET/PATCH/DELETE /api/1/external-webhooks/{id}/`` [S];
envelope ``{"version": 2, "event", "event_uuid", "timestamp": <unix float>, "data"}`` [S]; header
``X-Spoki-Signature: t=<unix>,v2=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``, stale beyond 300 s [S];
``X-SPOKI-ACCOUNT`` is outside the signature and never used; the V1 ``X-SPOKI-HASH`` cannot be verified and is
refused [S]. Repeats carry the same ``event_uuid``.

Guesses, configurable (``SPOKI_WEBHOOK_*``, docs/piggy-spoki-coverage.md): the path, the time window, and where
a tag event's tag is (``data.tag``: ``{id, name}`` or a name).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.providers import errors
from service.providers.spoki.client import SpokiClient
from service.providers.webhooks import (
    CreatedHook,
    EventType,
    Inbound,
    PlatformHook,
    SignatureError,
    body_digest,
    hmac_hex,
    matches_any,
    obj,
    prop,
)

PLATFORM = "spoki"
SIGNATURE_HEADER = "X-Spoki-Signature"

_CONTACT_PROPS = {
    "id": prop("integer", "Contact ID", "The contact's id in Spoki (its externalId here)."),
    "phone": prop("string", "Phone", "The contact's phone number (E.164)."),
    "first_name": prop("string", "First name", "The contact's first name."),
    "last_name": prop("string", "Last name", "The contact's last name."),
    "email": prop("string", "Email", "The contact's e-mail address."),
    "language": prop("string", "Language", "The contact's language."),
    "created_datetime": prop("string", "Created", "When the contact was created."),
}
_CONTACT_DATA = dict(_CONTACT_PROPS)
_CONTACT = obj("Contact", "The contact.", _CONTACT_PROPS)
_TAG = obj("Tag", "The tag.", {"id": prop("integer", "Tag ID", "The tag's id."),
                               "name": prop("string", "Tag name", "The tag's name.")})
_LIST = obj("List", "The list.", {"id": prop("integer", "List ID", "The list's id."),
                                  "name": prop("string", "List name", "The list's name.")})
_MESSAGE = {
    "uuid": prop("string", "Message UUID", "The message's uuid (the same for each status update)."),
    "from_phone": prop("string", "From phone", "The sender's phone number."),
    "to_phone": prop("string", "To phone", "The recipient's phone number."),
    "text": prop("string", "Text", "The message text."),
    "sent_datetime": prop("string", "Sent", "When the message was sent."),
}
_OUTBOUND = {
    **_MESSAGE,
    "direction": prop("string", "Direction", "The message's direction."),
    "type": prop("string", "Type", "Template or Message."),
    "content_type": prop("string", "Content type", "The message's content type."),
    "send_status": prop("string", "Send status", "Sent, Delivered, Read or Failed (each update fires again)."),
    "send_error_message": prop("string", "Error message", "Why sending failed."),
    "error_code": prop("string", "Error code", "The error code of a failed message."),
    "delivered_datetime": prop("string", "Delivered", "When the message was delivered."),
    "created_datetime": prop("string", "Created", "When the message was created."),
    "metadata": {"type": "object", "x-ms-summary": "Metadata", "description": "The metadata sent with the message."},
}
_INBOUND = {**_MESSAGE, "payload": prop("string", "Button payload", "The payload of the button the contact tapped.")}


def _event(name: str, label: str, description: str, data: Mapping[str, Any] | None = None,
           filter_: str | None = None) -> EventType:
    return EventType(name=name, label=label, description=description, filter=filter_, data=data or {})


EVENTS: tuple[EventType, ...] = (
    _event("contact.created", "Contact created", "A contact is created.", _CONTACT_DATA),
    _event("contact.updated", "Contact updated", "A contact is changed.", _CONTACT_DATA),
    _event("contact.deleted", "Contact deleted", "A contact is deleted.", _CONTACT_DATA),
    _event("contact_tag.created", "Tag added to contact", "A tag is added to a contact (optionally only this tag).",
           {"contact": _CONTACT, "tag": _TAG}, "tag"),
    _event("contact_tag.deleted", "Tag removed from contact", "A tag is removed from a contact (optionally only "
           "this tag).", {"contact": _CONTACT, "tag": _TAG}, "tag"),
    _event("contact_list.created", "Contact added to list", "A contact is added to a list.",
           {"contact": _CONTACT, "list": _LIST}),
    _event("contact_list.deleted", "Contact removed from list", "A contact is removed from a list.",
           {"contact": _CONTACT, "list": _LIST}),
    _event("message.inbound", "Message received", "A WhatsApp message from a contact arrives.", _INBOUND),
    _event("message.outbound", "Message sent or status changed", "A message is sent, and again for each status "
           "update (delivered, read, failed).", _OUTBOUND),
    _event("message.note", "Note added", "A note is added to a chat."),
    _event("chat.has_unread_messages", "Chat has unread messages", "A chat has unread messages."),
)


@dataclass(frozen=True, kw_only=True)
class SpokiWebhookConfig:
    """``SPOKI_WEBHOOK_<FIELD>`` variables (read by service.providers.factory.webhook_parts)."""

    #: the external webhooks resource under the API prefix [S] (SPOKI_WEBHOOK_PATH)
    path: str = "external-webhooks/"
    #: a signature older or newer than this is refused, in seconds [S] (SPOKI_WEBHOOK_TOLERANCE)
    tolerance: float = 300.0
    #: key under ``data`` holding a tag event's tag; a guess (SPOKI_WEBHOOK_TAG_KEY)
    tag_key: str = "tag"


def _tags(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, dict):
        found = tuple(str(value[k]).strip().lower() for k in ("name", "id") if value.get(k) not in (None, ""))
        return found or None
    if isinstance(value, (str, int)) and str(value).strip():
        return (str(value).strip().lower(),)
    return None


class SpokiWebhookFormat:
    platform = PLATFORM
    events = EVENTS

    def __init__(self, config: SpokiWebhookConfig | None = None) -> None:
        self.config = config or SpokiWebhookConfig()

    def new_secret(self) -> str | None:
        return None  # Spoki generates each webhook's secret

    def verify(self, headers: Mapping[str, str], raw: bytes, secrets_: tuple[str, ...], now: float) -> None:
        header = (headers.get(SIGNATURE_HEADER) or "").strip()
        if not header:
            if headers.get("X-SPOKI-HASH"):
                raise SignatureError("a V1 X-SPOKI-HASH signature (not verifiable): use V2 webhooks")
            raise SignatureError(f"no {SIGNATURE_HEADER} header")
        parts: dict[str, list[str]] = {}
        for item in header.split(","):
            key, sep, value = item.strip().partition("=")
            if sep:
                parts.setdefault(key.strip(), []).append(value.strip().lower())
        stamp, sigs = (parts.get("t") or [""])[0], parts.get("v2") or []
        try:
            t = float(stamp)
        except ValueError:
            raise SignatureError("no valid t= in the signature header") from None
        if not sigs:
            raise SignatureError("no v2= in the signature header")
        if abs(now - t) > self.config.tolerance:
            raise SignatureError("the signature's timestamp is outside the allowed window")
        if not secrets_:
            raise SignatureError("no secret to check the signature with")
        expected = [hmac_hex(s, stamp.encode() + b"." + raw) for s in secrets_]
        if not any(matches_any(expected, sig) for sig in sigs):
            raise SignatureError("signature does not match")

    def parse(self, raw: bytes, event: str) -> Inbound:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("the body is not a JSON object")
        data = doc.get("data")
        data = data if isinstance(data, dict) else {}
        occurred = None
        if isinstance(doc.get("timestamp"), (int, float)):
            occurred = datetime.fromtimestamp(float(doc["timestamp"]), UTC)
        uuid = doc.get("event_uuid")
        return Inbound(event=str(doc.get("event") or event), data=data, occurred_at=occurred,
                       platform_event_id=str(uuid) if uuid else None, tags=_tags(data.get(self.config.tag_key)))

    def dedupe_key(self, inbound: Inbound, raw: bytes) -> str:
        if inbound.platform_event_id:
            return body_digest(b"event_uuid", inbound.platform_event_id.encode())
        return body_digest(inbound.event.encode(), raw)


def _hook(item: Any) -> PlatformHook | None:
    if not isinstance(item, dict) or item.get("id") in (None, ""):
        return None
    return PlatformHook(id=str(item["id"]), event=str(item.get("event") or ""), url=str(item.get("url") or ""),
                        active=bool(item.get("is_active", True)))


class SpokiWebhookManager:
    """The ``external-webhooks`` calls, through the account's Spoki client."""

    def __init__(self, client: SpokiClient, hooks: SpokiWebhookConfig) -> None:
        self.client = client
        self.hooks = hooks

    def _one(self, hook_id: str) -> str:
        return f"{self.hooks.path.rstrip('/')}/{hook_id}/"

    def list_hooks(self, event: str) -> list[PlatformHook]:
        items = self.client.paginate(self.hooks.path, {"event": event})
        return [h for h in (_hook(i) for i in items) if h is not None and (not h.event or h.event == event)]

    def create_hook(self, event: str, url: str, *, secret: str | None, attributes: tuple[str, ...],
                    name: str) -> CreatedHook:
        data = self.client.request("POST", self.hooks.path, body={"event": event, "version": 2, "url": url,
                                                                    "is_active": True})
        if not isinstance(data, dict) or data.get("id") in (None, "") or not data.get("secret"):
            raise errors.Unavailable("Spoki answered the new webhook without its id or secret.")
        return CreatedHook(id=str(data["id"]), secret=str(data["secret"]))

    def update_hook(self, hook_id: str, *, url: str, attributes: tuple[str, ...], active: bool = True) -> None:
        self.client.request("PATCH", self._one(hook_id), body={"url": url, "is_active": active})

    def delete_hook(self, hook_id: str) -> None:
        try:
            self.client.request("DELETE", self._one(hook_id))
        except errors.NotFound:
            pass

    def watchable_attributes(self) -> tuple[str, ...]:
        return ()
