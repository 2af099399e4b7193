"""SpokiProvider: the Spoki (WhatsApp marketing) adapter behind the provider interface.

- ``ContactRef.external_id`` / ``Contact.external_id`` is Spoki's numeric contact id (what retrieve, PATCH
  and DELETE take). An ``external_id`` that starts with ``+`` is read as a phone number (E.164), which is how
  Spoki itself keys contacts. E-mail lookups use the exact ``email`` filter; Spoki does not make e-mail unique,
  so several matches are an error that asks for the id.
- Contact properties: ``phone``, ``first_name``, ``last_name``, ``email``, ``language`` plus every custom
  field by its ``code`` (``contactfield_set[].visual_code`` without the ``%%``).
- Audiences are Spoki lists; automations are automations with an API start step, started through
  ``webhook_set[].link`` with the start step's secret; the marketing consent is the one permission.
- Spoki's REST API has no tag assignment, no scores, no way to stop automations and no campaign trigger.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ClassVar

from service import privacy
from service.providers import errors
from service.providers.http import UnsafeCallGuard
from service.cache import TTLCache
from service.providers.base import (
    Audience,
    Automation,
    AutomationField,
    AutomationRunResult,
    Contact,
    ContactField,
    ContactRef,
    FieldOption,
    FieldValue,
    MemberResult,
    Provider,
    StartResult,
    Tag,
    one_contact,
)
from service.providers.spoki.client import SpokiClient
from service.providers.spoki.config import SpokiConfig

#: Spoki custom field ``field_type`` -> our type vocabulary
FIELD_TYPES = {1: "string", 2: "date", 3: "dateTime"}
STANDARD_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("phone", "Phone number", "mobNr"),
    ("first_name", "First name", "string"),
    ("last_name", "Last name", "string"),
    ("email", "Email", "email"),
    ("language", "Language", "string"),
)
_STANDARD = {name for name, _, _ in STANDARD_FIELDS}
#: the reserved custom-field codes are the standard fields
_RESERVED = {"FIRST_NAME": "first_name", "LAST_NAME": "last_name", "EMAIL": "email", "PHONE": "phone",
             "LANGUAGE": "language"}
CONSENT_PERMISSION = "marketing"
CONSENT_NAME = "WhatsApp marketing consent"
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BATCH = 500

NO_STOP = ("Spoki has no API to stop an automation for a contact; add a 'Stop Automations' step to an automation "
           "and start that one instead, or stop it in Spoki.")
NO_TAGS = ("Spoki's API cannot {verb} tags; create an automation with an API start step followed by the step "
           "'{step}', and start it with StartAutomation.")
NO_CAMPAIGNS = "Spoki's API has no campaign trigger; use an automation with an API start step instead."
NO_TRIGGERS = ("Spoki pushes its events through outgoing webhooks and has no change feed to poll; use the webhook "
               "trigger 'When an event occurs in the platform' (OnPlatformEvent) instead.")


def normalize_phone(value: Any) -> str | None:
    """'+39 333 123 4567' / '0039…' / '39333…' -> '+39333…'; None when it is not a plausible number."""
    text = str(value or "").strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
    if not 6 <= len(digits) <= 15:
        return None
    return "+" + digits


class SpokiProvider(Provider):
    name: ClassVar[str] = "spoki"
    display_name: ClassVar[str] = "Spoki"
    automation_hint: ClassVar[str] = ("on Spoki an automation appears there once it has an active "
                                      "Integration > API start step")
    unsupported: ClassVar[dict[str, str]] = {
        "StopAutomation": NO_STOP,
        "StopAutomationRuns": NO_STOP,
        "ListCampaigns": NO_CAMPAIGNS,
        "TriggerCampaign": NO_CAMPAIGNS,
        "StopCampaign": "Spoki's API cannot stop a campaign; stop it in Spoki.",
        "AddTag": NO_TAGS.format(verb="add", step="Add Tag"),
        "RemoveTag": NO_TAGS.format(verb="remove", step="Remove Tag"),
        "SetScore": "Spoki has no contact scores; use a custom field (SetContactField) instead.",
        **{op: NO_TRIGGERS for op in ("OnContactAdded", "OnContactChanged", "OnContactBounced",
                                      "OnContactUnsubscribed", "OnMailingInteraction", "ListMailings")},
    }

    def __init__(self, config: SpokiConfig, *, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self.client = SpokiClient(config)
        self._cache = TTLCache(config.cache_seconds, clock or time.monotonic)

    def close(self) -> None:
        self.client.close()

    # -- connection ---------------------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        self.client.request("GET", self.config.ping_path)
        return {"platform": "spoki", "baseUrl": self.config.base_url, "auth": "api_key"}

    # -- contact fields -----------------------------------------------------------------------------------
    def _custom_fields(self) -> list[dict[str, Any]]:
        return self._cache.get("custom_fields", lambda: [f for f in self.client.paginate("custom-fields/")
                                                          if isinstance(f, dict) and f.get("code")])

    def list_contact_fields(self) -> list[ContactField]:
        out = [ContactField(name=n, display_name=label, type=t) for n, label, t in STANDARD_FIELDS]
        for f in self._custom_fields():
            example = f.get("example")
            out.append(ContactField(name=str(f["code"]), display_name=str(f.get("label") or f["code"]),
                                    type=FIELD_TYPES.get(_int(f.get("field_type")), "string"),
                                    description=f"Example: {example}" if example else None))
        return out

    def _resolve_field(self, name: str) -> tuple[str, dict[str, Any] | None]:
        """('standard', None) for phone/first_name/..., (code, definition) for a custom field."""
        key = name.strip()
        if key.lower() in _STANDARD:
            return key.lower(), None
        if key.upper().strip("%") in _RESERVED:
            return _RESERVED[key.upper().strip("%")], None
        defs = self._custom_fields()
        code = key.strip("%").upper()
        found = next((f for f in defs if str(f["code"]).upper() == code), None) or next(
            (f for f in defs if str(f.get("label") or "").strip().lower() == key.lower()), None)
        if found is None:
            raise errors.InvalidInput(f"Spoki has no contact field named '{name}'.", code="UNKNOWN_FIELD",
                                      details={"field": name})
        return str(found["code"]), found

    # -- contacts -----------------------------------------------------------------------------------------
    def _to_contact(self, data: dict[str, Any]) -> Contact:
        props: dict[str, Any] = {}
        for k in _STANDARD:
            if k in data:
                props[k] = (normalize_phone(data[k]) or data[k]) if k == "phone" else data[k]
        by_id: dict[int, str] | None = None
        for cf in data.get("contactfield_set") or []:
            code = str(cf.get("visual_code") or "").strip("%")
            if not code:
                if by_id is None:
                    by_id = {_int(f.get("id")): str(f["code"]) for f in self._custom_fields()}
                code = by_id.get(_int(cf.get("field")), "")
            if code:
                props[code] = cf.get("value_datetime") or cf.get("value")
        extra = {
            "id": data.get("id"), "phone": props.get("phone"),
            "tag_ids": [t.get("id") for t in data.get("tag_set") or [] if isinstance(t, dict)],
            "tags": [t.get("name") for t in data.get("tag_set") or [] if isinstance(t, dict)],
            "list_ids": [str(x.get("id")) for x in data.get("list_set") or [] if isinstance(x, dict)],
            "is_blocked": data.get("is_blocked"),
        }
        if self.config.consent_field in data:
            extra["consent"] = data[self.config.consent_field]
        return Contact(external_id=str(data["id"]), email=data.get("email") or None, properties=props, extra=extra)

    def _find_by(self, **params: str) -> list[dict[str, Any]]:
        return [c for c in self.client.paginate("contacts/", params) if isinstance(c, dict) and c.get("id")]

    def _by_phone(self, phone: str) -> dict[str, Any] | None:
        digits = re.sub(r"\D", "", phone)
        matches = [c for c in self._find_by(phone=phone) if re.sub(r"\D", "", str(c.get("phone"))) == digits]
        return matches[0] if matches else None

    def _by_email(self, email: str) -> dict[str, Any] | None:
        e = email.strip()
        if not _EMAIL_RE.match(e):
            raise errors.InvalidInput("The contact's e-mail address is not valid for Spoki.", code="INVALID_EMAIL")
        matches = [c for c in self._find_by(email=e) if str(c.get("email") or "").lower() == e.lower()]
        if len(matches) > 1:  # AMBIGUOUS_CONTACT, the one rule of every platform
            one_contact(self.display_name, [self._to_contact(c) for c in matches])
        return matches[0] if matches else None

    def _lookup(self, ref: ContactRef) -> dict[str, Any] | None:
        if ref.external_id:
            ext = ref.external_id.strip()
            if ext.startswith("+"):
                phone = normalize_phone(ext)
                if phone is None:
                    raise errors.InvalidInput(f"'{ext}' is not a valid phone number.", code="INVALID_PHONE")
                return self._by_phone(phone)
            if not ext.isdigit():
                raise errors.InvalidInput(f"'{ext}' is not a Spoki contact id (a number) or a phone number "
                                          "starting with +.", code="INVALID_EXTERNAL_ID")
            try:
                return self.client.request("GET", f"contacts/{ext}/")
            except errors.NotFound:
                return None
        if ref.email:
            return self._by_email(ref.email)
        raise errors.InvalidInput("Give the contact's email or externalId.", code="CONTACT_REF_REQUIRED")

    def find_contact(self, ref: ContactRef) -> Contact | None:
        data = self._lookup(ref)
        return self._to_contact(data) if data else None

    def _contact_body(self, properties: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for name, value in properties.items():
            key, definition = self._resolve_field(name)
            if definition is None:
                if key == "phone":
                    phone = normalize_phone(value)
                    if phone is None:
                        raise errors.InvalidInput("The phone field is not a phone number Spoki accepts (give it "
                                                  "with its country code, such as +39 333 123 4567).",
                                                  code="INVALID_FIELD_VALUE", details={"field": "phone"})
                    body["phone"] = phone
                elif key == "email":
                    email = str(value).strip() if value not in (None, "") else None
                    if email and not _EMAIL_RE.match(email):
                        raise errors.InvalidInput(f"The email field {privacy.email_flaw(email) or 'is not valid'}.",
                                                  code="INVALID_FIELD_VALUE", details={"field": "email"})
                    body["email"] = email
                else:
                    body[key] = "" if value is None else str(value)
            else:
                custom[key] = convert_custom(definition, value)
        if custom:
            body["custom_fields"] = custom
        return body

    def upsert_contact(self, ref: ContactRef, properties: dict[str, Any], *, purge: bool = False) -> Contact:
        existing = self._lookup(ref)
        if existing is None and ref.external_id and not ref.external_id.strip().startswith("+"):
            raise errors.NotFound(f"Spoki has no contact with id {ref.external_id}.", code="CONTACT_NOT_FOUND")
        changes = dict(properties)
        if ref.email and not any(self._resolve_field(n)[0] == "email" for n in properties):
            changes["email"] = ref.email.strip()
        if purge and existing is not None:
            current = self._to_contact(existing)
            given = {self._resolve_field(n)[0] for n in changes}
            for f in self._custom_fields():
                if f["code"] not in given and current.properties.get(f["code"]) not in (None, ""):
                    changes[f["code"]] = None
            for k in ("first_name", "last_name"):
                if k not in given and current.properties.get(k):
                    changes[k] = None
        body = self._contact_body(changes)
        if existing is not None:
            if not body:
                return self._to_contact(existing)
            return self._to_contact(self.client.request("PATCH", f"contacts/{existing['id']}/", body=body))
        if "phone" not in body:
            if ref.external_id and ref.external_id.strip().startswith("+"):
                body["phone"] = normalize_phone(ref.external_id)
            else:
                raise errors.InvalidInput("Spoki needs a phone number to create a contact; add the field 'phone'.",
                                          code="PHONE_REQUIRED", details={"field": "phone"})
        return self._to_contact(self.client.request("POST", "contacts/sync/", body=body))

    def update_contact(self, contact: Contact, properties: dict[str, Any]) -> Contact:
        body = self._contact_body(properties)
        if not body:
            return contact
        return self._to_contact(self.client.request("PATCH", f"contacts/{contact.external_id}/", body=body))

    def anonymize_contact(self, contact: Contact) -> None:
        self.client.request("DELETE", f"contacts/{contact.external_id}/")

    # -- permissions (marketing consent) ------------------------------------------------------------------
    def list_permissions(self) -> list[FieldOption]:
        return [FieldOption(name=CONSENT_NAME, value=CONSENT_PERMISSION,
                            description="Consent to receive WhatsApp marketing messages (Spoki marketing status).")]

    def set_permissions(self, contact: Contact, changes: dict[str, bool]) -> dict[str, bool]:
        state: bool | None = None
        for key, enabled in changes.items():
            if str(key).strip().lower() not in (CONSENT_PERMISSION, CONSENT_NAME.lower()):
                raise errors.InvalidInput(f"Spoki has no permission '{key}'; the only one is "
                                          f"'{CONSENT_PERMISSION}'.", code="UNKNOWN_PERMISSION",
                                          details={"permission": key})
            state = bool(enabled)
        current = contact.extra.get("consent")
        if state is not None:
            phone = contact.properties.get("phone") or contact.extra.get("phone")
            if not phone:
                raise errors.InvalidInput("The Spoki contact has no phone number.", code="PHONE_REQUIRED")
            data = self.client.request("POST", "contacts/sync/",
                                       body={"phone": phone, "status": "Subscribed" if state else "Unsubscribed"})
            current = (data or {}).get(self.config.consent_field, "Subscribed" if state else "Unsubscribed")
        return {CONSENT_PERMISSION: current == "Subscribed"}

    # -- automations --------------------------------------------------------------------------------------
    @staticmethod
    def _api_webhook(automation: dict[str, Any]) -> dict[str, Any] | None:
        hooks = [w for w in automation.get("webhook_set") or [] if isinstance(w, dict) and w.get("link")]
        return next((w for w in hooks if w.get("is_active", True)), None)

    def _fields_used(self, automation_id: Any) -> tuple[AutomationField, ...]:
        if not self.config.automation_fields_lookup:
            return ()
        try:
            data = self.client.request("GET", f"automations/{automation_id}/custom-fields-used/")
        except errors.NotFound:
            return ()
        items = data.get("results", []) if isinstance(data, dict) else data or []
        codes = []
        for item in items:
            if isinstance(item, dict):
                code = item.get("code") or str(item.get("visual_code") or "").strip("%")
            else:
                code = str(item).strip("%")
            if code and code not in codes:
                codes.append(str(code))
        return tuple(AutomationField(name=c) for c in codes)

    def list_automations(self) -> list[Automation]:
        def load() -> list[Automation]:
            params = dict(p.split("=", 1) for p in self.config.automation_filter.split("&") if "=" in p)
            out = []
            for a in self.client.paginate("automations/", params):
                if not isinstance(a, dict) or self._api_webhook(a) is None:
                    continue
                out.append(Automation(
                    id=str(a["id"]), name=str(a.get("name") or a["id"]),
                    status="ACTIVE" if a.get("is_active") else "INACTIVE",
                    fields=self._fields_used(a["id"]),
                    extra={"webhookUuid": self._api_webhook(a).get("uuid")}))
            return out
        return list(self._cache.get("automations", load))

    def start_automation(self, automation_id: str, contact: Contact, fields: list[FieldValue], *,
                         guard: UnsafeCallGuard | None = None) -> StartResult:
        aid = automation_id.strip()
        if not aid.isdigit():
            raise errors.InvalidInput(f"'{automation_id}' is not a Spoki automation id (a number).",
                                      code="INVALID_AUTOMATION_ID")
        try:
            automation = self.client.request("GET", f"automations/{aid}/")
        except errors.NotFound as exc:
            raise errors.NotFound(f"Spoki has no automation with id {aid}.", code="AUTOMATION_NOT_FOUND",
                                  upstream_status=exc.upstream_status) from exc
        webhook = self._api_webhook(automation or {})
        if webhook is None:
            raise errors.Rejected(f"The Spoki automation '{automation.get('name', aid)}' has no active API start "
                                  "step; add an Integration > API start step in Spoki.",
                                  code="AUTOMATION_NOT_API_TRIGGERED", details={"automationId": aid})
        if not automation.get("is_active", True):
            raise errors.Rejected(f"The Spoki automation '{automation.get('name', aid)}' is not active.",
                                  code="AUTOMATION_INACTIVE", details={"automationId": aid})
        phone = normalize_phone(contact.properties.get("phone") or contact.extra.get("phone"))
        if phone is None:
            raise errors.InvalidInput("The Spoki contact has no phone number; Spoki starts automations by phone.",
                                      code="PHONE_REQUIRED")
        body: dict[str, Any] = {"secret": webhook.get("secret"), "phone": phone}
        custom: dict[str, str] = {}
        for f in fields:
            value = ", ".join(f.values) if f.values else f.value
            key = f.name.strip()
            std = _RESERVED.get(key.upper().strip("%")) or (key.lower() if key.lower() in _STANDARD else None)
            if std and std != "phone":
                body[std] = value
            elif std != "phone":
                custom[key.strip("%")] = "" if value is None else value
        if custom:
            body["custom_fields"] = custom
        try:
            self.client.request("POST", webhook["link"], body=body, api_key=False, repeatable=False,
                                guard=guard)
        except (errors.AuthFailed, errors.Forbidden) as exc:
            raise errors.Rejected("Spoki refused the automation's start step secret; the API start step may have "
                                  "been regenerated. Try again in a minute.", code="START_STEP_REFUSED",
                                  upstream_status=exc.upstream_status) from exc
        except errors.NotFound as exc:
            raise errors.NotFound(f"The API start step of Spoki automation {aid} no longer exists.",
                                  code="AUTOMATION_NOT_FOUND", upstream_status=exc.upstream_status) from exc
        except errors.InvalidInput as exc:
            if not exc.details.get("errors"):  # a plain {"detail": ...}: a refusal, not a malformed field
                raise errors.Rejected(f"Spoki refused to start the automation: {exc.message}",
                                      code="AUTOMATION_REFUSED", upstream_status=exc.upstream_status) from exc
            raise
        finally:
            body.pop("secret", None)
        return StartResult(result="OK", runs=(AutomationRunResult(automation_id=aid, result="OK"),))

    # -- tags ---------------------------------------------------------------------------------------------
    def list_tags(self) -> list[Tag]:
        tags = self._cache.get("tags", lambda: [t for t in self.client.paginate("tags/") if isinstance(t, dict)])
        return [Tag(name=str(t.get("name"))) for t in tags if t.get("name")]

    # -- audiences (lists) --------------------------------------------------------------------------------
    def list_audiences(self) -> list[Audience]:
        lists = self._cache.get("lists", lambda: [x for x in self.client.paginate("lists/") if isinstance(x, dict)])
        return [Audience(id=str(x["id"]), name=str(x.get("name") or x["id"])) for x in lists if x.get("id")]

    def create_audience(self, audience_id: str, name: str, description: str | None = None) -> Audience:
        """Spoki assigns list ids itself: ``audience_id`` is only used as the name when ``name`` is empty.
        An existing list with the same name is returned instead of creating a duplicate."""
        list_name = (name or audience_id or "").strip()
        if not list_name:
            raise errors.InvalidInput("Give the audience a name.", code="NAME_REQUIRED")
        for x in self.client.paginate("lists/", {"search": list_name}):
            if isinstance(x, dict) and str(x.get("name", "")).strip().lower() == list_name.lower():
                return Audience(id=str(x["id"]), name=str(x["name"]))
        created = self.client.request("POST", "lists/", body={"name": list_name})
        self._cache.clear()
        return Audience(id=str(created["id"]), name=str(created.get("name") or list_name))

    def _list_id(self, audience_id: str) -> str:
        aid = str(audience_id).strip()
        if not aid.isdigit():
            raise errors.InvalidInput(f"'{audience_id}' is not a Spoki list id (a number).", code="INVALID_AUDIENCE_ID")
        return aid

    def add_to_audience(self, audience_id: str, contacts: list[Contact]) -> list[MemberResult]:
        lid = self._list_id(audience_id)
        results: dict[str, str] = {}
        entries: list[dict[str, Any]] = []
        for c in contacts:
            phone = normalize_phone(c.properties.get("phone") or c.extra.get("phone"))
            if phone is None:
                results[c.external_id] = "not_found"
                continue
            results[c.external_id] = "already_member" if lid in (c.extra.get("list_ids") or []) else "added"
            entries.append({"phone": phone})
        try:
            for i in range(0, len(entries), BATCH):
                self.client.request("POST", f"lists/{lid}/sync_contacts/", body={"contacts": entries[i:i + BATCH]})
        except errors.NotFound as exc:
            raise errors.NotFound(f"Spoki has no list with id {lid}.", code="AUDIENCE_NOT_FOUND",
                                  upstream_status=exc.upstream_status) from exc
        return [MemberResult(external_id=c.external_id, result=results[c.external_id]) for c in contacts]

    def remove_from_audience(self, audience_id: str, contacts: list[Contact]) -> list[MemberResult]:
        lid = self._list_id(audience_id)
        key = self.config.list_remove_key
        values: list[Any] = []
        results: dict[str, str] = {}
        for c in contacts:
            if key == "ids":
                value: Any = int(c.external_id) if c.external_id.isdigit() else None
            elif key == "phones":
                value = normalize_phone(c.properties.get("phone") or c.extra.get("phone"))
            else:
                value = c.email
            if value is None:
                results[c.external_id] = "not_found"
                continue
            results[c.external_id] = "removed" if lid in (c.extra.get("list_ids") or []) else "not_member"
            values.append(value)
        try:
            for i in range(0, len(values), BATCH):
                self.client.request("POST", f"lists/{lid}/remove_contacts/", body={key: values[i:i + BATCH]})
        except errors.NotFound as exc:
            raise errors.NotFound(f"Spoki has no list with id {lid}.", code="AUDIENCE_NOT_FOUND",
                                  upstream_status=exc.upstream_status) from exc
        return [MemberResult(external_id=c.external_id, result=results[c.external_id]) for c in contacts]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def convert_custom(definition: dict[str, Any], value: Any) -> str:
    """Our value -> the text Spoki stores for a custom field ('' clears). Raises InvalidInput."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    kind = _int(definition.get("field_type"))
    code = definition.get("code")
    if kind == 2:
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        s = str(value).strip()
        for parse in (date.fromisoformat, lambda x: datetime.fromisoformat(x.replace("Z", "+00:00")).date(),
                      lambda x: datetime.strptime(x, "%d/%m/%Y").date(), lambda x: datetime.strptime(x, "%d-%m-%Y").date()):
            try:
                return parse(s).isoformat()
            except ValueError:
                continue
        raise errors.InvalidInput(f"'{value}' is not a date for the Spoki field '{code}' (expected YYYY-MM-DD).",
                                  code="INVALID_FIELD_VALUE", details={"field": code})
    if kind == 3:
        if isinstance(value, datetime):
            return value.isoformat()
        try:
            return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")).isoformat()
        except ValueError:
            raise errors.InvalidInput(f"'{value}' is not a date and time for the Spoki field '{code}' "
                                      "(expected ISO 8601).", code="INVALID_FIELD_VALUE",
                                      details={"field": code}) from None
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
