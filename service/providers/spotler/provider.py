"""SpotlerProvider: the Provider interface on top of :class:`SpotlerClient`.

Rules worth knowing (also in docs/spotler-api-coverage.md):

* **Contact lookup**: by ``external_id`` when the reference has one (``GET /contact/{id}``), else by e-mail
  (``GET /contact/search?pageSize=10&MPSearchQuery=email=<address>``); an address that several contacts share
  is 400 ``AMBIGUOUS_CONTACT`` naming them (``base.one_contact``), never the first match.
* **Generated external ids**: when UpsertContact gets only an e-mail address and no contact has it, the new
  contact's externalId is ``sha256(lower(trim(email)))`` in hex (64 characters). It is deterministic, so a
  replayed or concurrent upsert of the same address lands on the same contact instead of a duplicate.
* **New contacts** get the EMAIL channel enabled; existing contacts never get channels sent (that could
  re-activate a channel the person switched off).
* **Clearing** a field sends ``null`` for it in ``PUT /contact/{id}`` [ASSUMED: Spotler's way to clear].
* **Permissions** are the options of the ``set`` property named ``config.permissions_property``; option
  values are the bit numbers as strings; changes are sent as ``[{bit, enabled}]`` and merge by bit.
* **Dates** in contact properties are normalised to ISO 8601 (``YYYY-MM-DD`` for date/birthdate, full
  date-time for dateTime) whatever Spotler sends (epoch milliseconds or ISO strings).
* **Audience membership** (added vs already_member, removed vs not_member) is read with the assumed
  ``route_audience_members`` call before changing; members are not re-added, removals send every id.
  When that route is disabled or fails with anything but a transient error, every found contact is
  reported ``added`` / ``removed`` ("is / is no longer a member").
  Contacts Spotler reports unknown (404 + externalContactIds) are ``not_found``; the rest of that chunk is
  sent again without them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from service.providers import errors
from service.providers.http import UnsafeCallGuard
from service.providers.base import (
    EMAIL_LOOKUP_LIMIT,
    Audience,
    Automation,
    AutomationField,
    AutomationRunResult,
    BounceEvent,
    Campaign,
    CampaignTrigger,
    Contact,
    ContactEvent,
    ContactField,
    ContactRef,
    FeedPage,
    FieldOption,
    FieldValue,
    InteractionEvent,
    Mailing,
    MemberResult,
    Provider,
    StartResult,
    StopRunResult,
    Tag,
    one_contact,
)
from service.providers.spotler.client import SpotlerClient
from service.providers.spotler.config import SpotlerConfig
from service.providers.spotler.schemas import parse_date, parse_datetime

log = logging.getLogger(__name__)

_ROUTE_OPERATIONS = {
    "automation_list": ["ListAutomations"],
    "automation_stop_run": ["StopAutomationRuns"],
    "automation_stop_contact": ["StopAutomation"],
    "audience_list": ["ListAudiences"],
    "tag_list": ["ListTags"],
    "tag_add": ["AddTag"],
    "tag_remove": ["RemoveTag"],
    "score": ["SetScore"],
}
_DATE_TYPES = {"date", "birthdate"}


def generated_external_id(email: str) -> str:
    """The externalId given to a contact created from an e-mail address alone."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


NO_WEBHOOKS = ("Spotler Mail+ sends no webhooks; use its polling triggers instead: 'When a new contact is added', "
               "'When a contact changes', 'When a contact bounces', 'When a contact unsubscribes' or 'When a "
               "contact opens or clicks a mailing'.")


class SpotlerProvider(Provider):
    name: ClassVar[str] = "spotler"
    display_name: ClassVar[str] = "Spotler"
    automation_hint: ClassVar[str] = ("on Spotler an automation appears there once it has an external trigger and "
                                      "is published")
    unsupported: ClassVar[dict[str, str]] = {op: NO_WEBHOOKS for op in ("OnPlatformEvent", "ListPlatformEvents")}
    #: the trigger call takes the externalId and answers CONTACT_NOTFOUND itself, so StartAutomation by
    #: externalId needs no lookup round trip first (service.actions.automations reads this flag)
    trigger_checks_contact: ClassVar[bool] = True

    def __init__(self, config: SpotlerConfig, *, client: SpotlerClient | None = None) -> None:
        self.config = config
        self.client = client or SpotlerClient(config)
        disabled = {
            op: f"The Spotler call for {op} is disabled in the configuration ({route.name})."
            for name, route in self.client.routes.items() if not route.enabled
            for op in _ROUTE_OPERATIONS.get(name, [])
        }
        if disabled:
            self.unsupported = {**type(self).unsupported, **disabled}  # instance attribute shadows the class default
        self._props_lock = threading.Lock()
        self._props: list[dict] | None = None
        self._props_at = 0.0
        # the lookups' threads, made once per provider (a pool starts its threads on first use and keeps them)
        self._contact_lookups = ThreadPoolExecutor(max_workers=self.lookup_threads,
                                                   thread_name_prefix="spotler-lookup")
        self._email_lookups = ThreadPoolExecutor(
            max_workers=max(1, min(self.email_lookup_threads, config.pool_maxsize)),
            thread_name_prefix="spotler-email-lookup")

    def close(self) -> None:
        self._contact_lookups.shutdown(wait=False)
        self._email_lookups.shutdown(wait=False)
        self.client.close()

    # -- connection ---------------------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        started = time.monotonic()
        props = self.client.list_properties()
        with self._props_lock:
            self._props, self._props_at = props, time.monotonic()
        return {
            "platform": "spotler",
            "baseUrl": self.config.base_url,
            "contactFields": len(props),
            "latencyMs": round((time.monotonic() - started) * 1000),
        }

    # -- properties (cached briefly: types drive date parsing and permissions) ----------------------------
    def _properties(self, *, fresh: bool = False) -> list[dict]:
        with self._props_lock:
            if (not fresh and self._props is not None
                    and time.monotonic() - self._props_at < self.config.properties_cache_seconds):
                return self._props
        props = self.client.list_properties()
        with self._props_lock:
            self._props, self._props_at = props, time.monotonic()
        return props

    def _permission_property(self) -> dict | None:
        for p in self._properties():
            if p["name"] == self.config.permissions_property and p["type"].lower() == "set":
                return p
        return None

    def list_contact_fields(self) -> list[ContactField]:
        out = []
        for p in self._properties(fresh=True):
            options = tuple(
                FieldOption(name=e["description"] or str(e["bit"]), value=str(e["bit"]), description=e["description"])
                for e in sorted(p.get("entries") or [], key=lambda e: (e.get("rank", 0), e["bit"]))
            )
            out.append(ContactField(name=p["name"], display_name=p.get("description") or p["name"], type=p["type"],
                                    options=options, description=p.get("description")))
        return out

    # -- contacts -----------------------------------------------------------------------------------------
    def _wire_properties(self, properties: dict[str, Any]) -> dict[str, Any]:
        """Spotler's form of the values: a ``set`` field given as the chosen option values (``["1", "3"]``)
        becomes the full ``[{bit, enabled}]`` state, since Spotler merges set entries by bit."""
        if not any(isinstance(v, list) for v in properties.values()):
            return dict(properties)
        sets = {p["name"]: p for p in self._properties() if p["type"].lower() == "set"}
        out = dict(properties)
        for name, value in properties.items():
            prop = sets.get(name)
            if prop is None or not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
                continue
            chosen = {str(v) for v in value}
            out[name] = [{"bit": e["bit"], "enabled": str(e["bit"]) in chosen} for e in prop.get("entries") or []]
        return out

    def _to_contact(self, raw: dict) -> Contact:
        types = {p["name"]: p["type"] for p in self._properties()}
        props = {k: _normalise_value(types.get(k), v) for k, v in (raw.get("properties") or {}).items()}
        extra: dict[str, Any] = {}
        if raw.get("encrypted_id"):
            extra["encryptedId"] = raw["encrypted_id"]
        for key, wire in (("created", "created"), ("last_changed", "lastChanged")):
            if raw.get(key) is not None:
                extra[wire] = raw[key].isoformat()
        if raw.get("channels"):
            extra["channels"] = {c["name"]: c["value"] for c in raw["channels"]}
        for key, wire in (("test_group", "testGroup"), ("temporary", "temporary")):
            if raw.get(key) is not None:
                extra[wire] = raw[key]
        email = props.get("email")
        return Contact(external_id=raw["external_id"], email=email if isinstance(email, str) else None,
                       properties=props, extra=extra)

    def find_contact(self, ref: ContactRef) -> Contact | None:
        if ref.external_id:
            try:
                return self._to_contact(self.client.get_contact(ref.external_id))
            except errors.NotFound:
                return None
        if ref.email and ref.email.strip():
            found = self.client.find_contacts_by_email(ref.email, limit=EMAIL_LOOKUP_LIMIT)
            return one_contact(self.display_name, [self._to_contact(raw) for raw in found],
                               more=len(found) >= EMAIL_LOOKUP_LIMIT)
        raise errors.InvalidInput("Give the contact's email or externalId.", code="CONTACT_REFERENCE_MISSING")

    #: parallel e-mail searches in find_contacts (Spotler has no bulk lookup by e-mail), on the provider's threads
    lookup_threads = 16

    def _find_for_list(self, ref: ContactRef) -> Contact | errors.AmbiguousContact | None:
        try:
            return self.find_contact(ref)
        except errors.AmbiguousContact as exc:  # reported for that entry, the others go on
            return exc

    def find_contacts(self, refs: list[ContactRef]) -> list[Contact | errors.AmbiguousContact | None]:
        """Bulk lookup for membership changes, in input order (an e-mail address several contacts share: its
        AmbiguousContact, for the caller to report per entry). A ref by externalId is not looked up: Spotler's
        audience calls report unknown ids themselves (not_found), which saves one round trip per contact.
        E-mail refs are searched, ``lookup_threads`` at a time."""
        out: list[Contact | errors.AmbiguousContact | None] = [
            Contact(external_id=r.external_id) if r.external_id else None for r in refs]
        todo = [i for i, r in enumerate(refs) if not r.external_id]
        for i, contact in zip(todo, self._contact_lookups.map(lambda i: self._find_for_list(refs[i]), todo),
                              strict=True):
            out[i] = contact
        return out

    def upsert_contact(self, ref: ContactRef, properties: dict[str, Any], *, purge: bool = False) -> Contact:
        existing = self.find_contact(ref)
        email = ref.email.strip() if ref.email and ref.email.strip() else None
        if existing is not None:
            external_id = existing.external_id
        elif ref.external_id:
            external_id = ref.external_id
        else:
            external_id = generated_external_id(email or "")
        props = self._wire_properties(properties)
        if email and "email" not in props and (existing is None or not existing.email or purge):
            props["email"] = email
        contact: dict[str, Any] = {"external_id": external_id, "properties": props}
        if existing is None:
            contact["channels"] = [{"name": "EMAIL", "value": True}] if (props.get("email") or email) else []
        self.client.insert_contact(contact, update=True, purge=purge)
        return self._to_contact(self.client.get_contact(external_id))

    def update_contact(self, contact: Contact, properties: dict[str, Any]) -> Contact:
        if properties:
            self.client.update_contact(contact.external_id, self._wire_properties(properties), purge=False)
        return self._to_contact(self.client.get_contact(contact.external_id))

    def anonymize_contact(self, contact: Contact) -> None:
        self.client.anonymize_contact(contact.external_id)

    # -- permissions --------------------------------------------------------------------------------------
    def list_permissions(self) -> list[FieldOption]:
        prop = self._permission_property()
        if prop is None:
            return []
        return [FieldOption(name=e["description"] or str(e["bit"]), value=str(e["bit"]), description=e["description"])
                for e in sorted(prop.get("entries") or [], key=lambda e: (e.get("rank", 0), e["bit"]))]

    def set_permissions(self, contact: Contact, changes: dict[str, bool]) -> dict[str, bool]:
        options = {o.value for o in self.list_permissions()}
        if not options:
            raise errors.NotFound(
                f"The Spotler account has no '{self.config.permissions_property}' set property.",
                code="PERMISSIONS_FIELD_MISSING",
            )
        unknown = sorted(set(changes) - options)
        if unknown:
            raise errors.InvalidInput(f"Unknown permission(s): {', '.join(unknown)}.", code="UNKNOWN_PERMISSION",
                                      details={"unknown": unknown})
        if changes:
            wire = [{"bit": int(bit), "enabled": bool(on)}
                    for bit, on in sorted(changes.items(), key=lambda x: int(x[0]))]
            self.client.update_contact(contact.external_id, {self.config.permissions_property: wire})
        after = self.client.get_contact(contact.external_id)
        state = {bit: False for bit in options}
        state.update(_bits(after.get("properties", {}).get(self.config.permissions_property)))
        return {k: state[k] for k in sorted(state, key=int) if k in options}

    # -- automations --------------------------------------------------------------------------------------
    def list_automations(self) -> list[Automation]:
        """One entry per external trigger code; automations sharing a code (one trigger starting several
        automations) are merged: names joined with " + ", ACTIVE when any is, fields united."""
        merged: dict[str, dict[str, Any]] = {}
        for a in self.client.list_automations():
            code = a.get("trigger_code")
            if not code:
                continue  # no external trigger: it cannot be started through the API
            status = (a.get("status") or ("ACTIVE" if a.get("active") in (True, None) else "INACTIVE")).upper()
            entry = merged.setdefault(code, {"names": [], "statuses": [], "fields": {}, "ids": []})
            entry["names"].append(a.get("name") or code)
            entry["statuses"].append(status)
            for f in a.get("fields_") or []:
                entry["fields"].setdefault(f["name"], (f.get("type") or "STRING").upper())
            if a.get("automation_id"):
                entry["ids"].append(a["automation_id"])
        out = []
        for code, e in merged.items():
            status = "ACTIVE" if "ACTIVE" in e["statuses"] else e["statuses"][0]
            out.append(Automation(
                id=code, name=" + ".join(e["names"]), status=status,
                fields=tuple(AutomationField(name=n, type=t) for n, t in e["fields"].items()),
                extra={"automationIds": e["ids"]} if e["ids"] else {},
            ))
        return out

    def start_automation(self, automation_id: str, contact: Contact, fields: list[FieldValue], *,
                         guard: UnsafeCallGuard | None = None) -> StartResult:
        res = self.client.trigger_automation(automation_id, contact.external_id, [_field(f) for f in fields],
                                             guard=guard)
        runs = tuple(AutomationRunResult(automation_id=r.get("automation_id") or automation_id,
                                         result=r.get("result") or "UNKNOWN",
                                         automation_contact_id=r.get("automation_contact_id"))
                     for r in res["runs"])
        return StartResult(result=res["result"], runs=runs)

    def stop_automation(self, automation_id: str, contact: Contact) -> list[StopRunResult]:
        items = self.client.stop_automation_for_contact(automation_id, contact.external_id)
        return [StopRunResult(automation_contact_id=i["automation_contact_id"], result=(i.get("result") or "STOPPED"))
                for i in items]

    def stop_automation_runs(self, automation_contact_ids: list[str]) -> list[StopRunResult]:
        out, seen = [], set()
        for acid in automation_contact_ids:
            if acid in seen:
                continue
            seen.add(acid)
            out.append(StopRunResult(automation_contact_id=acid, result=self.client.stop_automation_run(acid)))
        return out

    # -- campaigns ----------------------------------------------------------------------------------------
    def list_campaigns(self) -> list[Campaign]:
        return [Campaign(id=c["encrypted_id"], name=c.get("name") or c["encrypted_id"], active=bool(c.get("active")),
                         triggers=tuple(CampaignTrigger(id=t["encrypted_id"], name=t.get("name") or t["encrypted_id"])
                                        for t in c.get("triggers") or []))
                for c in self.client.list_campaigns()]

    def trigger_campaign(self, trigger_id: str, contact: Contact, fields: list[FieldValue], *,
                         guard: UnsafeCallGuard | None = None) -> None:
        self.client.trigger_campaign(trigger_id, contact.external_id, [_field(f) for f in fields], guard=guard)

    def stop_campaign(self, campaign_id: str, contact: Contact) -> None:
        self.client.stop_campaign(campaign_id, contact.external_id)

    # -- tags and scores ----------------------------------------------------------------------------------
    def list_tags(self) -> list[Tag]:
        return [Tag(name=t["name"], score=t.get("score")) for t in self.client.list_tags()]

    def add_tags(self, contact: Contact, tags: list[str], score: int | None = None) -> None:
        tags = _dedupe([t.strip() for t in tags if t and t.strip()])
        if not tags:
            raise errors.InvalidInput("Give at least one tag.", code="VALIDATION_FAILED")
        self.client.add_tags(contact.external_id, tags, score)

    def remove_tags(self, contact: Contact, tags: list[str]) -> None:
        tags = _dedupe([t.strip() for t in tags if t and t.strip()])
        if not tags:
            raise errors.InvalidInput("Give at least one tag.", code="VALIDATION_FAILED")
        self.client.remove_tags(contact.external_id, tags)

    def set_score(self, contact: Contact, tag: str, score: int, mode: str = "set", *,
                  guard: UnsafeCallGuard | None = None) -> int | None:
        mode = (mode or "set").lower()
        if mode not in ("set", "increase", "decrease"):
            raise errors.InvalidInput("mode must be set, increase or decrease.", code="VALIDATION_FAILED")
        if not tag or not tag.strip():
            raise errors.InvalidInput("Give the tag that holds the score.", code="VALIDATION_FAILED")
        return self.client.set_score(contact.external_id, tag.strip(), int(score), mode, guard=guard)

    def read_score(self, contact: Contact, tag: str) -> int | None:
        """An increase by 0 changes nothing and answers the current score [ASSUMED, like the score call]; None
        when Spotler answers without a score."""
        if not tag or not tag.strip():
            return None
        return self.client.set_score(contact.external_id, tag.strip(), 0, "increase", repeatable=True)

    # -- audiences ----------------------------------------------------------------------------------------
    def list_audiences(self) -> list[Audience]:
        return [Audience(id=a["external_id"], name=a.get("name") or a["external_id"], description=a.get("description"))
                for a in self.client.list_audiences()]

    def create_audience(self, audience_id: str, name: str, description: str | None = None) -> Audience:
        try:
            a = self.client.create_audience(audience_id, name, description)
        except errors.Rejected as exc:
            # A replayed create (same id, same name) is a success; anything else is a real conflict.
            if exc.error_type != "ID_NOTUNIQUE" and "id must be unique" not in exc.message.lower():
                raise
            a = self.client.get_audience(audience_id)
            if a.get("name") != name:
                raise
        return Audience(id=a["external_id"], name=a.get("name") or name, description=a.get("description"))

    def _members(self, audience_id: str) -> set[str] | None:
        try:
            members = self.client.list_audience_members(audience_id)
        except (errors.TransientError, errors.AuthFailed, errors.Forbidden):
            raise
        except errors.NotSupported:
            return None
        except errors.ProviderError as exc:
            log.info("audience membership read unavailable (%s); reporting added/removed", type(exc).__name__)
            return None
        return None if members is None else set(members)

    def add_to_audience(self, audience_id: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._change_audience(audience_id, contacts, add=True)

    def remove_from_audience(self, audience_id: str, contacts: list[Contact]) -> list[MemberResult]:
        return self._change_audience(audience_id, contacts, add=False)

    def _change_audience(self, audience_id: str, contacts: list[Contact], *, add: bool) -> list[MemberResult]:
        ids = _dedupe([c.external_id for c in contacts])
        members = self._members(audience_id)
        # Adding: members are skipped (already_member). Removing: every id is sent (removing a non-member is a
        # no-op) so that Spotler reports unknown contacts, which are then not_found rather than not_member.
        todo = [i for i in ids if i not in members] if (add and members is not None) else ids
        not_found: set[str] = set()
        if todo:
            not_found = self._send_members(audience_id, todo, add=add)
        out = []
        for i in ids:
            if i in not_found:
                result = "not_found"
            elif add:
                result = "added" if i in todo else "already_member"
            else:
                result = "removed" if members is None or i in members else "not_member"
            out.append(MemberResult(external_id=i, result=result))
        return out

    def _send_members(self, audience_id: str, ids: list[str], *, add: bool) -> set[str]:
        """Send; on 'contacts not found' resend without them. Returns the ids Spotler did not know."""
        call = self.client.add_audience_contacts if add else self.client.remove_audience_contacts
        not_found: set[str] = set()
        remaining = list(ids)
        for _ in range(3):
            try:
                call(audience_id, remaining)
                return not_found
            except errors.NotFound as exc:
                missing = set(exc.details.get("externalContactIds") or []) & set(remaining)
                if not missing:
                    raise  # the audience itself is unknown
                not_found |= missing
                remaining = [i for i in remaining if i not in missing]
                if not remaining:
                    return not_found
        raise errors.Unavailable("Spotler kept reporting unknown contacts for the audience change.")

    # -- event feeds (polling triggers) -------------------------------------------------------------------
    def _event(self, raw: dict) -> ContactEvent:
        props = raw.get("properties") or {}
        perm_value = props.get(self.config.permissions_property)
        names = {str(e["bit"]): str(e["description"]) for e in perm_value or []
                 if isinstance(e, dict) and "bit" in e and e.get("description")}
        channels = {c["name"]: c["value"] for c in raw.get("channels") or []}
        email = props.get("email")
        return ContactEvent(
            external_id=raw["external_id"], email=email if isinstance(email, str) else None,
            created=raw.get("created"), last_changed=raw.get("last_changed"), permissions=_bits(perm_value),
            permission_names=names, subscribed=channels["EMAIL"] if "EMAIL" in channels else None,
            properties=dict(props))

    def contact_feed(self, since: dt.datetime, until: dt.datetime, *, after: int = 0,
                     page_size: int = 1000) -> FeedPage:
        items, nxt = self.client.updated_contacts_page(since, until, after=after, page_size=page_size)
        return FeedPage(items=tuple(self._event(c) for c in items), next_after=nxt)

    def bounce_feed(self, since: dt.datetime, until: dt.datetime, *, after: int = 0,
                    page_size: int = 1000) -> FeedPage:
        items, nxt = self.client.bounces_page(since, until, after=after, page_size=page_size)
        out = []
        for b in items:
            kind = str(b.get("type") or "").upper()
            out.append(BounceEvent(contact=self._event(b["contact"]), date=b.get("date"),
                                   kind="soft" if kind.startswith("SOFT") else "hard",
                                   mailing_id=b.get("encrypted_act_id")))
        return FeedPage(items=tuple(out), next_after=nxt)

    def interaction_feed(self, kind: str, since: dt.datetime, until: dt.datetime, *, after: int = 0,
                         page_size: int = 1000) -> FeedPage:
        items, nxt = self.client.interactions_page(kind, since, until, after=after, page_size=page_size)
        return FeedPage(items=tuple(
            InteractionEvent(id=i["id"], kind=kind, external_id=i["external_contact_id"],
                             mailing_id=i.get("encrypted_mailing_id"), date=i.get("date"),
                             change_date=i.get("change_date"))
            for i in items if i.get("external_contact_id")), next_after=nxt)

    def list_mailings(self, since: dt.datetime, until: dt.datetime) -> list[Mailing]:
        return [_mailing(m) for m in self.client.list_mailings(since, until)]

    def get_mailing(self, mailing_id: str) -> Mailing | None:
        try:
            return _mailing(self.client.get_mailing(mailing_id))
        except errors.NotFound:
            return None

    def contact_properties(self, event: ContactEvent) -> dict[str, Any]:
        types = {p["name"]: p["type"] for p in self._properties()}
        return {k: _normalise_value(types.get(k), v) for k, v in event.properties.items()}

    #: parallel contact reads in lookup_emails (opens and clicks name only the contact's id), at most the HTTP
    #: pool, on the provider's threads
    email_lookup_threads = 32

    def lookup_emails(self, external_ids) -> dict[str, str | None]:
        """``GET /contact/{id}`` for each distinct id, up to ``email_lookup_threads`` (at most the HTTP pool)
        at a time: Spotler has no bulk read. Only the ``email`` property is used, so the field list is not read."""
        ids = list(dict.fromkeys(external_ids))
        if not ids:
            return {}

        def one(i: str) -> str | None:
            try:
                email = (self.client.get_contact(i).get("properties") or {}).get("email")
            except errors.NotFound:
                return None
            return email if isinstance(email, str) and email else None

        return dict(zip(ids, self._email_lookups.map(one, ids), strict=True))


# ---------------------------------------------------------------------------------------------------------


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _mailing(m: dict) -> Mailing:
    return Mailing(id=m["encrypted_id"], name=m.get("name") or m["encrypted_id"], sent_at=m.get("scheduled_start_date"),
                   type=m.get("type"))


def _field(f: FieldValue) -> dict:
    return {"name": f.name, "type": (f.type or "STRING").upper(), "value": f.value, "values": list(f.values)}


def _bits(value: Any) -> dict[str, bool]:
    """``{bit: enabled}`` from a set property value (list of ``{bit, enabled}``; tolerant)."""
    out: dict[str, bool] = {}
    if isinstance(value, list):
        for e in value:
            if isinstance(e, dict) and "bit" in e:
                out[str(e["bit"])] = bool(e.get("enabled", True))
            elif isinstance(e, (int, str)) and str(e).isdigit():
                out[str(e)] = True
    return out


def _normalise_value(ptype: str | None, value: Any) -> Any:
    """Dates from Spotler (epoch ms or ISO) as ISO strings; anything else unchanged."""
    if value is None or value == "" or ptype not in _DATE_TYPES | {"dateTime"}:
        return value
    try:
        if ptype in _DATE_TYPES:
            d = parse_date(value)
            return d.isoformat() if d else value
        when = parse_datetime(value)
        return when.isoformat() if isinstance(when, dt.datetime) else value
    except (ValueError, OverflowError, OSError):
        return value
