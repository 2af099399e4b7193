"""A faithful in-memory simulator of the Spotler Mail+ REST API (WSGI, werkzeug only).

Serves ``/integrationservice/...`` with the shapes, status codes and error bodies of the vendor's 2022
description (reference §4-§6) plus the assumed calls our client makes (automation list/stop, tags, scores,
audience list and membership): see docs/spotler-api-coverage.md. Every call must carry a valid OAuth 1.0a
HMAC-SHA1 signature (verified with oauthlib's server-side helpers; query parameters signed, JSON bodies
not, ``oauth_body_hash`` accepted and checked when present).

    sim = SpotlerSimulator(consumer_key="K", consumer_secret="S")
    with SimulatorServer(sim) as url:
        base_url = url + "/integrationservice"
        ...
    sim.stats()["triggers"]      # side-effect counters (also GET /__sim__/stats; the state itself: /__sim__/state)
    sim.faults.configure(fail_rate=1, fail_status=503, times=1)   # also POST /__sim__/faults

State is per instance and guarded by one lock. ``POST /__sim__/reset`` (or :meth:`reset`) restores the
seeded demo account (:mod:`.demo`).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from service.sandbox.faults import FaultConfig, FaultInjector
from service.sandbox.spotler import demo
from service.sandbox.spotler.feeds import DATE_FORMATS, FEED_ROUTES, LIST_SHAPES, FeedsMixin
from service.sandbox.spotler.wire import json_response, parse_iso

BASE_PATH = "/integrationservice"
TIER_MESSAGE = "Only Automation or eCommerce products can use this call"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_MOBILE = re.compile(r"^\+?[0-9][0-9 ()-]{5,19}$")
_POSTCODE = re.compile(r"^[A-Za-z0-9 -]{2,10}$")
_FIELD_TYPES = {"STRING", "URL", "PRODUCTLIST"}


class SimError(Exception):
    def __init__(self, status: int, error_type: str | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] | None = (
            {"errorType": error_type, "message": message, **extra} if error_type is not None else extra or None
        )


_parse_iso = parse_iso


class SpotlerSimulator(FeedsMixin):
    """The WSGI app. Options:

    * ``tier``: ``automation`` (default), ``ecommerce`` or ``basic`` (audiences answer 403 on basic).
    * ``auth_failure_status``: 401 (default) or 403.
    * ``timestamp_skew``: accepted clock difference of ``oauth_timestamp`` in seconds (None = unchecked).
    * ``date_format``: ``epoch_ms`` (default, as observed live) or ``iso`` for response dates.
    * ``list_shape``: ``paged`` (default, spec) or ``array`` (observed on -1.1.0) for the event feeds (updates,
      bounces, mailing interactions); see :mod:`.feeds`.
    * ``run_id_location``: where ``automationContactId`` goes in trigger answers: ``item`` (default),
      ``top`` or ``none``.
    * ``faults``: a :class:`FaultConfig` applied from the start.
    """

    SimError = SimError  # the feed handlers of FeedsMixin raise it

    def __init__(
        self,
        consumer_key: str = demo.SANDBOX_CONSUMER_KEY,
        consumer_secret: str = demo.SANDBOX_CONSUMER_SECRET,
        *,
        tier: str = "automation",
        auth_failure_status: int = 401,
        timestamp_skew: float | None = 900.0,
        date_format: str = "epoch_ms",
        list_shape: str = "paged",
        run_id_location: str = "item",
        max_audiences: int = 100,
        max_temporary_lists: int = 50,
        faults: FaultConfig | None = None,
    ) -> None:
        if tier not in ("basic", "automation", "ecommerce"):
            raise ValueError("tier must be basic, automation or ecommerce")
        if list_shape not in LIST_SHAPES or date_format not in DATE_FORMATS:
            raise ValueError(f"list_shape must be one of {LIST_SHAPES}, date_format one of {DATE_FORMATS}")
        if auth_failure_status not in (401, 403):
            raise ValueError("auth_failure_status must be 401 or 403")
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.tier = tier
        self.auth_failure_status = auth_failure_status
        self.timestamp_skew = timestamp_skew
        self.date_format = date_format
        self.list_shape = list_shape
        self._initial_formats = (list_shape, date_format)
        self.run_id_location = run_id_location
        self.max_audiences = max_audiences
        self.max_temporary_lists = max_temporary_lists
        self.lock = threading.RLock()
        self.url_map = Map([Rule(BASE_PATH + path, endpoint=endpoint, methods=methods)
                            for path, endpoint, methods in _ROUTES + FEED_ROUTES], strict_slashes=False)
        self.faults = FaultInjector(self._wsgi, faults, stats_provider=self.stats,
                                    error_body={"errorType": "BACKEND_EXCEPTION", "message": "Simulated failure"})
        self.reset()

    # ------------------------------------------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seeded demo account, the machine's clock and the configured list shape and date form;
        counters to zero."""
        s = demo.seed()
        with self.lock:
            self._init_clock()
            self.list_shape, self.date_format = self._initial_formats
            self.properties: dict[str, dict] = {p["name"]: p for p in s["properties"]}
            self.contacts: dict[str, dict] = {}
            for c in s["contacts"]:
                props: dict[str, Any] = {"email": c["email"]}
                for k, v in c["props"].items():
                    props[k] = {str(b): on for b, on in v.items()} if isinstance(v, dict) else v
                self.contacts[c["externalId"]] = {
                    "externalId": c["externalId"], "encryptedId": _encrypted_id(c["externalId"]),
                    "created": c["created"], "lastChanged": c["lastChanged"], "testGroup": False,
                    "temporary": False, "properties": props, "channels": {"EMAIL": True}, "anonymized": False,
                }
            self.blocked: set[str] = set(s["blocked"])
            self.automations: dict[str, dict] = {a["automationId"]: a for a in s["automations"]}
            self.runs: dict[str, dict] = {}
            self.campaigns: dict[str, dict] = {c["encryptedId"]: c for c in s["campaigns"]}
            self.campaign_members: dict[tuple[str, str], str] = {}
            self.audiences: dict[str, dict] = {}
            for a in s["audiences"]:
                self.audiences[a["externalId"]] = {
                    "externalId": a["externalId"], "name": a["name"], "description": a["description"],
                    "createDate": demo.SEED_EPOCH_MS, "changeDate": demo.SEED_EPOCH_MS,
                    "lastContactAddedAt": None, "lastContactRemovedAt": None, "lastSyncDate": None,
                    "members": list(a["members"]), "inUse": a["inUse"],
                }
            self.templists: dict[str, dict] = {}
            self.contact_tags: dict[str, dict[str, int | None]] = {k: dict(v) for k, v in s["tags"].items()}
            self.all_tags: list[str] = list(s["all_tags"])
            self.products: set[str] = set(s["products"])
            self.bounces: list[dict] = list(s["bounces"])
            self._reset_feeds(s)
            self._requests: Counter[str] = Counter()
            self._effects: Counter[str] = Counter()
            self.faults.reset_stats()

    def stats(self) -> dict[str, Any]:
        """Counters: ``requests`` per route, ``auth_failures`` and one counter per side effect."""
        with self.lock:
            out: dict[str, Any] = {"requests": dict(self._requests)}
            for key in _EFFECTS:
                out[key] = self._effects.get(key, 0)
            out["runs_active"] = sum(1 for r in self.runs.values() if r["status"] == "ACTIVE")
            return out

    def contact(self, external_id: str) -> dict | None:
        """A deep copy of a stored contact (test helper)."""
        with self.lock:
            c = self.contacts.get(external_id)
            return copy.deepcopy(c) if c else None

    def tags_of(self, external_id: str) -> dict[str, int | None]:
        with self.lock:
            return dict(self.contact_tags.get(external_id, {}))

    def members_of(self, audience_id: str) -> list[str]:
        with self.lock:
            return list(self.audiences[audience_id]["members"])

    def run(self, automation_contact_id: str) -> dict | None:
        with self.lock:
            r = self.runs.get(automation_contact_id)
            return dict(r) if r else None

    def _effect(self, key: str, n: int = 1) -> None:
        self._effects[key] += n

    # ------------------------------------------------------------------------------------------------------
    # WSGI
    # ------------------------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return self.faults(environ, start_response)

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/__sim__/"):
            return self._control(request)(environ, start_response)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            rule, args = adapter.match(return_rule=True)
        except MethodNotAllowed:
            return _json(405, {"errorType": "INVALID_PARAMS", "message": "Method not allowed"})(environ, start_response)
        except NotFound:
            return _json(404, {"errorType": "RESOURCE_NOT_FOUND", "message": "Resource not found"})(
                environ, start_response)
        except HTTPException as exc:  # pragma: no cover - redirects etc.
            return exc(environ, start_response)
        route_key = f"{request.method} {rule.rule[len(BASE_PATH):]}"
        with self.lock:
            self._requests[route_key] += 1
        failure = self._verify_oauth(request)
        if failure:
            with self.lock:
                self._effect("auth_failures")
            return _json(self.auth_failure_status, {"errorType": "NOT_AUTHORIZED", "message": failure})(
                environ, start_response)
        handler = getattr(self, "h_" + rule.endpoint)
        try:
            body = _body(request)
            with self.lock:
                response = handler(request, body, **args)
        except SimError as exc:
            response = _json(exc.status, exc.body)
        return response(environ, start_response)

    def _control(self, request: Request) -> Response:
        if request.path == "/__sim__/reset" and request.method == "POST":
            self.reset()
            return _json(200, {"reset": True})
        if request.path == "/__sim__/tier" and request.method == "POST":
            tier = (request.get_json(silent=True) or {}).get("tier")
            if tier not in ("basic", "automation", "ecommerce"):
                return _json(400, {"message": "tier must be basic, automation or ecommerce"})
            self.tier = tier
            return _json(200, {"tier": tier})
        if request.path == "/__sim__/state" and request.method == "GET":
            with self.lock:  # what the calls did, to count side effects by (tests, rehearsals)
                return _json(200, {
                    "contacts": {eid: c["properties"].get("email") for eid, c in self.contacts.items()},
                    "runs": [{k: r[k] for k in ("automationContactId", "automationId", "externalContactId",
                                                "status")} for r in self.runs.values()],
                    "tags": {eid: dict(tags) for eid, tags in self.contact_tags.items() if tags},
                })
        if request.path == "/__sim__/demo" and request.method == "GET":
            d = demo.DEMO
            return _json(200, {k: dict(getattr(d, k)) for k in ("automations", "automation_ids", "campaigns",
                                                               "campaign_triggers", "audiences", "contacts",
                                                               "emails", "permissions")})
        answer = self._feed_control(request)
        if answer is not None:
            return answer
        return _json(404, {"message": "unknown control endpoint"})

    # ------------------------------------------------------------------------------------------------------
    # OAuth 1.0a (one-legged, HMAC-SHA1)
    # ------------------------------------------------------------------------------------------------------
    def _verify_oauth(self, request: Request) -> str | None:
        """None when the signature is valid, else the reason."""
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("oauth "):
            return "Missing OAuth authorization header"
        try:
            oauth = dict(oauth_utils.parse_authorization_header(header))
        except ValueError:
            return "Malformed OAuth authorization header"
        oauth = {k: oauth_utils.unescape(v) for k, v in oauth.items()}
        if oauth.get("oauth_consumer_key") != self.consumer_key:
            return "Unknown OAuth consumer key"
        if oauth.get("oauth_signature_method") != "HMAC-SHA1":
            return "Unsupported OAuth signature method"
        if oauth.get("oauth_version", "1.0") != "1.0" or "oauth_nonce" not in oauth:
            return "Invalid OAuth parameters"
        try:
            ts = int(oauth.get("oauth_timestamp", ""))
        except ValueError:
            return "Invalid OAuth timestamp"
        if self.timestamp_skew is not None and abs(time.time() - ts) > self.timestamp_skew:
            return "OAuth timestamp out of range"
        body_hash = oauth.get("oauth_body_hash")
        if body_hash is not None:
            expected = base64.b64encode(hashlib.sha1(request.get_data()).digest()).decode()  # noqa: S324 - OAuth spec
            if body_hash != expected:
                return "Invalid OAuth body hash"
        # The path as sent (still percent-encoded) and the raw query string (QUERY_STRING is undecoded in WSGI).
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        if not raw:
            raw = quote(request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", ""))
        if raw.startswith(("http://", "https://")):
            raw = "/" + raw.split("://", 1)[1].split("/", 1)[-1]
        path = raw.partition("?")[0]
        query = request.environ.get("QUERY_STRING", "")
        host = request.host
        uri = f"{request.scheme}://{host}{path}"
        form_body = None
        if request.mimetype == "application/x-www-form-urlencoded":
            form_body = request.get_data(as_text=True)
        params = oauth_signature.collect_parameters(uri_query=query, body=form_body,
                                                    headers={"Authorization": header},
                                                    exclude_oauth_signature=True, with_realm=False)
        probe = SimpleNamespace(params=params, uri=uri, http_method=request.method,
                                signature=oauth.get("oauth_signature", ""))
        if not oauth_signature.verify_hmac_sha1(probe, client_secret=self.consumer_secret, resource_owner_secret=None):
            return "Invalid OAuth signature"
        return None

    # ------------------------------------------------------------------------------------------------------
    # rendering helpers
    # ------------------------------------------------------------------------------------------------------
    def _date(self, ms: int | None) -> Any:
        if ms is None:
            return None
        if self.date_format == "iso":
            return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")
        return ms

    def _contact_out(self, c: dict) -> dict:
        props: dict[str, Any] = {}
        for name, value in c["properties"].items():
            prop = self.properties.get(name)
            if prop is None or value is None or value == "":
                continue
            if prop["type"] == "set":
                labels = {str(e["bit"]): e["description"] for e in prop.get("entries", [])}
                if value:
                    props[name] = [{"bit": int(b), "enabled": on, "description": labels.get(b, "")}
                                   for b, on in sorted(value.items(), key=lambda x: int(x[0]))]
            else:
                props[name] = value
        return {
            "externalId": c["externalId"], "encryptedId": c["encryptedId"], "created": self._date(c["created"]),
            "lastChanged": self._date(c["lastChanged"]), "testGroup": c["testGroup"], "temporary": c["temporary"],
            "properties": props, "channels": [{"name": k, "value": v} for k, v in sorted(c["channels"].items())],
        }

    def _audience_out(self, a: dict) -> dict:
        out = {"externalId": a["externalId"], "name": a["name"]}
        if a.get("description") is not None:
            out["description"] = a["description"]
        for key in ("createDate", "changeDate", "lastContactAddedAt", "lastContactRemovedAt", "lastSyncDate"):
            if a.get(key) is not None:
                out[key] = self._date(a[key])
        return out

    def _page(self, request: Request, items: list, key: str, *, required: bool = True,
              shape: str = "paged") -> Response:
        size_raw = request.args.get("pageSize")
        if size_raw is None and required:
            raise SimError(400, "INVALID_PARAMS", "pageSize is required")
        try:
            size = int(size_raw) if size_raw is not None else 1000
            after = int(request.args.get("after", 0) or 0)
        except ValueError:
            raise SimError(400, "INVALID_PARAMS", "Invalid paging parameters") from None
        if size < 1 or size > 10000 or after < 0:
            raise SimError(400, "INVALID_PARAMS", "Invalid paging parameters")
        page = items[after:after + size]
        if shape == "array":
            return _json(200, page)
        paging: dict[str, Any] = {}
        if after + size < len(items):
            nxt = dict(request.args)
            nxt["after"] = str(after + size)
            paging = {"after": after + size,
                      "next": request.base_url + "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in nxt.items())}
        return _json(200, {"paging": paging, key: page})

    # ------------------------------------------------------------------------------------------------------
    # contacts
    # ------------------------------------------------------------------------------------------------------
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
                "externalId": external_id, "encryptedId": _encrypted_id(external_id), "created": now,
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
        return _json(200, [copy.deepcopy(p) for p in self.properties.values()])

    def h_get_contact(self, request, body, eid):
        return _json(200, self._contact_out(self._get_contact(eid)))

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
        return _json(200, results)

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

    # ------------------------------------------------------------------------------------------------------
    # automations
    # ------------------------------------------------------------------------------------------------------
    def _automations_for(self, code: str) -> list[dict]:
        return [a for a in self.automations.values() if a["triggerCode"] == code]

    def h_automation_list(self, request, body):
        return _json(200, [{
            "automationId": a["automationId"], "name": a["name"], "triggerCode": a["triggerCode"],
            "status": "ACTIVE" if a["active"] else "INACTIVE",
            "automationFields": [{"name": n, "type": t} for n, t in a["fields"].items()],
        } for a in self.automations.values()])

    def _check_fields(self, fields: Any, declared: dict[str, str] | None, *, what: str) -> list[dict]:
        if fields is None:
            return []
        if not isinstance(fields, list):
            raise SimError(400, "INVALID_PARAMS", f"Invalid {what}")
        out = []
        for f in fields:
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
                raise SimError(400, "INVALID_PARAMS", f"Invalid {what}")
            ftype = str(f.get("type") or "STRING").upper()
            if ftype not in _FIELD_TYPES:
                raise SimError(400, "INVALID_PARAMS", f"Invalid {what} type")
            if declared is not None:
                if f["name"] not in declared:
                    raise SimError(400, "INVALID_PARAMS", f"Unknown automation field: {f['name']}")
                if declared[f["name"]] != ftype:
                    raise SimError(400, "INVALID_PARAMS", f"Automation field {f['name']} must be of type "
                                                          f"{declared[f['name']]}")
            if ftype == "PRODUCTLIST":
                values = f.get("values")
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise SimError(400, "INVALID_PARAMS", f"Invalid {what} values")
                if any(v not in self.products for v in values):
                    raise SimError(400, "PRODUCT_NOTFOUND", "Product not found")
            else:
                value = f.get("value")
                if value is not None and not isinstance(value, str):
                    raise SimError(400, "INVALID_PARAMS", f"Invalid {what} value")
                if ftype == "URL" and value and not re.match(r"^https?://\S+$", value):
                    raise SimError(400, "INVALID_PARAMS", f"Invalid URL in {what} {f['name']}")
            out.append({"name": f["name"], "type": ftype, "value": f.get("value"), "values": f.get("values")})
        return out

    def h_automation_trigger(self, request, body, code):
        automations = self._automations_for(code)
        if not automations:
            return _json(404, {"result": "TRIGGER_NOTFOUND", "automationResults": []})
        if not isinstance(body, dict) or not isinstance(body.get("externalContactId"), str):
            raise SimError(400, "INVALID_PARAMS", "externalContactId is required")
        eid = body["externalContactId"]
        contact = self.contacts.get(eid)
        if contact is None or contact["anonymized"]:
            return _json(404, {"result": "CONTACT_NOTFOUND", "automationResults": []})
        declared: dict[str, str] = {}
        for a in automations:
            declared.update(a["fields"])
        fields = self._check_fields(body.get("automationFields"), declared, what="automation field")
        self._effect("automation_trigger_calls")
        results = []
        for a in automations:
            if not a["active"]:
                results.append({"automationId": a["automationId"], "result": "AUTOMATION_INACTIVE"})
                continue
            limit = a.get("participationLimit")
            done = sum(1 for r in self.runs.values() if r["automationId"] == a["automationId"]
                       and r["externalContactId"] == eid)
            if limit is not None and done >= limit:
                results.append({"automationId": a["automationId"], "result": "PARTICIPATION_LIMIT_REACHED"})
                continue
            acid = str(uuid.uuid4())
            self.runs[acid] = {"automationContactId": acid, "automationId": a["automationId"], "triggerCode": code,
                               "externalContactId": eid, "status": "ACTIVE", "fields": fields,
                               "startedAt": self._now()}
            self._effect("triggers")
            item = {"automationId": a["automationId"], "result": "OK"}
            if self.run_id_location == "item":
                item["automationContactId"] = acid
            results.append(item)
        ok = [r for r in results if r["result"] == "OK"]
        if not ok:
            return _json(417, {"result": "NOT_TRIGGERED", "automationResults": results})
        payload: dict[str, Any] = {"result": "OK", "automationResults": results}
        if self.run_id_location == "top":
            started = [acid for acid, r in self.runs.items() if r["externalContactId"] == eid
                       and r["triggerCode"] == code]
            payload["automationContactId"] = started[-1]
        return _json(200, payload)

    def h_automation_stop_run(self, request, body, acid):
        run = self.runs.get(acid)
        if run is None:
            raise SimError(404, "RESOURCE_NOT_FOUND", "Automation run not found")
        if run["status"] != "ACTIVE":
            raise SimError(400, "INVALID_STATE", "Automation run already finished")
        run["status"] = "STOPPED"
        self._effect("runs_stopped")
        return Response(status=204)

    def h_automation_stop_contact(self, request, body, code):
        if not self._automations_for(code):
            raise SimError(404, "TRIGGER_NOTFOUND", "Trigger not found")
        eid = body.get("externalContactId") if isinstance(body, dict) else None
        if not isinstance(eid, str) or eid not in self.contacts:
            raise SimError(404, "CONTACT_NOT_FOUND", "Contact not found")
        results = []
        for acid, run in self.runs.items():
            if run["triggerCode"] == code and run["externalContactId"] == eid and run["status"] == "ACTIVE":
                run["status"] = "STOPPED"
                self._effect("runs_stopped")
                results.append({"automationContactId": acid, "result": "STOPPED"})
        return _json(200, {"results": results})

    # ------------------------------------------------------------------------------------------------------
    # campaigns
    # ------------------------------------------------------------------------------------------------------
    def h_campaign_list(self, request, body):
        return _json(200, [{"encryptedId": c["encryptedId"], "name": c["name"], "active": c["active"],
                            "triggers": copy.deepcopy(c["triggers"])} for c in self.campaigns.values()])

    def h_campaign_trigger(self, request, body, tid):
        campaign = next((c for c in self.campaigns.values() if any(t["encryptedId"] == tid for t in c["triggers"])),
                        None)
        if campaign is None:
            raise SimError(404, "TRIGGER_NOTFOUND", "Trigger not found")
        eid = body.get("externalContactId") if isinstance(body, dict) else None
        contact = self.contacts.get(eid) if isinstance(eid, str) else None
        if contact is None or contact["anonymized"]:
            raise SimError(400, "CONTACT_NOT_FOUND", "Contact not found")
        fields = self._check_fields(body.get("campaignFields"), None, what="campaign field")
        if not campaign["active"]:
            raise SimError(400, "INVALID_STATE", "Campaign inactive")
        if eid in self.blocked:
            raise SimError(400, "CONTACT_OPTOUT", "Contact is opted out")
        if campaign.get("selection"):
            prop, bit = campaign["selection"]
            if not (contact["properties"].get(prop) or {}).get(str(bit)):
                raise SimError(400, "INVALID_STATE", "Contact not in selection")
        state = self.campaign_members.get((campaign["encryptedId"], eid))
        if state == "ACTIVE":
            raise SimError(400, "INVALID_STATE", "Contact already active in campaign")
        if state is not None:
            raise SimError(400, "INVALID_STATE", "Contact already in campaign")
        self.campaign_members[(campaign["encryptedId"], eid)] = "ACTIVE"
        campaign.setdefault("lastFields", {})[eid] = fields
        self._effect("campaign_triggers")
        return Response(status=204)

    def h_campaign_stop(self, request, body, cid):
        campaign = self.campaigns.get(cid)
        if campaign is None:
            raise SimError(404, "CAMPAIGN_NOTFOUND", "Campaign not found")
        eid = body.get("externalContactId") if isinstance(body, dict) else None
        if not isinstance(eid, str) or eid not in self.contacts:
            raise SimError(400, "CONTACT_NOT_FOUND", "Contact not found")
        state = self.campaign_members.get((cid, eid))
        if state is None:
            raise SimError(400, "INVALID_STATE", "Campaign not triggered")
        if state != "ACTIVE":
            raise SimError(400, "INVALID_STATE", "Campaign already finished")
        self.campaign_members[(cid, eid)] = "STOPPED"
        self._effect("campaign_stops")
        return Response(status=204)

    # ------------------------------------------------------------------------------------------------------
    # audiences
    # ------------------------------------------------------------------------------------------------------
    def _tier_check(self) -> None:
        if self.tier == "basic":
            raise SimError(403, "NOT_AUTHORIZED", TIER_MESSAGE)

    def _audience(self, aid: str) -> dict:
        a = self.audiences.get(aid)
        if a is None:
            raise SimError(404, "RESOURCE_NOT_FOUND", "Audience not found")
        return a

    def _check_audience_name(self, name: Any, *, exclude: str | None = None) -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise SimError(417, "INVALID_PARAMS", "Audience name can not be empty or more than 255 characters")
        if any(a["name"] == name and a["externalId"] != exclude for a in self.audiences.values()):
            raise SimError(417, "NAME_ALREADY_IN_USE", "Audience name must be unique")
        return name

    def h_audience_list(self, request, body):
        self._tier_check()
        return _json(200, [self._audience_out(a) for a in self.audiences.values()])

    def h_audience_create(self, request, body):
        self._tier_check()
        if not isinstance(body, dict):
            raise SimError(400, "INVALID_PARAMS", "Audience is required")
        aid = body.get("externalId")
        if not isinstance(aid, str) or not aid.strip() or len(aid) > 255:
            raise SimError(417, "INVALID_PARAMS", "Audience id can not be empty or more than 255 characters")
        if aid in self.audiences:
            raise SimError(417, "ID_NOTUNIQUE", "Audience id must be unique")
        name = self._check_audience_name(body.get("name"))
        if len(self.audiences) >= self.max_audiences:
            raise SimError(417, "INVALID_STATE", "Maximum of audiences exceeded")
        now = self._now()
        self.audiences[aid] = {"externalId": aid, "name": name, "description": body.get("description"),
                               "createDate": now, "changeDate": now, "lastContactAddedAt": None,
                               "lastContactRemovedAt": None, "lastSyncDate": None, "members": [], "inUse": False}
        self._effect("audiences_created")
        return _json(200, self._audience_out(self.audiences[aid]))

    def h_audience_get(self, request, body, aid):
        self._tier_check()
        return _json(200, self._audience_out(self._audience(aid)))

    def h_audience_update(self, request, body, aid):
        self._tier_check()
        a = self._audience(aid)
        if not isinstance(body, dict) or body.get("externalId") != aid:
            raise SimError(400, "INVALID_PARAMS", "Path id doesn't match audience id")
        a["name"] = self._check_audience_name(body.get("name"), exclude=aid)
        a["description"] = body.get("description")
        a["changeDate"] = self._now()
        self._effect("audiences_updated")
        return _json(200, self._audience_out(a))

    def h_audience_delete(self, request, body, aid):
        self._tier_check()
        a = self._audience(aid)
        if a["inUse"]:
            raise SimError(417, "INVALID_STATE", "Cannot delete audience, as it's in use")
        del self.audiences[aid]
        self._effect("audiences_deleted")
        return Response(status=204)

    def h_audience_members(self, request, body, aid):
        self._tier_check()
        a = self._audience(aid)
        return self._page(request, [{"externalId": m} for m in a["members"]], "contacts", required=False)

    def _member_ids(self, body: Any, *, allow_absent: bool) -> list[str] | None:
        if body is None and allow_absent:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("contacts"), list) or not all(
                isinstance(x, str) for x in body["contacts"]):
            raise SimError(400, "INVALID_PARAMS", "contacts must be a list of externalContactIds")
        ids = body["contacts"]
        if len(ids) > 2500:
            raise SimError(413, "INVALID_PARAMS", "Too many contacts provided (max is 2500)")
        missing = [i for i in dict.fromkeys(ids) if i not in self.contacts or self.contacts[i]["anonymized"]]
        if missing:
            raise SimError(404, "CONTACT_NOT_FOUND", "One or more contacts could not be found",
                           externalContactIds=missing)
        return ids

    def h_audience_add(self, request, body, aid):
        self._tier_check()
        a = self._audience(aid)
        ids = self._member_ids(body, allow_absent=False)
        added = 0
        for i in dict.fromkeys(ids or []):
            if i not in a["members"]:
                a["members"].append(i)
                added += 1
        if added:
            a["lastContactAddedAt"] = self._now()
        self._effect("audience_contacts_added", added)
        return Response(status=204)

    def h_audience_remove(self, request, body, aid):
        self._tier_check()
        a = self._audience(aid)
        ids = self._member_ids(body, allow_absent=True)
        before = len(a["members"])
        if ids is None:
            a["members"] = []
        else:
            drop = set(ids)
            a["members"] = [m for m in a["members"] if m not in drop]
        removed = before - len(a["members"])
        if removed:
            a["lastContactRemovedAt"] = self._now()
        self._effect("audience_contacts_removed", removed)
        return Response(status=204)

    # ------------------------------------------------------------------------------------------------------
    # temporary lists
    # ------------------------------------------------------------------------------------------------------
    def _templist_ids(self, ids: Any, message: str) -> list[str]:
        if ids is None:
            return []
        if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
            raise SimError(400, "INVALID_PARAMS", "contacts must be a list of externalContactIds")
        if any(i not in self.contacts for i in ids):
            raise SimError(400, "CONTACT_NOT_FOUND", message)
        return ids

    def h_templist_create(self, request, body):
        if not isinstance(body, dict) or not body.get("externalTemporaryListId") or not body.get("name"):
            raise SimError(400, "INVALID_PARAMS", "externalTemporaryListId and name are required")
        lid, name = body["externalTemporaryListId"], body["name"]
        if lid in self.templists:
            raise SimError(400, "ID_NOTUNIQUE", "Temporary list with specified externalTemporaryListId already exists")
        if any(t["name"] == name for t in self.templists.values()):
            raise SimError(400, "NAME_ALREADY_IN_USE", "Temporary list with specified name already exists")
        if len(self.templists) >= self.max_temporary_lists:
            raise SimError(400, "INVALID_STATE", "Too many temporary lists")
        ids = self._templist_ids(body.get("contacts"), "No templist created, one or more contacts could not be found")
        self.templists[lid] = {"externalTemporaryListId": lid, "name": name, "createdAt": self._now(), "type": "API",
                               "contacts": list(dict.fromkeys(ids))}
        self._effect("templists_created")
        return Response(status=204)

    def h_templist_list(self, request, body):
        return _json(200, [{"externalTemporaryListId": t["externalTemporaryListId"], "name": t["name"],
                            "createdAt": self._date(t["createdAt"]), "type": t["type"]}
                           for t in self.templists.values()])

    def h_templist_add(self, request, body, lid):
        t = self.templists.get(lid)
        if t is None:
            raise SimError(404, "RESOURCE_NOT_FOUND", "Templist not found")
        ids = self._templist_ids((body or {}).get("contacts") if isinstance(body, dict) else None,
                                 "One or more contacts could not be found")
        for i in ids:
            if i not in t["contacts"]:
                t["contacts"].append(i)
        return Response(status=204)

    def h_templist_delete(self, request, body, lid):
        if lid not in self.templists:
            raise SimError(404, "RESOURCE_NOT_FOUND", "Templist not found")
        del self.templists[lid]
        return Response(status=204)

    # ------------------------------------------------------------------------------------------------------
    # tags and scores (assumed wire format)
    # ------------------------------------------------------------------------------------------------------
    @staticmethod
    def _tag_names(body: Any) -> list[str]:
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list) or not tags:
            raise SimError(400, "INVALID_PARAMS", "tags must be a non-empty list")
        for t in tags:
            if not isinstance(t, str) or not t.strip() or len(t) > 64 or any(ch in t for ch in ",;"):
                raise SimError(400, "INVALID_PARAMS", "Tag name is invalid")
        return [t.strip() for t in tags]

    def h_tag_list(self, request, body):
        counts = Counter(t for tags in self.contact_tags.values() for t in tags)
        return _json(200, [{"name": t, "contactCount": counts.get(t, 0)} for t in self.all_tags])

    def h_tag_add(self, request, body, eid):
        self._get_contact(eid)
        tags = self._tag_names(body)
        score = body.get("score")
        if score is not None and (not isinstance(score, int) or isinstance(score, bool)):
            raise SimError(400, "INVALID_PARAMS", "score must be an integer")
        mine = self.contact_tags.setdefault(eid, {})
        for t in tags:
            if t not in self.all_tags:
                self.all_tags.append(t)
            if t not in mine:
                self._effect("tags_added")
                mine[t] = None
            if score is not None:
                mine[t] = score
        return Response(status=204)

    def h_tag_remove(self, request, body, eid):
        self._get_contact(eid)
        tags = self._tag_names(body)
        mine = self.contact_tags.setdefault(eid, {})
        for t in tags:
            if mine.pop(t, "absent") != "absent":
                self._effect("tags_removed")
        return Response(status=204)

    def h_score(self, request, body, eid):
        self._get_contact(eid)
        if not isinstance(body, dict) or not isinstance(body.get("tag"), str) or not body["tag"].strip():
            raise SimError(400, "INVALID_PARAMS", "tag is required")
        score = body.get("score")
        if not isinstance(score, int) or isinstance(score, bool):
            raise SimError(400, "INVALID_PARAMS", "score must be an integer")
        mode = str(body.get("mode") or "SET").upper()
        if mode not in ("SET", "INCREASE", "DECREASE"):
            raise SimError(400, "INVALID_PARAMS", "mode must be SET, INCREASE or DECREASE")
        tag = body["tag"].strip()
        mine = self.contact_tags.setdefault(eid, {})
        current = mine.get(tag) or 0
        if score == 0 and mode != "SET":  # [ASSUMED] a change by 0 changes nothing and answers the score (a read)
            return _json(200, {"tag": tag, "score": current})
        new = score if mode == "SET" else current + score if mode == "INCREASE" else current - score
        if tag not in self.all_tags:
            self.all_tags.append(tag)
        mine[tag] = new
        self._effect("score_changes")
        return _json(200, {"tag": tag, "score": new})


_EFFECTS = (
    "auth_failures", "contacts_created", "contacts_updated", "contacts_anonymized", "subscriptions",
    "automation_trigger_calls", "triggers", "runs_stopped", "campaign_triggers", "campaign_stops",
    "audiences_created", "audiences_updated", "audiences_deleted", "audience_contacts_added",
    "audience_contacts_removed", "templists_created", "tags_added", "tags_removed", "score_changes",
)

_ROUTES: list[tuple[str, str, list[str]]] = [
    ("/contact/properties/list", "properties", ["GET"]),
    ("/contact/search", "search", ["GET"]),
    ("/contact/updates/list", "updates", ["GET"]),
    ("/contact/bounces/list", "bounces", ["GET"]),
    ("/contact/list", "insert_contacts", ["POST"]),
    ("/contact/anonymize/<eid>", "anonymize", ["PUT"]),
    ("/contact", "insert_contact", ["POST"]),
    ("/contact/<eid>", "get_contact", ["GET"]),
    ("/contact/<eid>", "update_contact", ["PUT"]),
    ("/contact/<eid>/tag", "tag_add", ["POST"]),
    ("/contact/<eid>/tag", "tag_remove", ["DELETE"]),
    ("/contact/<eid>/score", "score", ["POST"]),
    ("/subscription/subscribe", "subscribe", ["POST"]),
    ("/automation/list", "automation_list", ["GET"]),
    ("/automation/trigger/<code>", "automation_trigger", ["POST"]),
    ("/automation/trigger/<code>/stop", "automation_stop_contact", ["POST"]),
    ("/automation/stop/<acid>", "automation_stop_run", ["POST"]),
    ("/campaign/list", "campaign_list", ["GET"]),
    ("/campaign/trigger/<tid>", "campaign_trigger", ["POST"]),
    ("/campaign/<cid>/stop", "campaign_stop", ["POST"]),
    ("/audience", "audience_list", ["GET"]),
    ("/audience", "audience_create", ["POST"]),
    ("/audience/<aid>", "audience_get", ["GET"]),
    ("/audience/<aid>", "audience_update", ["PUT"]),
    ("/audience/<aid>", "audience_delete", ["DELETE"]),
    ("/audience/<aid>/contact", "audience_members", ["GET"]),
    ("/audience/<aid>/contact", "audience_add", ["POST"]),
    ("/audience/<aid>/contact", "audience_remove", ["DELETE"]),
    ("/templist", "templist_list", ["GET"]),
    ("/templist", "templist_create", ["POST"]),
    ("/templist/<lid>", "templist_add", ["POST"]),
    ("/templist/<lid>", "templist_delete", ["DELETE"]),
    ("/tag/list", "tag_list", ["GET"]),
]


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------


_json = json_response


def _body(request: Request) -> Any:
    data = request.get_data()
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise SimError(400, "INVALID_PARAMS", "Malformed JSON body") from None


def _encrypted_id(external_id: str) -> str:
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
        if not isinstance(value, str) or _parse_iso(value) is None:
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
