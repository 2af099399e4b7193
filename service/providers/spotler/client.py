"""Low-level Spotler Mail+ REST client: one method per Spotler call, by resource (contacts and feeds,
automations, campaigns, audiences, temporary lists, tags and scores). The transport (signing, one exchange,
error mapping, paging, the :data:`~service.providers.spotler.transport.REPEATABLE` classification of every
call) is :mod:`.transport`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from service.providers import errors
from service.providers.http import UnsafeCallGuard
from service.providers.spotler import schemas as s
from service.providers.spotler.transport import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    SpotlerTransport,
    cached_schema,
    load_list,
    load_one,
)

MAX_BULK_CONTACTS = 100  # POST /contact/list
MAX_AUDIENCE_IDS = 2500  # POST/DELETE /audience/{id}/contact
FIELD_TYPES = ("STRING", "URL", "PRODUCTLIST")


def _enc(value: str) -> str:
    return quote(str(value), safe="")

class SpotlerClient(SpotlerTransport):
    """One instance per process (the provider owns it). Thread-safe for concurrent calls."""

    # ------------------------------------------------------------------------------------------------------
    # contacts [SPEC]
    # ------------------------------------------------------------------------------------------------------
    def list_properties(self) -> list[dict]:
        items, _ = load_list(cached_schema(s.PropertySchema), self.call("list_properties", "GET", "contact/properties/list"))
        return items

    def get_contact(self, external_id: str) -> dict:
        """The contact, or NotFound (404 CONTACT_NOT_FOUND)."""
        payload = self.call("get_contact", "GET", f"contact/{_enc(external_id)}")
        return load_one(cached_schema(s.ContactSchema), payload)

    def search_contacts(self, query: str, *, page_size: int = 100, limit: int | None = None) -> list[dict]:
        """Contacts matching ``MPSearchQuery`` (``<property>=<value>``, exact match)."""
        out = []
        for item in self.paginate("search_contacts", "contact/search", key="contacts", schema=cached_schema(s.ContactSchema),
                                  params={"MPSearchQuery": query}, page_size=page_size):
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
        return out

    def find_contact_by_email(self, email: str) -> dict | None:
        """First contact whose ``email`` property equals ``email``.

        ``GET contact/search?pageSize=1&MPSearchQuery=email=<address>`` (the value URL-encoded by requests).
        """
        payload = self.call("search_contacts", "GET", "contact/search",
                            params={"pageSize": 1, "MPSearchQuery": f"email={email.strip()}"})
        items, _ = load_list(cached_schema(s.ContactSchema), payload, "contacts")
        return items[0] if items else None

    def find_contacts_by_email(self, email: str, *, limit: int) -> list[dict]:
        """Up to ``limit`` contacts whose ``email`` property equals ``email`` (one page of ``contact/search``):
        an account may hold several, and the caller must see them all to refuse to pick one."""
        payload = self.call("search_contacts", "GET", "contact/search",
                            params={"pageSize": limit, "MPSearchQuery": f"email={email.strip()}"})
        items, _ = load_list(cached_schema(s.ContactSchema), payload, "contacts")
        return items

    def insert_contact(self, contact: dict, *, update: bool = True, purge: bool = False) -> None:
        """``POST /contact``; with ``update`` an existing contact is updated (upsert). ``contact`` is wire-shaped."""
        body = cached_schema(s.ContactRequestSchema).dump({"update": update, "purge": purge, "contact": _contact_out(contact)})
        self.call("insert_contact", "POST", "contact", body=body)

    def update_contact(self, external_id: str, properties: dict[str, Any], *, purge: bool = False) -> None:
        """``PUT /contact/{externalId}``: only ``properties`` change unless ``purge``; None clears a property."""
        body = cached_schema(s.ContactRequestSchema).dump(
            {"purge": purge, "contact": {"external_id": external_id, "properties": properties}}
        )
        self.call("update_contact", "PUT", f"contact/{_enc(external_id)}", body=body)

    def insert_contacts(self, contacts: list[dict], *, update: bool = True, purge: bool = False) -> list[dict]:
        """``POST /contact/list`` in chunks of 100; per-contact results ``{external_id, code, message}``."""
        results: list[dict] = []
        for i in range(0, len(contacts), MAX_BULK_CONTACTS):
            chunk = [_contact_out(c) for c in contacts[i:i + MAX_BULK_CONTACTS]]
            body = cached_schema(s.AddContactsRequestSchema).dump({"update": update, "purge": purge, "contacts": chunk})
            items, _ = load_list(cached_schema(s.AddContactResultSchema), self.call("insert_contacts", "POST", "contact/list",
                                                                        body=body))
            results.extend(items)
        return results

    def anonymize_contact(self, external_id: str) -> None:
        self.call("anonymize_contact", "PUT", f"contact/anonymize/{_enc(external_id)}")

    def iter_updated_contacts(self, from_date: str, to_date: str, *,
                              page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[dict]:
        """Contacts changed between two ISO 8601 dates (``GET /contact/updates/list``)."""
        yield from self.paginate("updated_contacts", "contact/updates/list", key="contacts",
                                 schema=cached_schema(s.ContactSchema), params={"fromDate": from_date, "toDate": to_date},
                                 page_size=page_size)

    def iter_bounces(self, from_date: str, to_date: str, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[dict]:
        """Bounces between two ISO 8601 dates (``GET /contact/bounces/list``)."""
        yield from self.paginate("bounces", "contact/bounces/list", key="bounces", schema=cached_schema(s.BounceSchema),
                                 params={"fromDate": from_date, "toDate": to_date}, page_size=page_size)

    def updated_contacts_page(self, from_date: dt.datetime, to_date: dt.datetime, *, after: int = 0,
                              page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[dict], int | None]:
        """One page of ``GET /contact/updates/list`` (contacts whose lastChanged is in the window)."""
        return self.page("updated_contacts", "contact/updates/list", key="contacts", schema=cached_schema(s.ContactSchema),
                         params={"fromDate": iso_param(from_date), "toDate": iso_param(to_date, ceil=True)},
                         after=after, page_size=page_size)

    def bounces_page(self, from_date: dt.datetime, to_date: dt.datetime, *, after: int = 0,
                     page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[dict], int | None]:
        """One page of ``GET /contact/bounces/list``."""
        return self.page("bounces", "contact/bounces/list", key="bounces", schema=cached_schema(s.BounceSchema),
                         params={"fromDate": iso_param(from_date), "toDate": iso_param(to_date, ceil=True)},
                         after=after, page_size=page_size)

    def interactions_page(self, kind: str, from_change: dt.datetime, to_change: dt.datetime, *, after: int = 0,
                          page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[dict], int | None]:
        """One page of ``GET /mailing-interaction/{opened|clicked|bounced|sent}`` by change date."""
        if kind not in ("opened", "clicked", "bounced", "sent"):
            raise ValueError(f"unknown interaction kind {kind!r}")
        return self.page(f"interactions_{kind}", f"mailing-interaction/{kind}", key="interactions",
                         schema=cached_schema(s.InteractionSchema),
                         params={"fromChangeDate": iso_param(from_change),
                                 "toChangeDate": iso_param(to_change, ceil=True)},
                         after=after, page_size=page_size)

    def list_mailings(self, from_date: dt.datetime, to_date: dt.datetime) -> list[dict]:
        """``GET /mailing?fromDate&toDate``: the mailings sent in the period (bare array)."""
        payload = self.call("list_mailings", "GET", "mailing",
                            params={"fromDate": iso_param(from_date), "toDate": iso_param(to_date, ceil=True)})
        items, _ = load_list(cached_schema(s.MailingSchema), payload, "mailings")
        return items

    def get_mailing(self, mailing_id: str) -> dict:
        """``GET /mailing/{encryptedMailingId}``; NotFound when Spotler does not know it."""
        return load_one(cached_schema(s.MailingSchema), self.call("get_mailing", "GET", f"mailing/{_enc(mailing_id)}"))

    def subscribe(self, contact: dict) -> None:
        """``POST /subscription/subscribe`` with a bare Contact (externalId optional)."""
        out = s.ContactOutSchema(partial=True).dump(_contact_out(contact))
        self.call("subscribe", "POST", "subscription/subscribe", body=out)

    # ------------------------------------------------------------------------------------------------------
    # automations
    # ------------------------------------------------------------------------------------------------------
    def trigger_automation(self, trigger_code: str, external_contact_id: str,
                           fields: list[dict] | None = None, *, guard: UnsafeCallGuard | None = None) -> dict:
        """``POST /automation/trigger/{code}`` [SPEC]; automation fields under the configured key [ASSUMED].

        Returns ``{result, runs: [{automation_id, result, automation_contact_id}]}``. 404 -> NotFound
        (TRIGGER_NOTFOUND / CONTACT_NOTFOUND), 417 -> Rejected with ``details["automationResults"]``.
        """
        body: dict[str, Any] = {"externalContactId": external_contact_id}
        if fields:
            body[self.config.automation_fields_key] = [
                _field_out(f, lower=self.config.automation_field_type_case == "lower") for f in fields
            ]
        status, payload, resp = self.send("trigger_automation", "POST", f"automation/trigger/{_enc(trigger_code)}",
                                          body=body, guard=guard)
        parsed = None
        if isinstance(payload, dict):
            try:
                parsed = load_one(cached_schema(s.TriggerResultSchema), payload)
            except errors.ProviderError:
                parsed = None
        runs = _runs(parsed) if parsed else []
        if status == 200:
            return {"result": (parsed or {}).get("result") or "OK", "runs": runs}
        err = self.error("trigger_automation", status, payload, resp)
        if runs:
            err.details["automationResults"] = [
                {"automationId": r["automation_id"], "result": r["result"]} for r in runs
            ]
        if status == 417 and runs and {r["result"] for r in runs} == {"AUTOMATION_INACTIVE"}:
            err.code = "AUTOMATION_INACTIVE"
        elif status == 417 and runs and {r["result"] for r in runs} == {"PARTICIPATION_LIMIT_REACHED"}:
            err.code = "PARTICIPATION_LIMIT_REACHED"
        raise err

    def list_automations(self) -> list[dict]:
        """[ASSUMED route] automations with ``automation_id, name, trigger_code, status, active, fields_``."""
        items, _ = load_list(cached_schema(s.AutomationSchema), self._route("automation_list"), "automations")
        return items

    def stop_automation_run(self, automation_contact_id: str) -> str:
        """[ASSUMED route] Stop one run. Returns STOPPED, NOT_FOUND or ALREADY_FINISHED."""
        try:
            self._route("automation_stop_run", automation_contact_id=automation_contact_id)
        except errors.NotFound:
            return "NOT_FOUND"
        except errors.Rejected:
            return "ALREADY_FINISHED"
        return "STOPPED"

    def stop_automation_for_contact(self, trigger_code: str, external_contact_id: str) -> list[dict]:
        """[ASSUMED route] Stop every run of an automation (by trigger code) for one contact.

        Returns ``[{automation_contact_id, result}]`` when Spotler lists them (empty on a bare 204).
        """
        payload = self._route("automation_stop_contact", trigger_code=trigger_code, external_id=external_contact_id)
        if isinstance(payload, dict) and isinstance(payload.get("automationContactIds"), list):
            return [{"automation_contact_id": str(x), "result": "STOPPED"} for x in payload["automationContactIds"]]
        items, _ = load_list(cached_schema(s.StopResultSchema), payload, "results")
        return items

    # ------------------------------------------------------------------------------------------------------
    # campaigns [SPEC]
    # ------------------------------------------------------------------------------------------------------
    def list_campaigns(self) -> list[dict]:
        items, _ = load_list(cached_schema(s.CampaignSchema), self.call("list_campaigns", "GET", "campaign/list"), "campaigns")
        return items

    def trigger_campaign(self, trigger_id: str, external_contact_id: str, fields: list[dict] | None = None, *,
                         guard: UnsafeCallGuard | None = None) -> None:
        body = cached_schema(s.CampaignTriggerRequestSchema).dump({
            "external_contact_id": external_contact_id,
            **({"campaign_fields": [_field_out(f) for f in fields]} if fields else {}),
        })
        self.call("trigger_campaign", "POST", f"campaign/trigger/{_enc(trigger_id)}", body=body, guard=guard)

    def stop_campaign(self, campaign_id: str, external_contact_id: str) -> None:
        self.call("stop_campaign", "POST", f"campaign/{_enc(campaign_id)}/stop",
                  body={"externalContactId": external_contact_id})

    # ------------------------------------------------------------------------------------------------------
    # audiences [SPEC, list and membership ASSUMED]
    # ------------------------------------------------------------------------------------------------------
    def create_audience(self, external_id: str, name: str, description: str | None = None) -> dict:
        body = {"externalId": external_id, "name": name}
        if description is not None:
            body["description"] = description
        return load_one(cached_schema(s.AudienceSchema), self.call("create_audience", "POST", "audience", body=body))

    def get_audience(self, external_id: str) -> dict:
        return load_one(cached_schema(s.AudienceSchema), self.call("get_audience", "GET", f"audience/{_enc(external_id)}"))

    def update_audience(self, external_id: str, name: str, description: str | None = None) -> dict:
        body = {"externalId": external_id, "name": name}
        if description is not None:
            body["description"] = description
        payload = self.call("update_audience", "PUT", f"audience/{_enc(external_id)}", body=body)
        return load_one(cached_schema(s.AudienceSchema), payload)

    def delete_audience(self, external_id: str) -> None:
        self.call("delete_audience", "DELETE", f"audience/{_enc(external_id)}")

    def list_audiences(self) -> list[dict]:
        items, _ = load_list(cached_schema(s.AudienceSchema), self._route("audience_list"), "audiences")
        return items

    def list_audience_members(self, external_id: str) -> list[str] | None:
        """[ASSUMED route] External ids of the audience's members; None when the route is disabled."""
        route = self.routes["audience_members"]
        if not route.enabled:
            return None
        _, path, _ = route.render(audience_id=external_id)
        return [m["external_id"] for m in self.paginate("audience_members", path, key="contacts",
                                                         schema=cached_schema(s.MemberSchema), page_size=MAX_PAGE_SIZE)]

    def add_audience_contacts(self, external_id: str, contact_ids: list[str]) -> None:
        """``POST /audience/{id}/contact`` in chunks of 2,500. NotFound carries ``details['externalContactIds']``
        when some contacts are unknown (none of that chunk is then assumed added)."""
        for chunk in _chunks(contact_ids, MAX_AUDIENCE_IDS):
            self.call("add_audience_contacts", "POST", f"audience/{_enc(external_id)}/contact",
                      body={"contacts": chunk})

    def remove_audience_contacts(self, external_id: str, contact_ids: list[str]) -> None:
        """``DELETE /audience/{id}/contact`` in chunks of 2,500. An empty list does nothing (Spotler would
        remove *every* member on an empty body: use :meth:`clear_audience` for that on purpose)."""
        for chunk in _chunks(contact_ids, MAX_AUDIENCE_IDS):
            self.call("remove_audience_contacts", "DELETE", f"audience/{_enc(external_id)}/contact",
                      body={"contacts": chunk})

    def clear_audience(self, external_id: str) -> None:
        """Remove every member (``DELETE /audience/{id}/contact`` without a body)."""
        self.call("clear_audience", "DELETE", f"audience/{_enc(external_id)}/contact")

    # ------------------------------------------------------------------------------------------------------
    # temporary lists [SPEC]
    # ------------------------------------------------------------------------------------------------------
    def create_temporary_list(self, external_id: str, name: str, contact_ids: list[str] | None = None) -> None:
        body: dict[str, Any] = {"externalTemporaryListId": external_id, "name": name}
        if contact_ids:
            body["contacts"] = list(contact_ids)
        self.call("create_temporary_list", "POST", "templist", body=body)

    def list_temporary_lists(self) -> list[dict]:
        items, _ = load_list(cached_schema(s.TemporaryListSchema), self.call("list_temporary_lists", "GET", "templist"))
        return items

    def add_to_temporary_list(self, external_id: str, contact_ids: list[str]) -> None:
        self.call("add_to_temporary_list", "POST", f"templist/{_enc(external_id)}",
                  body={"contacts": list(contact_ids)})

    def delete_temporary_list(self, external_id: str) -> None:
        self.call("delete_temporary_list", "DELETE", f"templist/{_enc(external_id)}")

    # ------------------------------------------------------------------------------------------------------
    # tags and scores [ASSUMED routes]
    # ------------------------------------------------------------------------------------------------------
    def list_tags(self) -> list[dict]:
        items, _ = load_list(cached_schema(s.TagSchema), self._route("tag_list"), "tags")
        return items

    def add_tags(self, external_id: str, tags: list[str], score: int | None = None) -> None:
        self._route("tag_add", external_id=external_id, tags=list(tags), score=score)

    def remove_tags(self, external_id: str, tags: list[str]) -> None:
        self._route("tag_remove", external_id=external_id, tags=list(tags))

    def set_score(self, external_id: str, tag: str, score: int, mode: str = "set",
                  repeatable: bool | None = None, guard: UnsafeCallGuard | None = None) -> int | None:
        """mode: set | increase | decrease. Returns the new score when Spotler answers with one."""
        if repeatable is None:  # an increase or decrease repeated changes the score again
            repeatable = mode.lower() == "set" or int(score) == 0
        mode = mode.upper() if self.config.score_mode_case == "upper" else mode.lower()
        payload = self._route("score", repeatable=repeatable, guard=guard, external_id=external_id, tag=tag,
                              score=int(score), mode=mode)
        if isinstance(payload, dict):
            try:
                return load_one(cached_schema(s.ScoreResultSchema), payload).get("score")
            except errors.ProviderError:
                return None
        return None



# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------

def iso_param(when: dt.datetime, *, ceil: bool = False) -> str:
    """A date query parameter as Spotler documents it (``yyyy-mm-ddThh:mm:ss``, here with ``+00:00``): whole
    seconds, rounded down (or up with ``ceil``, for the end of a window) so that the window never shrinks."""
    when = when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    if ceil and when.microsecond:
        when = when + dt.timedelta(seconds=1)
    return when.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _contact_out(contact: dict) -> dict:
    """Accept snake_case (``external_id``) or wire (``externalId``) keys."""
    out: dict[str, Any] = {}
    ext = contact.get("external_id", contact.get("externalId"))
    if ext is not None:
        out["external_id"] = ext
    if contact.get("properties") is not None:
        out["properties"] = contact["properties"]
    if contact.get("channels"):
        out["channels"] = contact["channels"]
    return out


def _field_out(field: dict, *, lower: bool = False) -> dict:
    ftype = str(field.get("type") or "STRING").upper()
    if ftype not in FIELD_TYPES:
        raise errors.InvalidInput(f"Unknown field type {ftype!r}; use STRING, URL or PRODUCTLIST.",
                                  code="VALIDATION_FAILED")
    out: dict[str, Any] = {"name": field["name"], "type": ftype.lower() if lower else ftype}
    if ftype == "PRODUCTLIST":
        out["values"] = [str(v) for v in (field.get("values") or [])]
    else:
        out["value"] = None if field.get("value") is None else str(field["value"])
    return out


def _runs(parsed: dict) -> list[dict]:
    runs = [dict(r) for r in (parsed.get("automation_results") or [])]
    extra_ids = [i for i in ([parsed.get("automation_contact_id")] + list(parsed.get("automation_contact_ids") or []))
                 if i]
    if extra_ids:
        ok_runs = [r for r in runs if r.get("result") == "OK" and not r.get("automation_contact_id")]
        for run, acid in zip(ok_runs, extra_ids, strict=False):
            run["automation_contact_id"] = acid
        for acid in extra_ids[len(ok_runs):]:
            runs.append({"automation_id": None, "result": "OK", "automation_contact_id": acid})
    return runs


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])

