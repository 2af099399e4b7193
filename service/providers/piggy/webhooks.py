"""Piggy (Leat) webhooks: the 13 event types, the ``webhook-subscriptions`` API and the ``Signature`` check.

Facts (``webhooks-relay.md`` §1): subscriptions live at ``/api/v3/oauth/clients/webhook-subscriptions``
(list/create/get/update/delete; ``data`` objects ``{uuid, name, event_type, url, status, version, properties}``;
error 80300 = not found) [C]; ``contact_updated`` fires only for the attributes listed on the subscription
(``attributes`` on create/update, echoed as ``properties``) [C]; a secret may be given on create [S: the Leat
plugin sends it]; each call carries ``Signature`` = lowercase hex HMAC-SHA256 of the body with the subscription's
secret, or the account's secret when the subscription has none [C]; no timestamp and no event id, so repeats are
recognised by a hash of type + body [G]; payloads ``{"type": <event>, "data": {...}}`` [S].

Guesses, configurable (``PIGGY_WEBHOOK_*``, docs/piggy-spoki-coverage.md): the path, the header name, whether a
secret is sent on create, the account secret, and the key under ``data`` that would list the changed
attributes of a ``contact_updated`` (none is documented: without it every flow watching the event gets it).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.providers import errors
from service.providers.piggy.client import PiggyClient
from service.providers.piggy.config import PiggyConfig
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

PLATFORM = "piggy"

_CONTACT = obj("Contact", "The contact (related entities often come as a uuid only).", {
    "uuid": prop("string", "Contact UUID", "The contact's uuid in Piggy (its externalId here)."),
    "email": prop("string", "Email", "The contact's e-mail address."),
    "current_values": {"type": "object", "x-ms-summary": "Attributes",
                       "description": "The contact's attribute values by attribute name, as far as Piggy sends them."},
})
_VOUCHER = obj("Voucher", "The voucher.", {
    "code": prop("string", "Voucher code", "The voucher's code."),
    "name": prop("string", "Voucher name", "The voucher's name."),
    "contact_uuid": prop("string", "Contact UUID", "The uuid of the contact the voucher belongs to."),
    "is_redeemed": prop("boolean", "Redeemed", "Whether the voucher was redeemed."),
    "promotion": obj("Promotion", "The voucher's promotion.", {
        "uuid": prop("string", "Promotion UUID", "The promotion's uuid.")}),
})
_CONTACT_DATA = {"contact": _CONTACT}
_VOUCHER_DATA = {"voucher": _VOUCHER}


def _event(name: str, label: str, description: str, data: Mapping[str, Any] | None = None,
           filter_: str | None = None) -> EventType:
    return EventType(name=name, label=label, description=description, filter=filter_, data=data or {})


EVENTS: tuple[EventType, ...] = (
    _event("contact_created", "Contact created", "A contact (member) is created.", _CONTACT_DATA),
    _event("contact_updated", "Contact updated", "A watched attribute of a contact changes (choose the attributes "
           "in the filter; none: any attribute).", _CONTACT_DATA, "attributes"),
    _event("contact_identifier_created", "Contact identifier created", "A contact identifier (e.g. a loyalty "
           "card) is created.", _CONTACT_DATA),
    _event("credit_reception_created", "Credits received", "A contact receives credits."),
    _event("prepaid_transaction_created", "Prepaid transaction created", "A prepaid transaction is created."),
    _event("giftcard_transaction_created", "Gift card transaction created", "A gift card transaction is created."),
    _event("voucher_created", "Voucher created", "A voucher is created.", _VOUCHER_DATA),
    _event("voucher_updated", "Voucher updated", "A voucher is updated.", _VOUCHER_DATA),
    _event("voucher_redeemed", "Voucher redeemed", "A voucher is redeemed.", _VOUCHER_DATA),
    _event("form_submission_completed", "Form submitted", "A form is submitted."),
    _event("referral_completed", "Referral completed", "A referral completes."),
    _event("reward_updated", "Reward updated", "A reward is updated."),
    _event("promotion_updated", "Promotion updated", "A promotion is updated."),
)


@dataclass(frozen=True, kw_only=True)
class PiggyWebhookConfig:
    """``PIGGY_WEBHOOK_<FIELD>`` variables (read by service.providers.factory.webhook_parts)."""

    #: the subscriptions resource under the API prefix [C] (PIGGY_WEBHOOK_PATH)
    path: str = "webhook-subscriptions"
    #: the signature header [C: the docs; the plugin read X-Piggy-Signature until 2025] (PIGGY_WEBHOOK_HEADER)
    header: str = "Signature"
    #: send our own per-webhook secret on create [S] (PIGGY_WEBHOOK_SEND_SECRET)
    send_secret: bool = True
    #: the account's webhook secret, which Piggy signs with when a subscription has none (PIGGY_WEBHOOK_ACCOUNT_SECRET)
    account_secret: str | None = field(default=None, repr=False)
    #: key under ``data`` listing the changed attributes of contact_updated; a guess (PIGGY_WEBHOOK_CHANGED_KEY)
    changed_key: str = "changed_attributes"
    #: subscription names start with this, so that ours are recognisable in Piggy's dashboard (PIGGY_WEBHOOK_NAME)
    name: str = "marketing-actions"


class PiggyWebhookFormat:
    platform = PLATFORM
    events = EVENTS

    def __init__(self, config: PiggyWebhookConfig | None = None) -> None:
        self.config = config or PiggyWebhookConfig()

    def new_secret(self) -> str | None:
        return secrets.token_hex(32) if self.config.send_secret else None

    def verify(self, headers: Mapping[str, str], raw: bytes, secrets_: tuple[str, ...], now: float) -> None:
        sig = (headers.get(self.config.header) or "").strip().lower()
        if not sig:
            raise SignatureError(f"no {self.config.header} header")
        keys = [s for s in (*secrets_, self.config.account_secret) if s]
        if not keys:
            raise SignatureError("no secret to check the signature with")
        if not matches_any([hmac_hex(k, raw) for k in keys], sig):
            raise SignatureError("signature does not match")

    def parse(self, raw: bytes, event: str) -> Inbound:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("the body is not a JSON object")
        data = doc.get("data")
        data = data if isinstance(data, dict) else {}
        changed = data.get(self.config.changed_key)
        names = tuple(str(a) for a in changed) if isinstance(changed, list) else None
        return Inbound(event=str(doc.get("type") or event), data=data, changed=names)

    def dedupe_key(self, inbound: Inbound, raw: bytes) -> str:
        return body_digest(inbound.event.encode(), raw)


def _hook(item: Any) -> PlatformHook | None:
    if not isinstance(item, dict) or not item.get("uuid"):
        return None
    attrs = item.get("properties") or item.get("attributes") or []
    return PlatformHook(id=str(item["uuid"]), event=str(item.get("event_type") or ""), url=str(item.get("url") or ""),
                        active=str(item.get("status") or "ACTIVE").upper() == "ACTIVE",
                        attributes=tuple(sorted(str(a) for a in attrs if isinstance(a, str))),
                        name=item.get("name"))


class PiggyWebhookManager:
    """The ``webhook-subscriptions`` calls, through the account's Piggy client."""

    def __init__(self, client: PiggyClient, config: PiggyConfig, hooks: PiggyWebhookConfig) -> None:
        self.client = client
        self.config = config
        self.hooks = hooks

    def list_hooks(self, event: str) -> list[PlatformHook]:
        data = self.client.request("GET", self.hooks.path, params={"event_type": event})
        return [h for h in (_hook(i) for i in data or []) if h is not None]

    def create_hook(self, event: str, url: str, *, secret: str | None, attributes: tuple[str, ...],
                    name: str) -> CreatedHook:
        body: dict[str, Any] = {"name": name, "event_type": event, "url": url, "status": "ACTIVE"}
        if secret:
            body["secret"] = secret
        if attributes:
            body["attributes"] = list(attributes)
        data = self.client.request("POST", self.hooks.path, body=body)
        if not isinstance(data, dict) or not data.get("uuid"):
            raise errors.Unavailable("Piggy answered the webhook subscription without a uuid.")
        return CreatedHook(id=str(data["uuid"]), secret=secret)

    def update_hook(self, hook_id: str, *, url: str, attributes: tuple[str, ...], active: bool = True) -> None:
        body: dict[str, Any] = {"url": url, "status": "ACTIVE" if active else "INACTIVE"}
        if attributes:
            body["attributes"] = list(attributes)
        self.client.request("PUT", f"{self.hooks.path}/{hook_id}", body=body)

    def delete_hook(self, hook_id: str) -> None:
        try:
            self.client.request("DELETE", f"{self.hooks.path}/{hook_id}")
        except errors.NotFound:
            pass

    def watchable_attributes(self) -> tuple[str, ...]:
        path = self.config.attributes_path
        params = {"entity": "contact"} if path.rstrip("/").endswith("custom-attributes") else None
        data = self.client.request("GET", path, params=params)
        return tuple(sorted(str(a["name"]) for a in data or [] if isinstance(a, dict) and a.get("name")))
