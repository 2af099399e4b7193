"""The Spoki simulator's outgoing webhooks (V2): the ``external-webhooks`` API and signed events from its state.

Management (``webhooks-relay.md`` §2.1, from the Postman collection [S]): ``GET`` (filters ``is_active``,
``event``) and ``POST /api/1/external-webhooks/`` (``{event, version: 2, url, is_active}``; the answer holds
``id`` and the webhook's own ``secret`` ``whsec_...``), ``GET``/``PATCH``/``DELETE
/api/1/external-webhooks/{id}/``, ``POST .../{id}/test/`` and ``POST .../{id}/rotate_secret/``.

Events, fired from the simulator's real state after any call that changed it: ``contact.created``,
``contact.updated``, ``contact.deleted`` (data: the contact), ``contact_tag.created``/``deleted`` (data:
``{contact, tag}``), ``contact_list.created``/``deleted`` (data: ``{contact, list}``) - the tag and list shapes
are guesses - and ``message.inbound`` through the control call ``POST /__sim__/messages/inbound``. Envelope
``{"version": 2, "event", "event_uuid", "timestamp", "data"}``; header ``X-Spoki-Signature: t=<unix>,v2=<hex
HMAC-SHA256(secret, "<t>.<body>")>`` (a fresh ``t`` on each retry, the same ``event_uuid``) and
``X-SPOKI-ACCOUNT``. Sent after the call answered; retried like Piggy (Spoki's policy is not documented).
"""

from __future__ import annotations

import copy
import json
import secrets
import time
import uuid as uuidlib
from typing import Any

from werkzeug.routing import Rule

from service.providers.spoki.webhooks import EVENTS
from service.providers.webhooks import hmac_hex
from service.sandbox.webhook_sender import WebhookSender

EVENT_NAMES = tuple(e.name for e in EVENTS)
ACCOUNT_ID = "spoki-demo-account"


def rules(api: str) -> list[Rule]:
    base = f"{api}/external-webhooks"
    return [
        Rule(f"{base}/", methods=["GET", "POST"], endpoint="wh_collection"),
        Rule(f"{base}/<int:wid>/", methods=["GET", "PATCH", "DELETE"], endpoint="wh_one"),
        Rule(f"{base}/<int:wid>/test/", methods=["POST"], endpoint="wh_test"),
        Rule(f"{base}/<int:wid>/rotate_secret/", methods=["POST"], endpoint="wh_rotate"),
        Rule("/__sim__/webhooks", methods=["GET"], endpoint="sim_webhooks"),
        Rule("/__sim__/webhooks/redeliver", methods=["POST"], endpoint="sim_webhooks_redeliver"),
        Rule("/__sim__/webhooks/config", methods=["POST"], endpoint="sim_webhooks_config"),
        Rule("/__sim__/messages/inbound", methods=["POST"], endpoint="sim_message_inbound"),
    ]


def _secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


class SpokiWebhooks:
    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.sender = WebhookSender("spoki")
        self.hooks: dict[int, dict[str, Any]] = {}
        self._next = 500

    def reset(self) -> None:
        self.hooks = {}
        self.sender.reset()

    def active(self) -> bool:
        return any(h["is_active"] for h in self.hooks.values())

    # -- management API -----------------------------------------------------------------------------------
    @staticmethod
    def _public(h: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
        out = {k: h[k] for k in ("id", "event", "version", "url", "is_active", "created_datetime")}
        if with_secret:
            out["secret"] = h["secret"]
        return out

    def _hook(self, wid: int) -> dict[str, Any]:
        h = self.hooks.get(wid)
        if h is None:
            raise self.sim.not_found()
        return h

    def wh_collection(self, request, body: dict[str, Any]) -> tuple[Any, int]:
        if request.method == "GET":
            items = [self._public(h) for h in self.hooks.values()
                     if request.args.get("event") in (None, "", h["event"])
                     and request.args.get("is_active") in (None, "", str(h["is_active"]).lower())]
            return self.sim.page(request, items), 200
        errors: dict[str, list[str]] = {}
        if body.get("event") not in EVENT_NAMES:
            errors["event"] = [f'"{body.get("event")}" is not a valid choice.']
        if body.get("version", 2) != 2:
            errors["version"] = ["Only version 2 webhooks can be created."]
        url = str(body.get("url") or "")
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            errors["url"] = ["Enter a valid public https URL."]
        if errors:
            raise self.sim.fields_error(errors)
        self._next += 1
        h = {"id": self._next, "event": body["event"], "version": 2, "url": url,
             "is_active": bool(body.get("is_active", True)), "secret": _secret(),
             "created_datetime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.hooks[h["id"]] = h
        self.sim.counters["webhooks_created"] += 1
        return self._public(h, with_secret=True), 201

    def wh_one(self, request, body: dict[str, Any], wid: int) -> tuple[Any, int]:
        h = self._hook(wid)
        if request.method == "DELETE":
            del self.hooks[wid]
            self.sim.counters["webhooks_deleted"] += 1
            return None, 204
        if request.method == "PATCH":
            if "url" in body:
                h["url"] = str(body["url"])
            if "is_active" in body:
                h["is_active"] = bool(body["is_active"])
            self.sim.counters["webhooks_updated"] += 1
        return self._public(h), 200

    def wh_test(self, request, body: dict[str, Any], wid: int) -> tuple[Any, int]:
        h = self._hook(wid)
        self._send(h, h["event"], {"test": True})
        return {"detail": "Test event sent."}, 200

    def wh_rotate(self, request, body: dict[str, Any], wid: int) -> tuple[Any, int]:
        h = self._hook(wid)
        h["secret"] = _secret()
        return self._public(h, with_secret=True), 200

    # -- firing ---------------------------------------------------------------------------------------------
    @staticmethod
    def snapshot(contacts: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {cid: copy.deepcopy(c) for cid, c in contacts.items()}

    def after(self, before: dict[int, dict[str, Any]], contacts: dict[int, dict[str, Any]]) -> None:
        """Fire what the call changed (``before``: :meth:`snapshot` taken before it)."""
        for cid, old in before.items():
            if cid not in contacts:
                self.fire("contact.deleted", {k: v for k, v in old.items() if k in ("id", "phone", "email")})
        for cid, c in contacts.items():
            old = before.get(cid)
            contact = self.sim.contact_json(c)
            if old is None:
                self.fire("contact.created", contact)
            elif {k: v for k, v in old.items() if k not in ("tags", "lists")} != \
                    {k: v for k, v in c.items() if k not in ("tags", "lists")}:
                self.fire("contact.updated", contact)
            old_tags, old_lists = set(old["tags"]) if old else set(), set(old["lists"]) if old else set()
            for tid in sorted(set(c["tags"]) - old_tags):
                self.fire("contact_tag.created", {"contact": contact, "tag": self._named(self.sim.tags, tid)})
            for tid in sorted(old_tags - set(c["tags"])):
                self.fire("contact_tag.deleted", {"contact": contact, "tag": self._named(self.sim.tags, tid)})
            for lid in sorted(set(c["lists"]) - old_lists):
                self.fire("contact_list.created", {"contact": contact, "list": self._named(self.sim.lists, lid)})
            for lid in sorted(old_lists - set(c["lists"])):
                self.fire("contact_list.deleted", {"contact": contact, "list": self._named(self.sim.lists, lid)})

    @staticmethod
    def _named(table: dict[int, dict[str, Any]], item_id: int) -> dict[str, Any]:
        item = table.get(item_id) or {}
        return {"id": item_id, "name": item.get("name")}

    def fire(self, event: str, data: dict[str, Any]) -> int:
        hooks = [h for h in self.hooks.values() if h["is_active"] and h["event"] == event]
        for h in hooks:
            self._send(h, event, data)
        return len(hooks)

    def _send(self, h: dict[str, Any], event: str, data: dict[str, Any]) -> None:
        body = json.dumps({"version": 2, "event": event, "event_uuid": str(uuidlib.uuid4()),
                           "timestamp": round(time.time(), 3), "data": data}).encode()
        secret = h["secret"]

        def headers(_attempt: int) -> dict[str, str]:
            t = str(int(time.time()))
            return {"X-Spoki-Signature": f"t={t},v2={hmac_hex(secret, t.encode() + b'.' + body)}",
                    "X-SPOKI-ACCOUNT": ACCOUNT_ID}

        self.sender.send(h["url"], body, headers, event=event, webhook=h["id"])
