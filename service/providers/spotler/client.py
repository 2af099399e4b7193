"""Low-level Spotler Mail+ REST client.

* OAuth 1.0a one-legged HMAC-SHA1 through requests-oauthlib (header scheme; query parameters are signed,
  JSON bodies are not: reference §2).
* ``Accept: application/json`` on every call, ``(connect, read)`` timeouts on every call, one Session per
  client (built lazily, again after a fork) with the retry policy of :mod:`service.providers.http`.
* Raises only :mod:`service.providers.errors` types; Spotler's ``errorType`` (or the trigger ``result``)
  goes into ``error_type`` and its ``message`` into the message.
* Responses are loaded with the tolerant schemas of :mod:`.schemas` (plain dicts, snake_case keys).
* Calls whose wire format is not confirmed go through the configurable routes of :mod:`.paths`.

Personal data stays out of the logs: only the operation name, status and timing are logged.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import requests
from requests_oauthlib import OAuth1

from service.providers import errors
from service.providers.http import (
    LazySession,
    error_for_status,
    map_request_exception,
    UnsafeCallGuard,
    parse_retry_after,
    send_unsafe,
)
from service.providers.spotler import schemas as s
from service.providers.spotler.config import SpotlerConfig
from service.providers.spotler.paths import Route, build_routes

log = logging.getLogger(__name__)

UPSTREAM = "Spotler"
MAX_BULK_CONTACTS = 100  # POST /contact/list
MAX_AUDIENCE_IDS = 2500  # POST/DELETE /audience/{id}/contact
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10000
FIELD_TYPES = ("STRING", "URL", "PRODUCTLIST")

#: Spotler errorType / trigger result -> our stable code
_CODES = {
    "CONTACT_NOT_FOUND": "CONTACT_NOT_FOUND",
    "CONTACT_NOTFOUND": "CONTACT_NOT_FOUND",
    "TRIGGER_NOTFOUND": "TRIGGER_NOT_FOUND",
    "CAMPAIGN_NOTFOUND": "CAMPAIGN_NOT_FOUND",
    "PRODUCT_NOTFOUND": "PRODUCT_NOT_FOUND",
    "NOT_TRIGGERED": "AUTOMATION_NOT_TRIGGERED",
    "CONTACT_OPTOUT": "CONTACT_OPTED_OUT",
    "CONTACT_ALREADY_EXISTS": "CONTACT_ALREADY_EXISTS",
    "INVALID_PROPERTY": "INVALID_PROPERTY",
    "NAME_ALREADY_IN_USE": "NAME_ALREADY_IN_USE",
    "ID_NOTUNIQUE": "ID_NOT_UNIQUE",
}
_NOT_FOUND_TYPES = {"CONTACT_NOT_FOUND", "CONTACT_NOTFOUND", "TRIGGER_NOTFOUND", "CAMPAIGN_NOTFOUND",
                    "PRODUCT_NOTFOUND", "RESOURCE_NOT_FOUND", "ORDER_NOTFOUND", "MAILING_NOTFOUND",
                    "FORM_NOT_FOUND", "FORMRESULT_NOT_FOUND"}
_BUSINESS_TYPES = {"CONTACT_OPTOUT", "CONTACT_ALREADY_EXISTS", "INVALID_STATE", "NAME_ALREADY_IN_USE",
                   "ID_NOTUNIQUE", "NOT_TRIGGERED"}
#: 400 messages that are business refusals, not malformed input (spec §5.3 lists them)
_BUSINESS_MESSAGE = re.compile(
    r"inactive|already|not in selection|missing message|not triggered|in use|must be unique|exceeded",
    re.IGNORECASE,
)
_AUTH_MESSAGE = re.compile(r"signature|oauth|consumer|credential|key and secret|unauthori[sz]ed", re.IGNORECASE)


#: Every upstream call, classified: True = safe to repeat (repeating it leaves the same state: read, set a field,
#: add to an audience, stop a run, anonymize ...), False = not safe (each repeat does it again: start an
#: automation, trigger a campaign). ``score`` depends on its mode (SET is safe, INCREASE/DECREASE are not).
#: A call that is not safe is never retried and, when its answer is lost, raises OutcomeUnknown.
REPEATABLE: dict[str, bool] = {
    "list_properties": True, "get_contact": True, "search_contacts": True, "insert_contact": True,
    "update_contact": True, "insert_contacts": True, "anonymize_contact": True, "updated_contacts": True,
    "bounces": True, "subscribe": True,
    "trigger_automation": False, "automation_list": True, "automation_stop_run": True,
    "automation_stop_contact": True,
    "list_campaigns": True, "trigger_campaign": False, "stop_campaign": True,
    "create_audience": True, "get_audience": True, "update_audience": True, "delete_audience": True,
    "audience_list": True, "audience_members": True, "add_audience_contacts": True,
    "remove_audience_contacts": True, "clear_audience": True,
    "create_temporary_list": True, "list_temporary_lists": True, "add_to_temporary_list": True,
    "delete_temporary_list": True,
    "tag_list": True, "tag_add": True, "tag_remove": True, "score": True,
    # event feeds of the polling triggers (reads)
    "interactions_opened": True, "interactions_clicked": True, "interactions_bounced": True,
    "interactions_sent": True, "list_mailings": True, "get_mailing": True,
}


def _enc(value: str) -> str:
    return quote(str(value), safe="")


class SpotlerClient:
    """One instance per process (the provider owns it). Thread-safe for concurrent calls."""

    def __init__(self, config: SpotlerConfig) -> None:
        self.config = config
        self.settings = config.http_settings
        self.routes: dict[str, Route] = build_routes(config)
        self._base = config.base_url.rstrip("/") + "/"
        #: the requests-oauthlib signer (one-legged: no token, empty token secret)
        self.auth = OAuth1(config.consumer_key, client_secret=config.consumer_secret,
                           signature_method="HMAC-SHA1", signature_type="AUTH_HEADER")
        self._session = LazySession("spotler", self.settings, auth=self.auth,
                                    headers={"Accept": "application/json"})

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------------------------------------------
    # transport
    # ------------------------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self._base + path.lstrip("/")

    def send(self, op: str, method: str, path: str, *, params: dict | None = None,
             body: Any = None, has_body: bool | None = None,
             repeatable: bool | None = None,
             guard: UnsafeCallGuard | None = None) -> tuple[int, Any, requests.Response]:
        """One HTTP exchange: ``(status, parsed JSON or None, response)``. Transport errors are mapped.

        ``repeatable`` defaults to the call's class in :data:`REPEATABLE` (an unclassified call is a bug). A call
        that is not safe to repeat goes through :func:`~service.providers.http.send_unsafe` (``guard`` is told
        before it is sent; a lost answer raises OutcomeUnknown)."""
        safe = REPEATABLE[op] if repeatable is None else repeatable
        kwargs: dict[str, Any] = {"params": params, "timeout": self.settings.timeout}
        if body is not None or has_body:
            kwargs["json"] = body
        started = time.monotonic()
        try:
            if safe:
                resp = self._session.get().request(method, self.url(path), **kwargs)
            else:
                resp = send_unsafe(guard, op, lambda: self._session.get().request(method, self.url(path), **kwargs),
                                   upstream=UPSTREAM)
        except (requests.RequestException, errors.ProviderError) as exc:
            err = map_request_exception(exc, upstream=UPSTREAM) if isinstance(exc, requests.RequestException) else exc
            log.warning("spotler %s failed after %.0f ms: %s", op, (time.monotonic() - started) * 1000,
                        type(err).__name__)
            if err is exc:
                raise
            raise err from exc
        elapsed = (time.monotonic() - started) * 1000
        log.debug("spotler %s -> %s in %.0f ms", op, resp.status_code, elapsed)
        return resp.status_code, _parse_body(resp), resp

    def call(self, op: str, method: str, path: str, *, params: dict | None = None, body: Any = None,
             has_body: bool | None = None, ok: Iterable[int] = (200, 201, 202, 204),
             repeatable: bool | None = None, guard: UnsafeCallGuard | None = None) -> Any:
        """Send and return the parsed body of a successful answer; raise our error otherwise."""
        status, payload, resp = self.send(op, method, path, params=params, body=body, has_body=has_body,
                                          repeatable=repeatable, guard=guard)
        if status in tuple(ok):
            return payload
        raise self.error(op, status, payload, resp)

    def error(self, op: str, status: int, payload: Any, resp: requests.Response | None = None) -> errors.ProviderError:
        """Our error for a Spotler error answer."""
        info = {"error_type": None, "message": None, "external_contact_ids": [], "result": None}
        if isinstance(payload, dict):
            try:
                info = _schema(s.ErrorSchema).load(payload)
            except Exception:  # noqa: BLE001 - a malformed error body must not hide the status
                pass
        elif isinstance(payload, str):
            info["error_type"] = _xml_tag(payload, "errorType")
            info["message"] = _xml_tag(payload, "message")
        error_type = info.get("error_type") or info.get("result")
        message = info.get("message") or _default_message(op, status, error_type)
        retry_after = parse_retry_after(resp.headers.get("Retry-After")) if resp is not None else None
        details: dict[str, Any] = {}
        if info.get("external_contact_ids"):
            details["externalContactIds"] = list(info["external_contact_ids"])
        code = _CODES.get(error_type or "")
        kw = {"upstream_status": status, "error_type": error_type, "details": details, "code": code}
        if status == 400:
            if error_type in _NOT_FOUND_TYPES or re.search(r"not found", message, re.IGNORECASE):
                return errors.NotFound(message, **kw)
            if error_type in _BUSINESS_TYPES or _BUSINESS_MESSAGE.search(message):
                return errors.Rejected(message, **kw)
            return errors.InvalidInput(message, **kw)
        if status == 401:
            return errors.AuthFailed("Spotler refused the consumer key or secret (HTTP 401).", **kw)
        if status == 403:
            if not info.get("message") or error_type == "AUTH_NOT_FOUND" or _AUTH_MESSAGE.search(message):
                return errors.AuthFailed("Spotler refused the consumer key or secret (HTTP 403).", **kw)
            return errors.Forbidden(message, **kw)
        if status == 413:
            return errors.InvalidInput(message, **kw)
        return error_for_status(status, message, error_type=error_type, retry_after=retry_after, details=details,
                                code=code)

    def paginate(self, op: str, path: str, *, key: str, schema: s.Schema, params: dict | None = None,
                 page_size: int = DEFAULT_PAGE_SIZE, max_pages: int = 10_000) -> Iterator[dict]:
        """Yield every item of an ``after``/``pageSize`` paged list (bare array or ``{paging, key}``)."""
        after: int | None = 0
        for _ in range(max_pages):
            items, after = self.page(op, path, key=key, schema=schema, params=params, after=after,
                                     page_size=page_size)
            yield from items
            if after is None:
                return
        raise errors.ProviderError(f"Spotler {op}: more than {max_pages} pages", code="UPSTREAM_PAGING_LOOP")

    def page(self, op: str, path: str, *, key: str, schema: s.Schema, params: dict | None = None, after: int = 0,
             page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[dict], int | None]:
        """One page of an ``after``/``pageSize`` list: ``(items, offset of the next page or None at the end)``.

        The end: ``paging`` without ``after`` and ``next``, an empty page, or (bare array) a short page.
        """
        page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        payload = self.call(op, "GET", path, params={**(params or {}), "after": after, "pageSize": page_size})
        items, paging = _load_list(schema, payload, key)
        raw = _raw_count(payload, key)
        if not raw:
            return items, None
        if paging is not None:
            nxt = paging.get("after")
            if nxt is None:
                if not paging.get("next"):
                    return items, None
                nxt = after + raw
        else:
            if raw < page_size:
                return items, None
            nxt = after + raw
        return items, (nxt if nxt > after else None)

    def _route(self, name: str, *, repeatable: bool | None = None, guard: UnsafeCallGuard | None = None,
               **values: Any) -> Any:
        route = self.routes[name]
        if not route.enabled:
            raise errors.NotSupported(f"The Spotler call '{name}' is disabled in the configuration.",
                                      code="NOT_SUPPORTED_BY_PLATFORM")
        method, path, body = route.render(**values)
        return self.call(name, method, path, body=body, has_body=route.has_body, repeatable=repeatable, guard=guard)

    # ------------------------------------------------------------------------------------------------------
    # contacts [SPEC]
    # ------------------------------------------------------------------------------------------------------
    def list_properties(self) -> list[dict]:
        items, _ = _load_list(_schema(s.PropertySchema), self.call("list_properties", "GET", "contact/properties/list"))
        return items

    def get_contact(self, external_id: str) -> dict:
        """The contact, or NotFound (404 CONTACT_NOT_FOUND)."""
        payload = self.call("get_contact", "GET", f"contact/{_enc(external_id)}")
        return _load_one(_schema(s.ContactSchema), payload)

    def search_contacts(self, query: str, *, page_size: int = 100, limit: int | None = None) -> list[dict]:
        """Contacts matching ``MPSearchQuery`` (``<property>=<value>``, exact match)."""
        out = []
        for item in self.paginate("search_contacts", "contact/search", key="contacts", schema=_schema(s.ContactSchema),
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
        items, _ = _load_list(_schema(s.ContactSchema), payload, "contacts")
        return items[0] if items else None

    def insert_contact(self, contact: dict, *, update: bool = True, purge: bool = False) -> None:
        """``POST /contact``; with ``update`` an existing contact is updated (upsert). ``contact`` is wire-shaped."""
        body = _schema(s.ContactRequestSchema).dump({"update": update, "purge": purge, "contact": _contact_out(contact)})
        self.call("insert_contact", "POST", "contact", body=body)

    def update_contact(self, external_id: str, properties: dict[str, Any], *, purge: bool = False) -> None:
        """``PUT /contact/{externalId}``: only ``properties`` change unless ``purge``; None clears a property."""
        body = _schema(s.ContactRequestSchema).dump(
            {"purge": purge, "contact": {"external_id": external_id, "properties": properties}}
        )
        self.call("update_contact", "PUT", f"contact/{_enc(external_id)}", body=body)

    def insert_contacts(self, contacts: list[dict], *, update: bool = True, purge: bool = False) -> list[dict]:
        """``POST /contact/list`` in chunks of 100; per-contact results ``{external_id, code, message}``."""
        results: list[dict] = []
        for i in range(0, len(contacts), MAX_BULK_CONTACTS):
            chunk = [_contact_out(c) for c in contacts[i:i + MAX_BULK_CONTACTS]]
            body = _schema(s.AddContactsRequestSchema).dump({"update": update, "purge": purge, "contacts": chunk})
            items, _ = _load_list(_schema(s.AddContactResultSchema), self.call("insert_contacts", "POST", "contact/list",
                                                                        body=body))
            results.extend(items)
        return results

    def anonymize_contact(self, external_id: str) -> None:
        self.call("anonymize_contact", "PUT", f"contact/anonymize/{_enc(external_id)}")

    def iter_updated_contacts(self, from_date: str, to_date: str, *,
                              page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[dict]:
        """Contacts changed between two ISO 8601 dates (``GET /contact/updates/list``)."""
        yield from self.paginate("updated_contacts", "contact/updates/list", key="contacts",
                                 schema=_schema(s.ContactSchema), params={"fromDate": from_date, "toDate": to_date},
                                 page_size=page_size)

    def iter_bounces(self, from_date: str, to_date: str, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[dict]:
        """Bounces between two ISO 8601 dates (``GET /contact/bounces/list``)."""
        yield from self.paginate("bounces", "contact/bounces/list", key="bounces", schema=_schema(s.BounceSchema),
                                 params={"fromDate": from_date, "toDate": to_date}, page_size=page_size)

    def updated_contacts_page(self, from_date: dt.datetime, to_date: dt.datetime, *, after: int = 0,
                              page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[dict], int | None]:
        """One page of ``GET /contact/updates/list`` (contacts whose lastChanged is in the window)."""
        return self.page("updated_contacts", "contact/updates/list", key="contacts", schema=_schema(s.ContactSchema),
                         params={"fromDate": iso_param(from_date), "toDate": iso_param(to_date, ceil=True)},
                         after=after, page_size=page_size)

    def bounces_page(self, from_date: dt.datetime, to_date: dt.datetime, *, after: int = 0,
                     page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[dict], int | None]:
        """One page of ``GET /contact/bounces/list``."""
        return self.page("bounces", "contact/bounces/list", key="bounces", schema=_schema(s.BounceSchema),
                         params={"fromDate": iso_param(from_date), "toDate": iso_param(to_date, ceil=True)},
                         after=after, page_size=page_size)

    def interactions_page(self, kind: str, from_change: dt.datetime, to_change: dt.datetime, *, after: int = 0,
                          page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[dict], int | None]:
        """One page of ``GET /mailing-interaction/{opened|clicked|bounced|sent}`` by change date."""
        if kind not in ("opened", "clicked", "bounced", "sent"):
            raise ValueError(f"unknown interaction kind {kind!r}")
        return self.page(f"interactions_{kind}", f"mailing-interaction/{kind}", key="interactions",
                         schema=_schema(s.InteractionSchema),
                         params={"fromChangeDate": iso_param(from_change),
                                 "toChangeDate": iso_param(to_change, ceil=True)},
                         after=after, page_size=page_size)

    def list_mailings(self, from_date: dt.datetime, to_date: dt.datetime) -> list[dict]:
        """``GET /mailing?fromDate&toDate``: the mailings sent in the period (bare array)."""
        payload = self.call("list_mailings", "GET", "mailing",
                            params={"fromDate": iso_param(from_date), "toDate": iso_param(to_date, ceil=True)})
        items, _ = _load_list(_schema(s.MailingSchema), payload, "mailings")
        return items

    def get_mailing(self, mailing_id: str) -> dict:
        """``GET /mailing/{encryptedMailingId}``; NotFound when Spotler does not know it."""
        return _load_one(_schema(s.MailingSchema), self.call("get_mailing", "GET", f"mailing/{_enc(mailing_id)}"))

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
                parsed = _load_one(_schema(s.TriggerResultSchema), payload)
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
        items, _ = _load_list(_schema(s.AutomationSchema), self._route("automation_list"), "automations")
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
        items, _ = _load_list(_schema(s.StopResultSchema), payload, "results")
        return items

    # ------------------------------------------------------------------------------------------------------
    # campaigns [SPEC]
    # ------------------------------------------------------------------------------------------------------
    def list_campaigns(self) -> list[dict]:
        items, _ = _load_list(_schema(s.CampaignSchema), self.call("list_campaigns", "GET", "campaign/list"), "campaigns")
        return items

    def trigger_campaign(self, trigger_id: str, external_contact_id: str, fields: list[dict] | None = None, *,
                         guard: UnsafeCallGuard | None = None) -> None:
        body = _schema(s.CampaignTriggerRequestSchema).dump({
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
        return _load_one(_schema(s.AudienceSchema), self.call("create_audience", "POST", "audience", body=body))

    def get_audience(self, external_id: str) -> dict:
        return _load_one(_schema(s.AudienceSchema), self.call("get_audience", "GET", f"audience/{_enc(external_id)}"))

    def update_audience(self, external_id: str, name: str, description: str | None = None) -> dict:
        body = {"externalId": external_id, "name": name}
        if description is not None:
            body["description"] = description
        payload = self.call("update_audience", "PUT", f"audience/{_enc(external_id)}", body=body)
        return _load_one(_schema(s.AudienceSchema), payload)

    def delete_audience(self, external_id: str) -> None:
        self.call("delete_audience", "DELETE", f"audience/{_enc(external_id)}")

    def list_audiences(self) -> list[dict]:
        items, _ = _load_list(_schema(s.AudienceSchema), self._route("audience_list"), "audiences")
        return items

    def list_audience_members(self, external_id: str) -> list[str] | None:
        """[ASSUMED route] External ids of the audience's members; None when the route is disabled."""
        route = self.routes["audience_members"]
        if not route.enabled:
            return None
        _, path, _ = route.render(audience_id=external_id)
        return [m["external_id"] for m in self.paginate("audience_members", path, key="contacts",
                                                         schema=_schema(s.MemberSchema), page_size=MAX_PAGE_SIZE)]

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
        items, _ = _load_list(_schema(s.TemporaryListSchema), self.call("list_temporary_lists", "GET", "templist"))
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
        items, _ = _load_list(_schema(s.TagSchema), self._route("tag_list"), "tags")
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
                return _load_one(_schema(s.ScoreResultSchema), payload).get("score")
            except errors.ProviderError:
                return None
        return None


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------


def _parse_body(resp: requests.Response) -> Any:
    if resp.status_code == 204 or not resp.content:
        return None
    ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype or resp.content[:1] in (b"{", b"["):
        try:
            return resp.json()
        except ValueError:
            return resp.text
    return resp.text


def iso_param(when: dt.datetime, *, ceil: bool = False) -> str:
    """A date query parameter as Spotler documents it (``yyyy-mm-ddThh:mm:ss``, here with ``+00:00``): whole
    seconds, rounded down (or up with ``ceil``, for the end of a window) so that the window never shrinks."""
    when = when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    if ceil and when.microsecond:
        when = when + dt.timedelta(seconds=1)
    return when.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _raw_count(payload: Any, key: str) -> int:
    """How many items the page held before invalid ones were skipped (paging counts those too)."""
    if isinstance(payload, list):
        return len(payload)
    if isinstance(payload, dict):
        items = payload.get(key)
        if items is None:
            lists = [v for k, v in payload.items() if k != "paging" and isinstance(v, list)]
            items = lists[0] if len(lists) == 1 else []
        return len(items) if isinstance(items, list) else 0
    return 0


def _xml_tag(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
    return m.group(1).strip() if m else None


def _default_message(op: str, status: int, error_type: str | None) -> str:
    if error_type:
        return f"Spotler refused {op}: {error_type}."
    return f"Spotler answered HTTP {status} to {op}."


@functools.cache
def _schema(cls: type[s.Schema]) -> s.Schema:
    """One instance per schema class: building a marshmallow Schema deep-copies its fields, which cost more
    than the load itself on the hot path; loading and dumping do not change the instance."""
    return cls()


def _load_one(schema: s.Schema, payload: Any) -> dict:
    try:
        return s.load_one(schema, payload)
    except s.PayloadError as exc:
        raise errors.ProviderError(f"Spotler sent an unexpected answer: {exc}", code="UPSTREAM_BAD_RESPONSE") from None


def _load_list(schema: s.Schema, payload: Any, key: str | None = None) -> tuple[list[dict], dict | None]:
    try:
        return s.load_list(schema, payload, key)
    except s.PayloadError as exc:
        raise errors.ProviderError(f"Spotler sent an unexpected answer: {exc}", code="UPSTREAM_BAD_RESPONSE") from None


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
