"""PiggyProvider: the Piggy (Leat) adapter behind the provider interface.

Contacts are keyed by e-mail (Piggy's natural key); ``ContactRef.external_id`` / ``Contact.external_id`` is
Piggy's contact ``uuid``. Contact fields are Piggy's contact attributes (``current_values``), permissions are
subscription types, automations are ``contact_updated`` automations started through ``automations/runs``.
Piggy has no tags, scores, lists/audiences, campaigns or a way to stop an automation run (see ``unsupported``
and docs/piggy-spoki-coverage.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ClassVar

from service.providers import errors
from service.providers.http import UnsafeCallGuard
from service.cache import TTLCache
from service.providers.base import (
    Automation,
    AutomationField,
    AutomationRunResult,
    Contact,
    ContactField,
    ContactRef,
    FieldOption,
    FieldValue,
    Provider,
    StartResult,
    one_contact,
)
from service.providers.piggy.client import PiggyClient
from service.providers.piggy.config import PiggyConfig

#: Piggy attribute type -> our field type vocabulary (see docs/piggy-spoki-coverage.md)
TYPE_MAP: dict[str, str] = {
    "text": "string", "long_text": "string", "rich_text": "string", "url": "string", "color": "string",
    "license_plate": "string", "identifier": "string", "date_range": "string", "time_range": "string",
    "file_upload": "string", "media_upload": "string", "select": "string",
    "number": "int", "float": "money", "date": "date", "date_time": "dateTime", "birth_date": "birthdate",
    "email": "email", "phone": "mobNr", "multi_select": "set", "boolean": "boolean",
}

_TRUE = {"1", "true", "yes", "y", "on", "ja", "waar"}
_FALSE = {"0", "false", "no", "n", "off", "nee", "onwaar"}
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

NO_STOP = "Piggy has no API to stop an automation run; stop it in the Piggy dashboard."
NO_TRIGGERS = ("Piggy pushes its events through webhooks and has no change feed to poll; use the webhook trigger "
               "'When an event occurs in the platform' (OnPlatformEvent) instead.")


class PiggyProvider(Provider):
    name: ClassVar[str] = "piggy"
    display_name: ClassVar[str] = "Piggy"
    automation_hint: ClassVar[str] = ("on Piggy the API can start automations whose event is 'contact updated'; "
                                      "only those appear there")
    unsupported: ClassVar[dict[str, str]] = {
        "GetAutomationFieldsSchema": (
            "Piggy does not tell which data an automation uses; send the values as free fields (fieldsText), "
            "or list the keys per automation in PIGGY_AUTOMATION_FIELDS."),
        "StopAutomation": NO_STOP,
        "StopAutomationRuns": NO_STOP,
        "ListCampaigns": "Piggy has no campaigns that can be triggered through its API; use an automation instead.",
        "TriggerCampaign": "Piggy has no campaigns that can be triggered through its API; use StartAutomation with "
                           "a contact_updated automation instead.",
        "StopCampaign": "Piggy has no campaigns that can be stopped through its API.",
        "ListTags": "Piggy has no tags; use a contact attribute (SetContactField) to mark contacts instead.",
        "AddTag": "Piggy has no tags; use a contact attribute (SetContactField) to mark contacts instead.",
        "RemoveTag": "Piggy has no tags; use a contact attribute (SetContactField) to mark contacts instead.",
        "SetScore": "Piggy has no tag scores; use a number contact attribute (SetContactField) instead.",
        "ListAudiences": "Piggy has no lists or audiences; use permissions (subscription types) or a contact "
                         "attribute instead.",
        "CreateAudience": "Piggy has no lists or audiences; create a subscription type or attribute in the Piggy "
                          "dashboard instead.",
        "AddToAudience": "Piggy has no lists or audiences; use SetPermissions (subscription types) or "
                         "SetContactField instead.",
        "RemoveFromAudience": "Piggy has no lists or audiences; use SetPermissions (subscription types) or "
                              "SetContactField instead.",
        **{op: NO_TRIGGERS for op in ("OnContactAdded", "OnContactChanged", "OnContactBounced",
                                      "OnContactUnsubscribed", "OnMailingInteraction", "ListMailings")},
    }

    def __init__(self, config: PiggyConfig, *, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self._clock = clock or time.monotonic
        self.client = PiggyClient(config, clock=self._clock)
        self._cache = TTLCache(config.cache_seconds, self._clock)
        self._automation_fields = {k: v for k, v in config.automation_fields}
        self._automation_uuids = {k.lower(): v for k, v in config.automation_uuids}
        if self._automation_fields:
            # automations carry their data keys (from configuration): the dynamic schema can be offered
            self.unsupported = {k: v for k, v in type(self).unsupported.items() if k != "GetAutomationFieldsSchema"}

    def close(self) -> None:
        self.client.close()

    # -- connection ---------------------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        self.client.request("GET", self.config.ping_path)
        return {"platform": "piggy", "baseUrl": self.config.base_url, "auth": self.config.auth_mode}

    # -- contact fields -----------------------------------------------------------------------------------
    def _attribute_defs(self) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            path = self.config.attributes_path
            params = None
            if path.split("?")[0].rstrip("/").endswith("custom-attributes") and "entity=" not in path:
                params = {"entity": "contact"}
            data = self.client.request("GET", path, params=params)
            return [a for a in data or [] if isinstance(a, dict) and a.get("name")]
        return self._cache.get("attributes", load)

    @staticmethod
    def _field_type(attr: dict[str, Any]) -> str:
        # by type only: a Piggy "gender" select keeps its own option values (our gender type would turn them
        # into M/F), a Dutch-only postcode check would refuse foreign postal codes in a text attribute
        return TYPE_MAP.get(str(attr.get("type") or attr.get("data_type") or "text"), "string")

    @staticmethod
    def _read_only(attr: dict[str, Any]) -> bool:
        return bool(attr.get("is_hard_read_only") or attr.get("is_soft_read_only"))

    @staticmethod
    def _options(attr: dict[str, Any]) -> tuple[FieldOption, ...]:
        out = []
        for o in attr.get("options") or []:
            if isinstance(o, dict) and o.get("value") is not None:
                out.append(FieldOption(name=str(o.get("label") or o.get("name") or o["value"]),
                                       value=str(o["value"]), description=o.get("description") or None))
        return tuple(out)

    def list_contact_fields(self) -> list[ContactField]:
        return [
            ContactField(name=str(a["name"]), display_name=str(a.get("label") or a["name"]), type=self._field_type(a),
                         options=self._options(a), read_only=self._read_only(a),
                         description=a.get("description") or None)
            for a in self._attribute_defs()
        ]

    # -- contacts -----------------------------------------------------------------------------------------
    @staticmethod
    def _to_contact(data: dict[str, Any]) -> Contact:
        subs = {}
        for s in data.get("subscriptions") or []:
            st = s.get("subscription_type") or {}
            if st.get("uuid"):
                subs[st["uuid"]] = bool(s.get("is_subscribed"))
        values = data.get("current_values")
        if not isinstance(values, dict):  # older accounts: only the deprecated attributes array
            values = {a["attribute"]["name"]: a.get("value") for a in data.get("attributes") or []
                      if isinstance(a, dict) and isinstance(a.get("attribute"), dict)}
        return Contact(external_id=str(data["uuid"]), email=data.get("email"), properties=dict(values),
                       extra={"id": data.get("id"), "uuid": data["uuid"], "subscriptions": subs})

    @staticmethod
    def _email(ref_email: str) -> str:
        email = ref_email.strip().lower()  # Piggy does not accept mixed-case e-mail (Magento module)
        if not _EMAIL_RE.match(email):
            raise errors.InvalidInput("The contact's e-mail address is not valid for Piggy.", code="INVALID_EMAIL")
        return email

    def _get_by_uuid(self, uuid: str) -> dict[str, Any]:
        return self.client.request("GET", f"contacts/{uuid}")

    def find_contact(self, ref: ContactRef) -> Contact | None:
        if not ref.external_id and not ref.email:
            raise errors.InvalidInput("Give the contact's email or externalId.", code="CONTACT_REF_REQUIRED")
        try:
            if ref.external_id:
                data = self._get_by_uuid(ref.external_id.strip())
            else:
                data = self._by_email("find-one-by", ref.email)
        except errors.NotFound:
            return None
        return self._to_contact(data)

    def _by_email(self, lookup: str, email: str) -> dict[str, Any]:
        """``contacts/find-one-by`` or ``contacts/find-or-create``; several contacts with the address: the one
        AMBIGUOUS_CONTACT of every platform (``base.one_contact``), before anything is created or changed."""
        email = self._email(email)
        try:
            return self.client.request("GET", f"contacts/{lookup}", params={"email": email})
        except errors.AmbiguousContact as exc:
            one_contact(self.display_name, [Contact(external_id=u, email=email) for u in exc.external_ids],
                        more=len(exc.external_ids) < 2)
            raise  # pragma: no cover - one_contact raised

    def upsert_contact(self, ref: ContactRef, properties: dict[str, Any], *, purge: bool = False) -> Contact:
        if ref.email:
            data = self._by_email("find-or-create", ref.email)
        elif ref.external_id:
            data = self._get_by_uuid(ref.external_id.strip())  # NotFound: Piggy cannot create without e-mail
        else:
            raise errors.InvalidInput("Piggy needs the contact's email to create or update it.",
                                      code="CONTACT_REF_REQUIRED")
        contact = self._to_contact(data)
        changes = dict(properties)
        if purge:
            given = {self._resolve_attr(n)["name"] for n in properties}
            for a in self._attribute_defs():
                name = a["name"]
                if name in given or self._read_only(a) or name == "email":
                    continue
                if contact.properties.get(name) not in (None, "", []):
                    changes[name] = None
        if not changes:
            return contact
        return self.update_contact(contact, changes)

    def _resolve_attr(self, name: str) -> dict[str, Any]:
        defs = self._attribute_defs()
        for match in (
            lambda a: a["name"] == name,
            lambda a: str(a["name"]).lower() == name.strip().lower(),
            lambda a: str(a.get("label") or "").strip().lower() == name.strip().lower(),
        ):
            found = [a for a in defs if match(a)]
            if len(found) == 1:
                return found[0]
        raise errors.InvalidInput(f"Piggy has no contact attribute named '{name}'.", code="UNKNOWN_FIELD",
                                  details={"field": name})

    def update_contact(self, contact: Contact, properties: dict[str, Any]) -> Contact:
        attrs: dict[str, Any] = {}
        for name, value in properties.items():
            attr = self._resolve_attr(name)
            if attr["name"] == "email" and isinstance(value, str) and value.strip().lower() == (contact.email or ""):
                continue  # the identity itself: nothing to change
            if self._read_only(attr):
                raise errors.InvalidInput(f"The Piggy attribute '{attr['name']}' is read-only.",
                                          code="FIELD_READ_ONLY", details={"field": attr["name"]})
            attrs[attr["name"]] = convert_value(attr, value)
        if not attrs:
            return contact
        data = self.client.request("PUT", f"contacts/{contact.external_id}", body={"attributes": attrs})
        return self._to_contact(data)

    def anonymize_contact(self, contact: Contact) -> None:
        self.client.request("POST", f"contacts/{contact.external_id}/delete", body={"type": self.config.anonymize_type})

    # -- permissions (subscription types) -----------------------------------------------------------------
    def _subscription_types(self) -> list[dict[str, Any]]:
        return self._cache.get("subscription_types",
                               lambda: [s for s in self.client.request("GET", "subscription-types") or []
                                        if isinstance(s, dict) and s.get("uuid")])

    def list_permissions(self) -> list[FieldOption]:
        return [FieldOption(name=str(s.get("name") or s["uuid"]), value=str(s["uuid"]),
                            description=s.get("description") or None)
                for s in self._subscription_types() if s.get("active", True)]

    def set_permissions(self, contact: Contact, changes: dict[str, bool]) -> dict[str, bool]:
        types = self._subscription_types()
        resolved: dict[str, bool] = {}
        for key, enabled in changes.items():
            st = next((s for s in types if s["uuid"] == key), None) or next(
                (s for s in types if str(s.get("name") or "").strip().lower() == str(key).strip().lower()), None)
            if st is None:
                raise errors.InvalidInput(f"Piggy has no subscription type '{key}'.", code="UNKNOWN_PERMISSION",
                                          details={"permission": key})
            resolved[st["uuid"]] = bool(enabled)
        for st_uuid, enabled in resolved.items():
            action = "subscribe" if enabled else "unsubscribe"
            self.client.request("PUT", f"contact-subscriptions/{contact.external_id}/{action}",
                                body={"subscription_type_uuid": st_uuid})
        state = self.client.request("GET", f"contact-subscriptions/{contact.external_id}") or []
        out = {}
        for s in state:
            st = s.get("subscription_type") or {}
            if st.get("uuid"):
                out[str(st["uuid"])] = bool(s.get("is_subscribed"))
        return out

    # -- automations --------------------------------------------------------------------------------------
    def _automations_raw(self) -> list[dict[str, Any]]:
        return self._cache.get("automations", lambda: [a for a in self.client.request("GET", "automations") or []
                                                        if isinstance(a, dict)])

    def _fields_for(self, uuid: str, name: str) -> tuple[AutomationField, ...]:
        keys = self._automation_fields.get(uuid) or self._automation_fields.get(name) or ()
        return tuple(AutomationField(name=k) for k in keys)

    def list_automations(self) -> list[Automation]:
        out = []
        for a in self._automations_raw():
            name = str(a.get("name") or "")
            uuid = a.get("uuid") or self._automation_uuids.get(name.lower())
            runnable = a.get("event") == "contact_updated"
            if not uuid or not (runnable or self.config.list_all_automations):
                continue
            out.append(Automation(
                id=str(uuid), name=name, status=str(a.get("status") or "active").upper(),
                fields=self._fields_for(str(uuid), name),
                extra={"event": a.get("event"), "runnable": runnable and a.get("status", "active") == "active"}))
        return out

    def start_automation(self, automation_id: str, contact: Contact, fields: list[FieldValue], *,
                         guard: UnsafeCallGuard | None = None) -> StartResult:
        automation_uuid = automation_id.strip()
        if not _UUID_RE.match(automation_uuid):
            automation_uuid = self._automation_uuids.get(automation_uuid.lower(), automation_uuid)
        body: dict[str, Any] = {"contact_uuid": contact.external_id, "automation_uuid": automation_uuid}
        data = {f.name: (list(f.values) if f.values else f.value) for f in fields}
        if data:
            body["data"] = data
        try:
            self.client.request("POST", "automations/runs", body=body, repeatable=False, guard=guard)
        except errors.NotFound as exc:
            if exc.code == "CONTACT_NOT_FOUND":
                raise errors.NotFound(f"Piggy has no contact with uuid {contact.external_id}.",
                                      code="CONTACT_NOT_FOUND", upstream_status=exc.upstream_status,
                                      error_type=exc.error_type) from exc
            raise errors.NotFound(f"Piggy has no automation with uuid {automation_uuid}.",
                                  code="AUTOMATION_NOT_FOUND", upstream_status=exc.upstream_status,
                                  error_type=exc.error_type) from exc
        except errors.InvalidInput as exc:
            field_errors = exc.details.get("errors") or {}
            if isinstance(field_errors, dict) and "automation_uuid" in field_errors and _UUID_RE.match(automation_uuid):
                # a well-formed, existing automation that Piggy refuses to run (not contact_updated / inactive)
                msgs = field_errors["automation_uuid"]
                reason = " ".join(msgs) if isinstance(msgs, list) else str(msgs)
                raise errors.Rejected(f"Piggy refused to start this automation: {reason}",
                                      code="AUTOMATION_NOT_RUNNABLE", upstream_status=exc.upstream_status,
                                      error_type=exc.error_type, details={"automationId": automation_uuid}) from exc
            raise
        return StartResult(result="OK", runs=(AutomationRunResult(automation_id=automation_uuid, result="OK"),))


# ---------------------------------------------------------------------------------------------------------
# value conversion (our values -> Piggy attribute values)
# ---------------------------------------------------------------------------------------------------------


def _bad(attr: dict[str, Any], value: Any, expected: str) -> errors.InvalidInput:
    return errors.InvalidInput(f"'{value}' is not a valid value for the Piggy attribute '{attr['name']}': "
                               f"expected {expected}.", code="INVALID_FIELD_VALUE", details={"field": attr["name"]})


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    s = str(value).strip()
    for parse in (lambda x: date.fromisoformat(x),
                  lambda x: datetime.fromisoformat(x.replace("Z", "+00:00")).date(),
                  lambda x: datetime.strptime(x, "%d-%m-%Y").date(),
                  lambda x: datetime.strptime(x, "%d/%m/%Y").date()):
        try:
            return parse(s)
        except ValueError:
            continue
    return None


def convert_value(attr: dict[str, Any], value: Any) -> Any:
    """Our value -> the value Piggy expects for this attribute type. None/'' clears. Raises InvalidInput."""
    if value is None or (isinstance(value, str) and value.strip() == "") or value == [] or value == ():
        return None
    t = str(attr.get("type") or attr.get("data_type") or "text")
    if t == "number":
        if isinstance(value, bool):
            raise _bad(attr, value, "a whole number")
        try:
            f = float(str(value).strip().replace(",", ".")) if not isinstance(value, (int, float)) else float(value)
        except ValueError:
            raise _bad(attr, value, "a whole number") from None
        if f != int(f):
            raise _bad(attr, value, "a whole number")
        return int(f)
    if t == "float":
        if isinstance(value, bool):
            raise _bad(attr, value, "a number")
        if isinstance(value, (int, float)):
            return float(value)
        s = str(value).strip()
        if "," in s and "." not in s:
            s = s.replace(",", ".")
        try:
            return float(s)
        except ValueError:
            raise _bad(attr, value, "a number") from None
    if t == "boolean":
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise _bad(attr, value, "true or false")
    if t in ("date", "birth_date"):
        d = _parse_date(value)
        if d is None:
            raise _bad(attr, value, "a date (YYYY-MM-DD)")
        return d.isoformat()
    if t == "date_time":
        if isinstance(value, datetime):
            return value.isoformat()
        try:
            return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")).isoformat()
        except ValueError:
            raise _bad(attr, value, "a date and time (ISO 8601)") from None
    if t == "email":
        s = str(value).strip().lower()
        if not _EMAIL_RE.match(s):
            raise _bad(attr, value, "an e-mail address")
        return s
    options = attr.get("options") or []

    def option(v: Any) -> str:
        text = str(v).strip()
        for o in options:
            if str(o.get("value")) == text:
                return str(o["value"])
        for o in options:
            if str(o.get("label") or o.get("name") or "").strip().lower() == text.lower():
                return str(o["value"])
        allowed = ", ".join(str(o.get("value")) for o in options)
        raise _bad(attr, v, f"one of {allowed}")

    if t == "select" and options:
        return option(value)
    if t == "multi_select":
        items = list(value) if isinstance(value, (list, tuple, set)) else \
            [x for x in re.split(r"[;,]", str(value)) if x.strip()]
        return [option(v) for v in items] if options else [str(v).strip() for v in items]
    if isinstance(value, (dict, list, tuple)):
        raise _bad(attr, value, "text")
    return str(value)
