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

This module is the app (state, dispatch, control calls, rendering); the resources are mixins in their own
modules: :mod:`.contacts`, :mod:`.automations` (and campaigns), :mod:`.audiences` (and temporary lists),
:mod:`.tags` (and scores), :mod:`.feeds` (event feeds, the clock); :mod:`.oauth` checks the signature.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from service.sandbox.faults import FaultConfig, FaultInjector
from service.sandbox.spotler import demo
from service.sandbox.spotler.audiences import AUDIENCE_ROUTES, AudiencesMixin
from service.sandbox.spotler.automations import AUTOMATION_ROUTES, AutomationsMixin
from service.sandbox.spotler.contacts import CONTACT_ROUTES, ContactsMixin, encrypted_id
from service.sandbox.spotler.feeds import DATE_FORMATS, FEED_ROUTES, LIST_SHAPES, FeedsMixin
from service.sandbox.spotler.oauth import verify_oauth
from service.sandbox.spotler.tags import TAG_ROUTES, TagsMixin
from service.sandbox.spotler.wire import SimError, json_response

__all__ = ["BASE_PATH", "SimError", "SpotlerSimulator"]

BASE_PATH = "/integrationservice"
ROUTES = CONTACT_ROUTES + AUTOMATION_ROUTES + AUDIENCE_ROUTES + TAG_ROUTES + FEED_ROUTES


class SpotlerSimulator(ContactsMixin, AutomationsMixin, AudiencesMixin, TagsMixin, FeedsMixin):
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
    * ``seed`` / ``demo_ids``: the account's initial state and its ids (default: the demo account of
      :mod:`.demo`; :mod:`.demo_second` has a second one).
    """

    SimError = SimError  # the feed handlers of FeedsMixin raise it (the other resources import it)

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
        seed: Callable[[], dict[str, Any]] = demo.seed,
        demo_ids: demo.DemoIds = demo.DEMO,
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
        self._seed = seed
        self.demo_ids = demo_ids
        self.lock = threading.RLock()
        self.url_map = Map([Rule(BASE_PATH + path, endpoint=endpoint, methods=methods)
                            for path, endpoint, methods in ROUTES], strict_slashes=False)
        self.faults = FaultInjector(self._wsgi, faults, stats_provider=self.stats,
                                    error_body={"errorType": "BACKEND_EXCEPTION", "message": "Simulated failure"})
        self.reset()

    # -- state ------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seeded demo account, the machine's clock and the configured list shape and date form;
        counters to zero."""
        s = self._seed()
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
                    "externalId": c["externalId"], "encryptedId": encrypted_id(c["externalId"]),
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

    # -- WSGI -------------------------------------------------------------------------------------------------
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
            return json_response(405, {"errorType": "INVALID_PARAMS", "message": "Method not allowed"})(
                environ, start_response)
        except NotFound:
            return json_response(404, {"errorType": "RESOURCE_NOT_FOUND", "message": "Resource not found"})(
                environ, start_response)
        except HTTPException as exc:  # pragma: no cover - redirects etc.
            return exc(environ, start_response)
        route_key = f"{request.method} {rule.rule[len(BASE_PATH):]}"
        with self.lock:
            self._requests[route_key] += 1
        failure = verify_oauth(request, self.consumer_key, self.consumer_secret, self.timestamp_skew)
        if failure:
            with self.lock:
                self._effect("auth_failures")
            return json_response(self.auth_failure_status, {"errorType": "NOT_AUTHORIZED", "message": failure})(
                environ, start_response)
        handler = getattr(self, "h_" + rule.endpoint)
        try:
            body = _body(request)
            with self.lock:
                response = handler(request, body, **args)
        except SimError as exc:
            response = json_response(exc.status, exc.body)
        return response(environ, start_response)

    def _control(self, request: Request) -> Response:
        if request.path == "/__sim__/reset" and request.method == "POST":
            self.reset()
            return json_response(200, {"reset": True})
        if request.path == "/__sim__/tier" and request.method == "POST":
            tier = (request.get_json(silent=True) or {}).get("tier")
            if tier not in ("basic", "automation", "ecommerce"):
                return json_response(400, {"message": "tier must be basic, automation or ecommerce"})
            self.tier = tier
            return json_response(200, {"tier": tier})
        if request.path == "/__sim__/state" and request.method == "GET":
            with self.lock:  # what the calls did, to count side effects by (tests, rehearsals)
                return json_response(200, {
                    "contacts": {eid: c["properties"].get("email") for eid, c in self.contacts.items()},
                    "runs": [{k: r[k] for k in ("automationContactId", "automationId", "externalContactId",
                                                "status")} for r in self.runs.values()],
                    "tags": {eid: dict(tags) for eid, tags in self.contact_tags.items() if tags},
                })
        if request.path == "/__sim__/demo" and request.method == "GET":
            d = self.demo_ids
            return json_response(200, {k: dict(getattr(d, k)) for k in (
                "automations", "automation_ids", "campaigns", "campaign_triggers", "audiences", "contacts", "emails",
                "permissions")})
        answer = self._feed_control(request)
        if answer is not None:
            return answer
        return json_response(404, {"message": "unknown control endpoint"})

    # -- rendering (shared by the resources) ------------------------------------------------------------------
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
            return json_response(200, page)
        paging: dict[str, Any] = {}
        if after + size < len(items):
            nxt = dict(request.args)
            nxt["after"] = str(after + size)
            paging = {"after": after + size,
                      "next": request.base_url + "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in nxt.items())}
        return json_response(200, {"paging": paging, key: page})


_EFFECTS = (
    "auth_failures", "contacts_created", "contacts_updated", "contacts_anonymized", "subscriptions",
    "automation_trigger_calls", "triggers", "runs_stopped", "campaign_triggers", "campaign_stops",
    "audiences_created", "audiences_updated", "audiences_deleted", "audience_contacts_added",
    "audience_contacts_removed", "templists_created", "tags_added", "tags_removed", "score_changes",
)


def _body(request: Request) -> Any:
    data = request.get_data()
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise SimError(400, "INVALID_PARAMS", "Malformed JSON body") from None
