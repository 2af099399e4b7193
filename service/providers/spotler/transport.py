"""Spotler Mail+ transport: the signed session, one exchange, error mapping, paging, and the classification of
every call (:data:`REPEATABLE`). The resource calls are :class:`service.providers.spotler.client.SpotlerClient`.

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

import functools
import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

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
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10000

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


class SpotlerTransport:
    """The session and the generic exchange of :class:`~service.providers.spotler.client.SpotlerClient` (its
    base class). Thread-safe for concurrent calls."""

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
                info = cached_schema(s.ErrorSchema).load(payload)
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
        items, paging = load_list(schema, payload, key)
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
def cached_schema(cls: type[s.Schema]) -> s.Schema:
    """One instance per schema class: building a marshmallow Schema deep-copies its fields, which cost more
    than the load itself on the hot path; loading and dumping do not change the instance."""
    return cls()


def load_one(schema: s.Schema, payload: Any) -> dict:
    try:
        return s.load_one(schema, payload)
    except s.PayloadError as exc:
        raise errors.ProviderError(f"Spotler sent an unexpected answer: {exc}", code="UPSTREAM_BAD_RESPONSE") from None


def load_list(schema: s.Schema, payload: Any, key: str | None = None) -> tuple[list[dict], dict | None]:
    try:
        return s.load_list(schema, payload, key)
    except s.PayloadError as exc:
        raise errors.ProviderError(f"Spotler sent an unexpected answer: {exc}", code="UPSTREAM_BAD_RESPONSE") from None

