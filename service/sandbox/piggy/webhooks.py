"""The Piggy simulator's webhooks: the ``webhook-subscriptions`` API and signed webhooks fired from its state.

Management (``webhooks-relay.md`` §1.1): list (``event_type``, ``status`` filters), create (``name``,
``event_type``, ``url`` required; ``secret``, ``attributes``, ``status`` optional; 201), get, update (``name``,
``url``, ``status``, ``attributes``; ``event_type`` and ``secret`` are immutable), delete (``{"data": [],
"meta": []}``); unknown uuid: 404 with code 80300. ``contact_updated`` needs ``attributes`` (each an existing
contact attribute) and fires only when one of them changes.

Webhooks: a contact created (``contact_created``) or a watched attribute changed (``contact_updated``) by any
call - find-or-create, create, attribute updates, whatever caused it - fires ``{"type", "data": {"contact":
...}}`` to every active subscription of the event, encoded like PHP's ``json_encode`` (``/`` escaped), with the
header ``Signature`` = hex HMAC-SHA256 of the body with the subscription's secret or, without one, the
account's (:data:`demo.DEMO_WEBHOOK_SECRET`). ``contact_updated`` also lists ``changed_attributes`` under
``data`` - a guess (service.providers.piggy.webhooks). Sent after the call answered, retried 5 times.
"""

from __future__ import annotations

import copy
import json
import uuid as uuidlib
from datetime import UTC, datetime
from typing import Any

from werkzeug.routing import Rule

from service.providers.piggy.webhooks import EVENTS
from service.providers.webhooks import hmac_hex
from service.sandbox.piggy import demo
from service.sandbox.webhook_sender import WebhookSender

CODE_WEBHOOK_NOT_FOUND = 80300
EVENT_TYPES = tuple(e.name for e in EVENTS)


def rules(prefix: str) -> list[Rule]:
    base = f"{prefix}/webhook-subscriptions"
    return [
        Rule(base, methods=["GET", "POST"], endpoint="wh_collection"),
        Rule(f"{base}/<wuuid>", methods=["GET", "PUT", "DELETE"], endpoint="wh_one"),
        Rule("/__sim__/webhooks", methods=["GET"], endpoint="sim_webhooks"),
        Rule("/__sim__/webhooks/redeliver", methods=["POST"], endpoint="sim_webhooks_redeliver"),
        Rule("/__sim__/webhooks/config", methods=["POST"], endpoint="sim_webhooks_config"),
    ]


def php_json(value: Any) -> bytes:
    """Like PHP's ``json_encode``: compact, ``/`` escaped, non-ASCII as ``\\uXXXX``."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


class PiggyWebhooks:
    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.sender = WebhookSender("piggy")
        self.account_secret = demo.DEMO_WEBHOOK_SECRET
        self.subs: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        self.subs = {}
        self.sender.reset()

    def active(self) -> bool:
        return any(s["status"] == "ACTIVE" for s in self.subs.values())

    # -- management API -----------------------------------------------------------------------------------
    def _public(self, s: dict[str, Any]) -> dict[str, Any]:
        return {"uuid": s["uuid"], "name": s["name"], "event_type": s["event_type"], "url": s["url"],
                "status": s["status"], "version": "V1", "created_at": s["created_at"],
                "properties": list(s["attributes"])}

    def _attributes(self, event_type: str, value: Any, errors: dict[str, list[str]], required: bool) -> list[str]:
        if value in (None, "", []):
            if required and event_type == "contact_updated":
                errors["attributes"] = ["The attributes field is required for the contact_updated event."]
            return []
        items = value if isinstance(value, list) else [value]
        known = {a["name"] for a in self.sim.attributes}
        bad = [str(a) for a in items if str(a) not in known]
        if bad:
            errors["attributes"] = [f"The attribute {b} does not exist." for b in bad]
        return sorted({str(a) for a in items})

    def wh_collection(self, request, body: dict[str, Any]) -> tuple[Any, int]:
        if request.method == "GET":
            items = [self._public(s) for s in self.subs.values()
                     if request.args.get("event_type") in (None, "", s["event_type"])
                     and request.args.get("status") in (None, "", s["status"])]
            return items, 200
        errors: dict[str, list[str]] = {}
        for k in ("name", "event_type", "url"):
            if not body.get(k):
                errors[k] = [f"The {k.replace('_', ' ')} field is required."]
        if body.get("event_type") and body["event_type"] not in EVENT_TYPES:
            errors["event_type"] = ["The selected event type is invalid."]
        status = str(body.get("status") or "ACTIVE").upper()
        if status not in ("ACTIVE", "INACTIVE"):
            errors["status"] = ["The selected status is invalid."]
        attrs = self._attributes(str(body.get("event_type") or ""), body.get("attributes"), errors, True)
        if errors:
            raise self.sim.invalid(errors)
        s = {"uuid": str(uuidlib.uuid4()), "name": str(body["name"]), "event_type": body["event_type"],
             "url": str(body["url"]), "status": status, "secret": body.get("secret") or None, "attributes": attrs,
             "created_at": datetime.now(UTC).replace(microsecond=0).isoformat()}
        self.subs[s["uuid"]] = s
        self.sim.counters["webhooks_created"] += 1
        return self._public(s), 201

    def wh_one(self, request, body: dict[str, Any], wuuid: str) -> tuple[Any, int]:
        s = self.subs.get(wuuid)
        if s is None:
            raise self.sim.api_error(404, CODE_WEBHOOK_NOT_FOUND, "Webhook subscription not found.")
        if request.method == "DELETE":
            del self.subs[wuuid]
            self.sim.counters["webhooks_deleted"] += 1
            return [], 200
        if request.method == "PUT":
            errors: dict[str, list[str]] = {}
            if "event_type" in body or "secret" in body:
                errors["event_type" if "event_type" in body else "secret"] = ["This field cannot be changed."]
            attrs = self._attributes(s["event_type"], body.get("attributes"), errors, "attributes" in body)
            status = str(body.get("status") or s["status"]).upper()
            if status not in ("ACTIVE", "INACTIVE"):
                errors["status"] = ["The selected status is invalid."]
            if errors:
                raise self.sim.invalid(errors)
            s.update({k: body[k] for k in ("name", "url") if body.get(k)})
            s["status"] = status
            if "attributes" in body:
                s["attributes"] = attrs
            self.sim.counters["webhooks_updated"] += 1
        return self._public(s), 200

    # -- firing ---------------------------------------------------------------------------------------------
    @staticmethod
    def snapshot(contacts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {u: copy.deepcopy(c["current_values"]) for u, c in contacts.items()}

    def after(self, before: dict[str, dict[str, Any]], contacts: dict[str, dict[str, Any]]) -> None:
        """Fire what the call changed (``before``: :meth:`snapshot` taken before it)."""
        for u, c in contacts.items():
            if u not in before:
                self.fire("contact_created", {"contact": self._contact(c)})
                continue
            old, new = before[u], c["current_values"]
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if changed:
                self.fire("contact_updated", {"contact": self._contact(c), "changed_attributes": changed},
                          changed=changed)

    @staticmethod
    def _contact(c: dict[str, Any]) -> dict[str, Any]:
        return {"uuid": c["uuid"], "email": c["email"], "current_values": copy.deepcopy(c["current_values"])}

    def fire(self, event_type: str, data: dict[str, Any], changed: list[str] | None = None) -> int:
        fired = 0
        for s in list(self.subs.values()):
            if s["status"] != "ACTIVE" or s["event_type"] != event_type:
                continue
            if changed is not None and event_type == "contact_updated" and not set(changed) & set(s["attributes"]):
                continue
            body = php_json({"type": event_type, "data": data})
            signature = hmac_hex(s["secret"] or self.account_secret, body)
            self.sender.send(s["url"], body, lambda _attempt, sig=signature: {"Signature": sig},
                             event=event_type, subscription=s["uuid"])
            fired += 1
        return fired
