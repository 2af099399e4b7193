"""A faithful in-memory simulator of the Spoki REST API v1 (plus the Start Automation webhook), as WSGI app.

What it models (``/work/shared/reference/piggy-spoki-api.md``, Part 2 and Part 3):

- ``X-Spoki-Api-Key`` on every ``/api/1/`` call; a missing or bad key gets 401 ``{"detail": ...}``.
- Django REST Framework conventions: paths end with ``/``; lists are pages ``{count, next, previous, results}``
  with an absolute ``next`` URL and a ``page`` parameter (``page_size`` optional); validation errors are
  400 ``{"field": ["msg"]}``; unknown ids are 404 ``{"detail": "Not found."}``; throttling is 429 with
  ``Retry-After`` and the DRF message.
- Contacts keyed by normalised phone (``contacts/sync/`` upserts), ``contactfield_set`` / ``tag_set`` /
  ``list_set``; custom fields (1=TEXT, 2=DATE, 3=DATETIME); tags (read only); lists with ``sync_contacts`` and
  ``remove_contacts`` (``phones`` / ``emails`` / ``ids``, and ``contacts`` as a TS client sends); automations with
  ``webhook_set[{uuid, link, secret, is_active}]`` and ``custom-fields-used``.
- ``POST /wh/ap/{uuid}/`` (no API key): needs the start step's ``secret`` and a ``phone``; upserts the contact,
  records the run, applies AddTag / RemoveTag / AddToList / RemoveFromList steps; 200 with an empty body.

Control endpoints (no auth): ``GET /__sim__/state``, ``POST /__sim__/reset``,
``POST /__sim__/throttle`` (``{"count": n, "retry_after": s}``: the next n API calls get 429).

Guesses ([G]/[S] in the reference): the status for a wrong secret (403) and for an inactive automation (400
``detail``), the marketing-consent field name ``status`` in contact responses, the response bodies of
``sync_contacts`` / ``remove_contacts`` and of ``custom-fields-used``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid as uuidlib
from collections import Counter
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from service.sandbox.spoki import demo
from service.sandbox.spoki.webhooks import SpokiWebhooks
from service.sandbox.spoki.webhooks import rules as webhook_rules

API = "/api/1"
RESERVED_CODES = {"FIRST_NAME", "LAST_NAME", "EMAIL", "PHONE", "ACCOUNT_NAME", "LANGUAGE"}
CONSENT_VALUES = ("Not Declared", "Subscribed", "Unsubscribed")
FIELD_TYPES = {1: "TEXT", 2: "DATE", 3: "DATETIME"}


class SpokiApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, headers or {}


def _detail(status: int, message: str) -> SpokiApiError:
    return SpokiApiError(status, {"detail": message})


def _fields(**errors: str | list[str]) -> SpokiApiError:
    return SpokiApiError(400, {k: v if isinstance(v, list) else [v] for k, v in errors.items()})


def _not_found() -> SpokiApiError:
    return _detail(404, "Not found.")


def normalize_phone(value: Any) -> str | None:
    """'+39 333 123-4567' / '393331234567' -> '+393331234567'; None when it is not a plausible number."""
    digits = re.sub(r"\D", "", str(value or ""))
    if str(value or "").strip().startswith("00"):
        digits = digits[2:]
    if not 6 <= len(digits) <= 15:
        return None
    return "+" + digits


class SpokiSimulator:
    """WSGI app. In-memory state under one lock; ``counters`` and ``runs`` record side effects."""

    def __init__(self, *, api_keys: tuple[str, ...] | list[str] = (demo.DEMO_API_KEY,), page_size: int = 20,
                 seed: bool = True, demo_data: Any = demo) -> None:
        self.api_keys = set(api_keys)
        #: the account's seed data (:mod:`.demo`, or :mod:`.demo_second` for the second sandbox account)
        self.demo_data = demo_data
        self.default_page_size = page_size
        self._seed = seed
        self.lock = threading.RLock()
        self.webhooks = SpokiWebhooks(self)
        self.reset()
        self.url_map = Map([
            *webhook_rules(API),
            Rule(f"{API}/contacts/", methods=["GET"], endpoint="contacts_list"),
            Rule(f"{API}/contacts/sync/", methods=["POST"], endpoint="contacts_sync"),
            Rule(f"{API}/contacts/<int:cid>/", methods=["GET", "PATCH", "DELETE"], endpoint="contact"),
            Rule(f"{API}/custom-fields/", methods=["GET", "POST"], endpoint="custom_fields"),
            Rule(f"{API}/tags/", methods=["GET"], endpoint="tags"),
            Rule(f"{API}/tags/<int:tid>/", methods=["GET"], endpoint="tag"),
            Rule(f"{API}/lists/", methods=["GET", "POST"], endpoint="lists"),
            Rule(f"{API}/lists/<int:lid>/", methods=["GET", "DELETE"], endpoint="list_one"),
            Rule(f"{API}/lists/<int:lid>/sync_contacts/", methods=["POST"], endpoint="list_sync"),
            Rule(f"{API}/lists/<int:lid>/remove_contacts/", methods=["POST"], endpoint="list_remove"),
            Rule(f"{API}/automations/", methods=["GET"], endpoint="automations"),
            Rule(f"{API}/automations/<int:aid>/", methods=["GET"], endpoint="automation"),
            Rule(f"{API}/automations/<int:aid>/custom-fields-used/", methods=["GET"], endpoint="fields_used"),
            Rule("/wh/ap/<wuuid>/", methods=["POST"], endpoint="start_automation"),
            Rule("/__sim__/state", methods=["GET"], endpoint="sim_state"),
            Rule("/__sim__/reset", methods=["POST"], endpoint="sim_reset"),
            Rule("/__sim__/throttle", methods=["POST"], endpoint="sim_throttle"),
        ], strict_slashes=False)

    # -- state ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.custom_fields: dict[int, dict[str, Any]] = {f["id"]: f for f in self.demo_data.custom_fields()}
            self.tags: dict[int, dict[str, Any]] = {t["id"]: t for t in self.demo_data.tags()}
            self.lists: dict[int, dict[str, Any]] = {x["id"]: x for x in self.demo_data.lists()}
            self.automations: dict[int, dict[str, Any]] = {a["id"]: a for a in self.demo_data.automations()}
            self.contacts: dict[int, dict[str, Any]] = {}
            if self._seed:
                self.contacts = {c["id"]: c for c in self.demo_data.contacts()}
            self._ids = {"contact": 2000, "list": 100, "field": 333000}
            self.counters: Counter[str] = Counter()
            self.runs: list[dict[str, Any]] = []
            self.throttle_count = 0
            self.throttle_retry_after = 1
            self.webhooks.reset()

    not_found = staticmethod(_not_found)

    @staticmethod
    def fields_error(errors: dict[str, list[str]]) -> SpokiApiError:
        return SpokiApiError(400, errors)

    def page(self, request: Request, items: list[Any]) -> Response:
        return self._page(request, items)

    def contact_json(self, c: dict[str, Any]) -> dict[str, Any]:
        return self._contact_json(c)

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"counters": dict(self.counters), "runs": copy.deepcopy(self.runs), "contacts": len(self.contacts)}

    def contact(self, cid: int) -> dict[str, Any] | None:
        """A deep copy of the stored contact (``custom`` by field id, ``tags`` and ``lists`` as id lists)."""
        with self.lock:
            c = self.contacts.get(cid)
            return copy.deepcopy(c) if c else None

    def _new_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    # -- WSGI -------------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            try:
                endpoint, args = self.url_map.bind_to_environ(environ).match()
            except NotFound:
                raise _not_found() from None
            except MethodNotAllowed:
                raise _detail(405, f'Method "{request.method}" not allowed.') from None
            if endpoint.startswith("sim_"):
                resp = getattr(self, endpoint)(request, **args)
            else:
                if endpoint != "start_automation":
                    self._authenticate(request)
                self._throttle()
                resp = self._handle(request, endpoint, args)
        except SpokiApiError as exc:
            resp = self._json(exc.body, exc.status)
            resp.headers.update(exc.headers)
        except HTTPException as exc:  # pragma: no cover
            return exc(environ, start_response)
        return resp(environ, start_response)

    def _handle(self, request: Request, endpoint: str, args: dict[str, Any]) -> Response:
        if endpoint.startswith("wh_"):
            with self.lock:
                body = self._obj_body(request) if request.method in ("POST", "PATCH") else {}
                data, status = getattr(self.webhooks, endpoint)(request, body, **args)
            if isinstance(data, Response):
                return data
            return Response(status=status) if data is None else self._json(data, status)
        handler = getattr(self, "h_" + endpoint)
        if request.method == "GET" or not self.webhooks.active():
            return handler(request, **args)
        with self.lock:  # what this call changes fires the webhooks (sent after it answered)
            before = self.webhooks.snapshot(self.contacts)
            resp = handler(request, **args)
            self.webhooks.after(before, self.contacts)
        return resp

    @staticmethod
    def _json(payload: Any, status: int = 200) -> Response:
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    def _authenticate(self, request: Request) -> None:
        key = request.headers.get("X-Spoki-Api-Key")
        if key not in self.api_keys:
            with self.lock:
                self.counters["auth_failures"] += 1
        if not key:
            raise _detail(401, "Authentication credentials were not provided.")
        if key not in self.api_keys:
            raise _detail(401, "Invalid API key.")

    def _throttle(self) -> None:
        with self.lock:
            if self.throttle_count <= 0:
                return
            self.throttle_count -= 1
            wait = self.throttle_retry_after
        raise SpokiApiError(429, {"detail": f"Request was throttled. Expected available in {wait} seconds."},
                            {"Retry-After": str(wait)})

    @staticmethod
    def _body(request: Request) -> Any:
        raw = request.get_data(as_text=True)
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise _detail(400, "JSON parse error - Expecting value.") from None

    def _obj_body(self, request: Request) -> dict[str, Any]:
        body = self._body(request)
        if not isinstance(body, dict):
            raise _fields(non_field_errors="Invalid data. Expected a dictionary.")
        return body

    def _page(self, request: Request, items: list[Any]) -> Response:
        try:
            page = int(request.args.get("page", 1))
            size = int(request.args.get("page_size", self.default_page_size))
        except ValueError:
            raise _not_found() from None  # DRF answers "Invalid page." with 404
        if page < 1 or size < 1:
            raise _detail(404, "Invalid page.")
        pages = max(1, -(-len(items) // size))
        if page > pages:
            raise _detail(404, "Invalid page.")

        def url(p: int) -> str:
            args = {k: v for k, v in request.args.items() if k != "page"}
            if p > 1:
                args["page"] = str(p)
            return request.base_url + ("?" + urlencode(args) if args else "")

        return self._json({
            "count": len(items),
            "next": url(page + 1) if page < pages else None,
            "previous": url(page - 1) if page > 1 else None,
            "results": items[(page - 1) * size: page * size],
        })

    # -- representations --------------------------------------------------------------------------------
    def _list_json(self, lst: dict[str, Any]) -> dict[str, Any]:
        count = sum(1 for c in self.contacts.values() if lst["id"] in c["lists"])
        return {**lst, "contacts_count": count}

    def _contact_json(self, c: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": c["id"], "phone": c["phone"], "first_name": c["first_name"], "last_name": c["last_name"],
            "email": c["email"], "language": c["language"], "has_invalid_phone": False,
            "created_datetime": c["created_datetime"], "chat_link": f"https://app.spoki.it/chats/{c['id']}/",
            "status": c["status"], "is_blocked": c["is_blocked"],
            "contactfield_set": [
                {"id": c["id"] * 1000 + fid, "field": fid,
                 "visual_code": f"%%{self.custom_fields[fid]['code']}%%" if fid in self.custom_fields else None,
                 "value": v, "value_datetime": v if self.custom_fields.get(fid, {}).get("field_type") == 3 else None}
                for fid, v in sorted(c["custom"].items())],
            "tag_set": [copy.deepcopy(self.tags[t]) for t in c["tags"] if t in self.tags],
            "list_set": [self._list_json(self.lists[x]) for x in c["lists"] if x in self.lists],
        }

    def _automation_json(self, request: Request, a: dict[str, Any]) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in a.items() if k not in ("steps", "fields_used")}
        for w in out["webhook_set"]:
            w["link"] = f"{request.host_url}wh/ap/{w['uuid']}/"
        return out

    # -- contact writes ---------------------------------------------------------------------------------
    def _custom_updates(self, custom: Any, key: str = "custom_fields") -> dict[int, str | None]:
        """Validate ``{CODE: value}`` and return field id -> normalised value (None clears)."""
        if custom is None:
            return {}
        if not isinstance(custom, dict):
            raise _fields(**{key: "Expected a dictionary of items."})
        by_code = {f["code"]: f for f in self.custom_fields.values()}
        out: dict[int, str | None] = {}
        errors: list[str] = []
        for code, value in custom.items():
            f = by_code.get(str(code).upper().strip("%"))
            if f is None:
                errors.append(f"Custom field with code {code} does not exist.")
                continue
            if value is None or value == "":
                out[f["id"]] = None
                continue
            s = str(value)
            try:
                if f["field_type"] == 2:
                    s = date.fromisoformat(s[:10]).isoformat() if len(s) <= 10 else date.fromisoformat(s).isoformat()
                elif f["field_type"] == 3:
                    s = datetime.fromisoformat(s.replace("Z", "+00:00")).isoformat()
            except ValueError:
                errors.append(f"Invalid {FIELD_TYPES[f['field_type']].lower()} for {f['code']}: {value}.")
                continue
            out[f["id"]] = s
        if errors:
            raise _fields(**{key: errors})
        return out

    def _validate_contact_fields(self, body: dict[str, Any], *, require_phone: bool) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        clean: dict[str, Any] = {}
        if "phone" in body or require_phone:
            if not body.get("phone"):
                errors["phone"] = ["This field is required."]
            else:
                phone = normalize_phone(body["phone"])
                if phone is None:
                    errors["phone"] = ["Enter a valid phone number."]
                clean["phone"] = phone
        for k in ("first_name", "last_name", "language"):
            if k in body:
                clean[k] = "" if body[k] is None else str(body[k])
        if "email" in body:
            email = body["email"]
            if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(email)):
                errors["email"] = ["Enter a valid email address."]
            clean["email"] = str(email).strip() if email else None
        if "status" in body:
            if body["status"] not in CONSENT_VALUES:
                errors["status"] = [f'"{body["status"]}" is not a valid choice.']
            clean["status"] = body["status"]
        if "is_blocked" in body:
            if not isinstance(body["is_blocked"], bool):
                errors["is_blocked"] = ["Must be a valid boolean."]
            clean["is_blocked"] = body["is_blocked"]
        if errors:
            raise SpokiApiError(400, errors)
        clean["custom"] = self._custom_updates(body.get("custom_fields"))
        return clean

    def _apply(self, c: dict[str, Any], clean: dict[str, Any]) -> None:
        for k, v in clean.items():
            if k == "custom":
                for fid, value in v.items():
                    if value is None:
                        c["custom"].pop(fid, None)
                    else:
                        c["custom"][fid] = value
            elif k == "is_blocked":
                c["is_blocked"] = v
                if v:
                    c["lists"] = []  # blocking removes the contact from every list (support doc)
            else:
                c[k] = v

    def _by_phone(self, phone: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts.values() if c["phone"] == phone), None)

    def _upsert(self, body: dict[str, Any]) -> dict[str, Any]:
        clean = self._validate_contact_fields(body, require_phone=True)
        c = self._by_phone(clean["phone"])
        if c is None:
            cid = self._new_id("contact")
            c = {"id": cid, "phone": clean["phone"], "first_name": "", "last_name": "", "email": None,
                 "language": "it", "status": "Not Declared", "is_blocked": False,
                 "created_datetime": datetime.now().replace(microsecond=0).isoformat() + "Z",
                 "custom": {}, "tags": [], "lists": []}
            self.contacts[cid] = c
            self.counters["contacts_created"] += 1
        else:
            self.counters["contacts_updated"] += 1
        self._apply(c, clean)
        return c

    # -- contacts ---------------------------------------------------------------------------------------
    def h_contacts_list(self, request: Request) -> Response:
        a = request.args
        with self.lock:
            items = sorted(self.contacts.values(), key=lambda c: c["id"])
            if a.get("phone"):
                want = re.sub(r"\D", "", a["phone"])
                items = [c for c in items if re.sub(r"\D", "", c["phone"]) == want]
            if a.get("email"):
                items = [c for c in items if (c["email"] or "").lower() == a["email"].strip().lower()]
            for k in ("first_name", "last_name", "language", "status"):
                if a.get(k):
                    items = [c for c in items if c[k] == a[k]]
            if a.get("tag"):
                items = [c for c in items if str(a["tag"]) in {str(t) for t in c["tags"]}]
            if a.get("is_blocked") in ("true", "false"):
                items = [c for c in items if c["is_blocked"] == (a["is_blocked"] == "true")]
            if a.get("search"):
                s = a["search"].lower()
                items = [c for c in items if any(s in str(c.get(k) or "").lower()
                                                 for k in ("phone", "email", "first_name", "last_name", "language"))]
            results = [self._contact_json(c) for c in items]
        return self._page(request, results)

    def h_contacts_sync(self, request: Request) -> Response:
        body = self._obj_body(request)
        with self.lock:
            c = self._upsert(body)
            return self._json(self._contact_json(c))

    def h_contact(self, request: Request, cid: int) -> Response:
        with self.lock:
            c = self.contacts.get(cid)
            if c is None:
                raise _not_found()
            if request.method == "DELETE":
                del self.contacts[cid]
                self.counters["contacts_deleted"] += 1
                return Response(status=204)
            if request.method == "PATCH":
                clean = self._validate_contact_fields(self._obj_body(request), require_phone=False)
                if "phone" in clean:
                    other = self._by_phone(clean["phone"])
                    if other is not None and other is not c:
                        raise _fields(phone="Contact with this phone already exists.")
                self._apply(c, clean)
                self.counters["contacts_updated"] += 1
            return self._json(self._contact_json(c))

    # -- custom fields, tags ----------------------------------------------------------------------------
    def h_custom_fields(self, request: Request) -> Response:
        with self.lock:
            if request.method == "POST":
                body = self._obj_body(request)
                errors: dict[str, list[str]] = {}
                code = str(body.get("code") or "")
                if not body.get("label"):
                    errors["label"] = ["This field is required."]
                if not code:
                    errors["code"] = ["This field is required."]
                elif not re.fullmatch(r"[A-Z][A-Z0-9_]*", code) or code in RESERVED_CODES:
                    errors["code"] = ["Enter a valid code (upper case, digits and underscores, not reserved)."]
                elif any(f["code"] == code for f in self.custom_fields.values()):
                    errors["code"] = ["custom field with this code already exists."]
                if body.get("field_type") not in FIELD_TYPES:
                    errors["field_type"] = [f'"{body.get("field_type")}" is not a valid choice.']
                if errors:
                    raise SpokiApiError(400, errors)
                f = {"id": self._new_id("field"), "label": str(body["label"]), "code": code,
                     "field_type": body["field_type"], "example": str(body.get("example") or "")}
                self.custom_fields[f["id"]] = f
                return self._json(f, 201)
            items = list(self.custom_fields.values())
            s = (request.args.get("search") or "").lower()
            if s:
                items = [f for f in items if s in f["label"].lower() or s in f["code"].lower()]
            return self._page(request, copy.deepcopy(items))

    def h_tags(self, request: Request) -> Response:
        with self.lock:
            return self._page(request, copy.deepcopy(sorted(self.tags.values(), key=lambda t: t["order"])))

    def h_tag(self, request: Request, tid: int) -> Response:
        with self.lock:
            if tid not in self.tags:
                raise _not_found()
            return self._json(copy.deepcopy(self.tags[tid]))

    # -- lists ------------------------------------------------------------------------------------------
    def h_lists(self, request: Request) -> Response:
        with self.lock:
            if request.method == "POST":
                body = self._obj_body(request)
                name = str(body.get("name") or "").strip()
                if not name:
                    raise _fields(name="This field is required.")
                lst = {"id": self._new_id("list"), "name": name, "color": body.get("color"),
                       "created_datetime": datetime.now().replace(microsecond=0).isoformat() + "Z"}
                self.lists[lst["id"]] = lst
                self.counters["lists_created"] += 1
                return self._json(self._list_json(lst), 201)
            items = sorted(self.lists.values(), key=lambda x: x["id"])
            s = (request.args.get("search") or "").lower()
            if s:
                items = [x for x in items if s in x["name"].lower()]
            return self._page(request, [self._list_json(x) for x in items])

    def h_list_one(self, request: Request, lid: int) -> Response:
        with self.lock:
            lst = self.lists.get(lid)
            if lst is None:
                raise _not_found()
            if request.method == "DELETE":
                del self.lists[lid]
                for c in self.contacts.values():
                    if lid in c["lists"]:
                        c["lists"].remove(lid)
                return Response(status=204)
            return self._json(self._list_json(lst))

    def h_list_sync(self, request: Request, lid: int) -> Response:
        body = self._obj_body(request)
        contacts = body.get("contacts")
        if not isinstance(contacts, list) or not contacts:
            raise _fields(contacts="This field is required.")
        if len(contacts) > 500:
            raise _fields(contacts="Ensure this field has no more than 500 elements.")
        with self.lock:
            if lid not in self.lists:
                raise _not_found()
            errors: list[Any] = []
            for item in contacts:
                try:
                    self._validate_contact_fields(item if isinstance(item, dict) else {}, require_phone=True)
                    errors.append({})
                except SpokiApiError as exc:
                    errors.append(exc.body)
            if any(errors):
                raise SpokiApiError(400, {"contacts": errors})
            added = 0
            for item in contacts:
                c = self._upsert(item)
                if lid not in c["lists"]:
                    c["lists"].append(lid)
                    added += 1
            self.counters["list_members_added"] += added
        return self._json({"count": len(contacts), "added": added})

    def h_list_remove(self, request: Request, lid: int) -> Response:
        body = self._obj_body(request)
        phones = {normalize_phone(p) for p in body.get("phones") or []}
        emails = {str(e).strip().lower() for e in body.get("emails") or []}
        ids = set()
        for x in body.get("ids") or []:
            try:
                ids.add(int(x))
            except (TypeError, ValueError):
                raise _fields(ids=f"Invalid contact id: {x}.") from None
        for item in body.get("contacts") or []:  # the TS client's shape
            if isinstance(item, dict) and item.get("phone"):
                phones.add(normalize_phone(item["phone"]))
            elif isinstance(item, (int, str)):
                phones.add(normalize_phone(item))
        if not (phones or emails or ids):
            raise _fields(non_field_errors="Provide phones, emails or ids.")
        with self.lock:
            if lid not in self.lists:
                raise _not_found()
            removed = 0
            for c in self.contacts.values():
                if lid in c["lists"] and (c["id"] in ids or c["phone"] in phones
                                          or (c["email"] or "").lower() in emails):
                    c["lists"].remove(lid)
                    removed += 1
            self.counters["list_members_removed"] += removed
        return self._json({"removed": removed})

    # -- automations ------------------------------------------------------------------------------------
    def h_automations(self, request: Request) -> Response:
        a = request.args
        with self.lock:
            items = sorted(self.automations.values(), key=lambda x: x["id"])
            if a.get("is_active") in ("true", "false"):
                items = [x for x in items if x["is_active"] == (a["is_active"] == "true")]
            if a.get("webhook_platform"):
                if a["webhook_platform"].lower() == "api":
                    items = [x for x in items if x["webhook_set"]]
                else:
                    items = []
            if a.get("search"):
                s = a["search"].lower()
                items = [x for x in items if s in x["name"].lower()]
            return self._page(request, [self._automation_json(request, x) for x in items])

    def h_automation(self, request: Request, aid: int) -> Response:
        with self.lock:
            x = self.automations.get(aid)
            if x is None:
                raise _not_found()
            return self._json(self._automation_json(request, x))

    def h_fields_used(self, request: Request, aid: int) -> Response:
        with self.lock:
            x = self.automations.get(aid)
            if x is None:
                raise _not_found()
            return self._json([copy.deepcopy(self.custom_fields[f]) for f in x["fields_used"]
                               if f in self.custom_fields])

    def h_start_automation(self, request: Request, wuuid: str) -> Response:
        body = self._obj_body(request)
        with self.lock:
            found = next(((a, w) for a in self.automations.values() for w in a["webhook_set"]
                          if w["uuid"] == wuuid), None)
            if found is None:
                raise _not_found()
            automation, webhook = found
            if not body.get("secret"):
                raise _fields(secret="This field is required.")
            if body["secret"] != webhook["secret"]:
                raise _detail(403, "Invalid secret.")  # [G]
            if not automation["is_active"] or not webhook["is_active"]:
                raise _detail(400, "The automation is not active.")  # [G]
            c = self._upsert(body)
            for step in automation["steps"]:
                kind = step.get("step_type")
                if kind == "AddTag":
                    c["tags"] += [t for t in step.get("tags", []) if t not in c["tags"]]
                elif kind == "RemoveTag":
                    c["tags"] = [t for t in c["tags"] if t not in step.get("tags", [])]
                elif kind == "AddToList":
                    c["lists"] += [x for x in step.get("lists", []) if x not in c["lists"]]
                elif kind == "RemoveFromList":
                    c["lists"] = [x for x in c["lists"] if x not in step.get("lists", [])]
            self.runs.append({"automation_id": automation["id"], "webhook_uuid": wuuid, "contact_id": c["id"],
                              "phone": c["phone"], "custom_fields": copy.deepcopy(body.get("custom_fields") or {}),
                              "payload": {k: v for k, v in body.items() if k != "secret"},
                              "api_key_sent": "X-Spoki-Api-Key" in request.headers,
                              "run_id": str(uuidlib.uuid4())})
            self.counters["automation_runs"] += 1
        return Response(status=200)

    # -- control ----------------------------------------------------------------------------------------
    def sim_state(self, request: Request) -> Response:
        return self._json(self.state())

    def sim_reset(self, request: Request) -> Response:
        self.reset()
        return self._json({"ok": True})

    def sim_throttle(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        self.throttle(int(body.get("count", 1)), int(body.get("retry_after", 1)))
        return self._json({"ok": True})

    def sim_webhooks(self, request: Request) -> Response:
        with self.lock:
            hooks = [self.webhooks._public(h) for h in self.webhooks.hooks.values()]
        return self._json({"webhooks": hooks, "sent": self.webhooks.sender.sent()})

    def sim_webhooks_redeliver(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        return self._json({"redelivered": self.webhooks.sender.redeliver(int(body.get("count", 1)))})

    def sim_webhooks_config(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if "retry_delays" in body:
            self.webhooks.sender.retry_delays = tuple(float(x) for x in body["retry_delays"])
        return self._json({"retry_delays": list(self.webhooks.sender.retry_delays)})

    def sim_message_inbound(self, request: Request) -> Response:
        """A WhatsApp message from ``phone`` arrives (``{"phone", "text"}``): fires ``message.inbound``."""
        body = request.get_json(silent=True) or {}
        data = {"uuid": str(uuidlib.uuid4()), "from_phone": normalize_phone(body.get("phone")) or "",
                "to_phone": self.demo_data.ACCOUNT_PHONE,
                "text": str(body.get("text") or ""), "payload": body.get("payload"),
                "sent_datetime": datetime.now().replace(microsecond=0).isoformat() + "Z"}
        with self.lock:
            fired = self.webhooks.fire("message.inbound", data)
        return self._json({"fired": fired})

    def throttle(self, count: int, retry_after: int = 1) -> None:
        """Answer the next ``count`` API calls with 429 and ``Retry-After: retry_after``."""
        with self.lock:
            self.throttle_count = count
            self.throttle_retry_after = retry_after


def create_app(**kwargs: Any) -> SpokiSimulator:
    """Build a simulator (see :class:`SpokiSimulator` for the keyword arguments)."""
    return SpokiSimulator(**kwargs)
