"""The Spotler simulator's contacts: properties, get, insert (one or many), update, anonymize, search and the
subscription call, with Spotler's property validation (email, int, money, dates, gender, mobNr, postcode, sets)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import re
import uuid
from typing import Any

from werkzeug.wrappers import Response

from service.sandbox.spotler.wire import SimError, json_response, parse_iso

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_MOBILE = re.compile(r"^\+?[0-9][0-9 ()-]{5,19}$")
_POSTCODE = re.compile(r"^[A-Za-z0-9 -]{2,10}$")

CONTACT_ROUTES: list[tuple[str, str, list[str]]] = [
    ("/contact/properties/list", "properties", ["GET"]),
    ("/contact/search", "search", ["GET"]),
    ("/contact/list", "insert_contacts", ["POST"]),
    ("/contact/anonymize/<eid>", "anonymize", ["PUT"]),
    ("/contact", "insert_contact", ["POST"]),
    ("/contact/<eid>", "get_contact", ["GET"]),
    ("/contact/<eid>", "update_contact", ["PUT"]),
    ("/subscription/subscribe", "subscribe", ["POST"]),
]


class ContactsMixin:
    """Mixed into :class:`~service.sandbox.spotler.app.SpotlerSimulator` (which provides ``lock``, the state,
    ``_now``, ``_effect``, ``_date``, ``_page`` and ``_contact_out``)."""

    def _get_contact(self, external_id: str, *, status: int = 404, error_type: str = "CONTACT_NOT_FOUND",
                     message: str = "Given contact not found") -> dict:
        c = self.contacts.get(external_id)
        if c is None:
            raise SimError(status, error_type, message)
        return c

    def _validate_properties(self, incoming: Any) -> dict[str, Any]:
        """Normalised values; raises 400 'Email is invalid' / 'Property is invalid'."""
        if incoming is None:
            return {}
        if not isinstance(incoming, dict):
            raise SimError(400, "INVALID_PROPERTY", "Property is invalid")
        out = {}
        for name, value in incoming.items():
            prop = self.properties.get(name)
            if prop is None:
                raise SimError(400, "INVALID_PROPERTY", "Property is invalid")
            out[name] = _validate_value(prop, value)
        return out

    def _write_contact(self, external_id: str, raw: dict, *, purge: bool, create: bool) -> str:
        """Insert or update one contact from a wire Contact. Returns 'created' or 'updated'."""
        props = self._validate_properties(raw.get("properties"))
        channels = raw.get("channels")
        if channels is not None and not (isinstance(channels, list) and all(
                isinstance(ch, dict) and ch.get("name") in ("EMAIL", "SMS") and isinstance(ch.get("value"), bool)
                for ch in channels)):
            raise SimError(400, "INVALID_PARAMS", "Channel is invalid")
        now = self._now()
        existing = self.contacts.get(external_id)
        if existing is None:
            if not create:
                raise SimError(404, "CONTACT_NOT_FOUND", "Given contact not found")
            stored: dict[str, Any] = {}
            _apply(stored, props, purge=True)
            chan = {"EMAIL": bool(stored.get("email"))} if channels is None else {}
            for ch in channels or []:
                chan[ch["name"]] = ch["value"]
            self.contacts[external_id] = {
                "externalId": external_id, "encryptedId": encrypted_id(external_id), "created": now,
                "lastChanged": now, "testGroup": bool(raw.get("testGroup", False)), "temporary": False,
                "properties": stored, "channels": chan, "anonymized": False,
            }
            self._effect("contacts_created")
            return "created"
        _apply(existing["properties"], props, purge=purge)
        for ch in channels or []:
            existing["channels"][ch["name"]] = ch["value"]
        existing["lastChanged"] = now
        existing["anonymized"] = False
        self._effect("contacts_updated")
        return "updated"

    def h_properties(self, request, body):
        return json_response(200, [copy.deepcopy(p) for p in self.properties.values()])

    def h_get_contact(self, request, body, eid):
        return json_response(200, self._contact_out(self._get_contact(eid)))

    def h_insert_contact(self, request, body):
        if not isinstance(body, dict) or not isinstance(body.get("contact"), dict):
            raise SimError(400, "INVALID_PARAMS", "Contact is required")
        contact = body["contact"]
        eid = contact.get("externalId")
        if not isinstance(eid, str) or not eid.strip():
            raise SimError(400, "INVALID_PARAMS", "Contact without externalId found")
        if not body.get("update", False) and eid in self.contacts:
            raise SimError(400, "CONTACT_ALREADY_EXISTS", "Contact already exists")
        self._write_contact(eid, contact, purge=bool(body.get("purge", False)), create=True)
        return Response(status=204)

    def h_update_contact(self, request, body, eid):
        self._get_contact(eid)
        if not isinstance(body, dict) or not isinstance(body.get("contact"), dict):
            raise SimError(400, "INVALID_PARAMS", "Contact is required")
        contact = body["contact"]
        if contact.get("externalId") not in (None, eid):
            raise SimError(400, "INVALID_PARAMS", "Path id doesn't match contact id")
        self._write_contact(eid, contact, purge=bool(body.get("purge", False)), create=False)
        return Response(status=204)

    def h_insert_contacts(self, request, body):
        if not isinstance(body, dict) or not isinstance(body.get("contacts"), list):
            raise SimError(400, "INVALID_PARAMS", "Contacts are required")
        contacts = body["contacts"]
        if len(contacts) > 100:
            raise SimError(400, "INVALID_PARAMS", "Too many contacts provided (max is 100)")
        if any(not isinstance(c, dict) or not c.get("externalId") for c in contacts):
            raise SimError(400, "INVALID_PARAMS", "Contact without externalId found")
        update, purge = bool(body.get("update", False)), bool(body.get("purge", False))
        results = []
        for c in contacts:
            eid = c["externalId"]
            if not update and eid in self.contacts:
                results.append({"externalId": eid, "code": "CONTACT_ALREADY_EXISTS",
                                "message": "Contact already exists"})
                continue
            try:
                self._write_contact(eid, c, purge=purge, create=True)
            except SimError as exc:
                code = "PROPERTY_INVALID" if (exc.body or {}).get("errorType") == "INVALID_PROPERTY" else "ERROR"
                results.append({"externalId": eid, "code": code, "message": (exc.body or {}).get("message", "")})
                continue
            results.append({"externalId": eid, "code": "OK", "message": "OK"})
        return json_response(200, results)

    def h_anonymize(self, request, body, eid):
        c = self._get_contact(eid)
        c["properties"] = {}
        c["channels"] = {k: False for k in c["channels"]}
        c["anonymized"] = True
        c["lastChanged"] = self._now()
        self.contact_tags.pop(eid, None)
        for a in self.audiences.values():
            if eid in a["members"]:
                a["members"].remove(eid)
        self._effect("contacts_anonymized")
        return Response(status=204)

    def h_search(self, request, body):
        query = request.args.get("MPSearchQuery")
        if not query or "=" not in query:
            raise SimError(400, "INVALID_PARAMS", "Invalid MPSearchQuery")
        name, _, value = query.partition("=")
        prop = self.properties.get(name.strip())
        if prop is None:
            raise SimError(400, "INVALID_PROPERTY", "Property is invalid")
        matches = []
        for c in sorted(self.contacts.values(), key=lambda x: (x["created"], x["externalId"])):
            stored = c["properties"].get(prop["name"])
            if stored is None or isinstance(stored, dict):
                continue
            if prop["type"] == "email":
                hit = str(stored).lower() == value.strip().lower()
            else:
                hit = str(stored) == value
            if hit:
                matches.append(self._contact_out(c))
        return self._page(request, matches, "contacts")

    def h_subscribe(self, request, body):
        if not isinstance(body, dict):
            raise SimError(400, "INVALID_PARAMS", "Contact is required")
        props = body.get("properties") or {}
        eid = body.get("externalId")
        if not eid:
            email = props.get("email") if isinstance(props, dict) else None
            if not isinstance(email, str) or not _EMAIL.match(email.strip()):
                raise SimError(400, "INVALID_PROPERTY", "Email is invalid")
            found = [c for c in self.contacts.values() if str(c["properties"].get("email", "")).lower()
                     == email.strip().lower()]
            eid = found[0]["externalId"] if found else "sub-" + uuid.uuid4().hex[:16]
        self._write_contact(eid, body, purge=False, create=True)
        self._effect("subscriptions")
        return Response(status=204)


def encrypted_id(external_id: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(external_id.encode()).digest()[:12]).decode().rstrip("=")


def _invalid() -> SimError:
    return SimError(400, "INVALID_PROPERTY", "Property is invalid")


def _validate_value(prop: dict, value: Any) -> Any:
    """A stored value for ``prop`` (None clears). ``set`` values become ``{bit: enabled}``."""
    ptype = prop["type"]
    if value is None or value == "":
        return None
    if ptype == "set":
        bits = {str(e["bit"]) for e in prop.get("entries", [])}
        if not isinstance(value, list):
            raise _invalid()
        out: dict[str, bool] = {}
        for entry in value:
            if isinstance(entry, dict) and isinstance(entry.get("bit"), int) and not isinstance(entry["bit"], bool):
                bit, on = str(entry["bit"]), entry.get("enabled", True)
                if not isinstance(on, bool):
                    raise _invalid()
            elif isinstance(entry, int) and not isinstance(entry, bool):
                bit, on = str(entry), True
            else:
                raise _invalid()
            if bit not in bits:
                raise _invalid()
            out[bit] = on
        return out
    if ptype == "email":
        if not isinstance(value, str) or not _EMAIL.match(value.strip()):
            raise SimError(400, "INVALID_PROPERTY", "Email is invalid")
        return value.strip()
    if ptype == "int":
        if isinstance(value, bool):
            raise _invalid()
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
            return int(value)
        raise _invalid()
    if ptype == "money":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _invalid()
        if isinstance(value, str) and not re.fullmatch(r"-?\d+(\.\d{1,2})?", value.strip()):
            raise _invalid()
        return value
    if ptype in ("date", "birthdate"):
        if not isinstance(value, str):
            raise _invalid()
        try:
            d = dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise _invalid() from None
        if ptype == "birthdate" and d > dt.date.today():
            raise _invalid()
        return value.strip()
    if ptype == "dateTime":
        if not isinstance(value, str) or parse_iso(value) is None:
            raise _invalid()
        return value.strip()
    if ptype == "gender":
        if value not in ("M", "F", "U"):
            raise _invalid()
        return value
    if ptype == "mobNr":
        if not isinstance(value, str) or not _MOBILE.match(value.strip()):
            raise _invalid()
        return value.strip()
    if ptype == "postcode":
        if not isinstance(value, str) or not _POSTCODE.match(value.strip()):
            raise _invalid()
        return value.strip()
    # string
    if isinstance(value, (dict, list)) or len(str(value)) > 255:
        raise _invalid()
    return value if isinstance(value, str) else str(value)


def _apply(stored: dict[str, Any], props: dict[str, Any], *, purge: bool) -> None:
    """Merge validated ``props`` into ``stored``; set properties merge by bit unless purging."""
    if purge:
        for name in list(stored):
            if name not in props:
                del stored[name]
    for name, value in props.items():
        if value is None:
            stored.pop(name, None)
        elif isinstance(value, dict):
            current = {} if purge else dict(stored.get(name) or {})
            current.update(value)
            stored[name] = current
        else:
            stored[name] = value
