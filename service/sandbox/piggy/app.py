"""A faithful in-memory simulator of the Piggy (Leat) OAuth client API v3, as a plain WSGI app.

What it models (see ``/work/shared/reference/piggy-spoki-api.md``, Part 1 and Part 3):

- ``Authorization: Bearer <token>``: a personal access token, or a token issued by
  ``POST /oauth/token`` (client credentials; ``expires_in`` seconds on a controllable clock, no refresh grant).
- Success envelope ``{"data": ..., "meta": []}``; error body ``{"status_code", "code", "message", "errors"?}``
  with code 1003 (invalid input, HTTP 422), 55031 (contact not found, 404) and 60013 (model not found, 404).
- Contacts (find-one-by, find-or-create on lowercased email, get, create, update attributes with type checks,
  GDPR delete), contact attributes, custom attributes (``entity`` required), automations (list, runs: only
  active ``contact_updated`` automations can be run), subscription types and contact subscriptions.
- Bodies may be JSON or ``application/x-www-form-urlencoded`` with PHP-style keys (``attributes[firstname]=x``).
- Maintenance mode answers 503 everywhere.

Control endpoints (no auth): ``GET /__sim__/state`` (counters and recorded runs), ``POST /__sim__/reset``,
``POST /__sim__/tokens/expire`` (revoke every issued OAuth token), ``POST /__sim__/maintenance``
(``{"enabled": bool}``), ``POST /__sim__/clock/advance`` (``{"seconds": n}``).

Guesses (marked [G] in the reference) are the HTTP statuses of the codes, the 401 body and the refusal of
inactive automations.

Several contacts with one e-mail address: Piggy documents the e-mail as a contact's unique key, and the simulator
never creates a second one itself. A test can still seed one (:meth:`PiggySimulator.add_contact_sharing_email`,
an account with a legacy duplicate); a lookup by that address (``find-one-by``, ``find-or-create``) then answers
409, code 55032, with the matching uuids in ``errors.contact_uuid`` [G: Piggy's answer to that state is not
documented; the service must refuse to pick one either way].
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from service.sandbox.piggy import demo
from service.sandbox.piggy.webhooks import PiggyWebhooks
from service.sandbox.piggy.webhooks import rules as webhook_rules

PREFIX = "/api/v3/oauth/clients"

CODE_INVALID_INPUT = 1003
CODE_CONTACT_NOT_FOUND = 55031
CODE_MODEL_NOT_FOUND = 60013
CODE_SEVERAL_CONTACTS = 55032  # [G] see add_contact_sharing_email
CODE_UNAUTHENTICATED = 401  # [G] the real code is unknown
CODE_MAINTENANCE = 503  # [G]


class FakeClock:
    """A monotonic clock that tests move by hand (no sleeps)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class PiggyApiError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


def _invalid(errors: dict[str, Any]) -> PiggyApiError:
    return PiggyApiError(422, CODE_INVALID_INPUT, "Invalid input.", errors)


def _contact_not_found() -> PiggyApiError:
    return PiggyApiError(404, CODE_CONTACT_NOT_FOUND, "Contact not found.")


def _model_not_found() -> PiggyApiError:
    return PiggyApiError(404, CODE_MODEL_NOT_FOUND, "Model not found.")


def parse_php_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``attributes[firstname]=x&data[list][]=a`` -> ``{"attributes": {"firstname": "x"}, "data": {"list": ["a"]}}``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        m = re.match(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$", key)
        if not m:
            root[key] = value
            continue
        parts = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if last:
                    node.append(value)
                else:
                    node.append({})
                    node = node[-1]
                continue
            nxt = parts[i + 1] if not last else None
            if last:
                node[part] = value
            elif nxt == "":
                node = node.setdefault(part, [])
            else:
                node = node.setdefault(part, {})
    return _lists_from_numeric_dicts(root)


def _lists_from_numeric_dicts(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _lists_from_numeric_dicts(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
        return node
    if isinstance(node, list):
        return [_lists_from_numeric_dicts(v) for v in node]
    return node


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(attr: dict[str, Any], value: Any) -> Any:
    """Validate and normalise one attribute value like Piggy would; raises ValueError with a message."""
    t = attr["type"]
    if t == "number":
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError("must be a number") from None
        if f != int(f):
            raise ValueError("must be a whole number")
        return int(f)
    if t == "float":
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError("must be a number") from None
    if t == "boolean":
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise ValueError("must be true or false")
    if t in ("date", "birth_date"):
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    if t == "date_time":
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")).isoformat()
        except ValueError:
            raise ValueError("must be a date and time (ISO 8601)") from None
    if t == "email":
        s = str(value)
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", s):
            raise ValueError("must be a valid email address")
        return s.lower()
    allowed = [str(o.get("value")) for o in attr.get("options") or []]
    if t == "select":
        if str(value) not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}")
        return str(value)
    if t == "multi_select":
        items = value if isinstance(value, list) else [value]
        bad = [str(v) for v in items if str(v) not in allowed]
        if bad:
            raise ValueError(f"contains unknown options: {', '.join(bad)}")
        return [str(v) for v in items]
    if isinstance(value, (dict, list)):
        raise ValueError("must be text")
    return str(value)


class PiggySimulator:
    """WSGI app. All state is in memory and guarded by one lock; counters record side effects."""

    def __init__(
        self,
        *,
        tokens: tuple[str, ...] | list[str] = (demo.DEMO_TOKEN,),
        clients: dict[str, str] | None = None,
        token_ttl: int = 3600,
        clock: Callable[[], float] | None = None,
        seed: bool = True,
        demo_data: Any = demo,
    ) -> None:
        self.personal_tokens = set(tokens)
        #: the account's seed data (:mod:`.demo`, or :mod:`.demo_second` for the second sandbox account)
        self.demo_data = demo_data
        self.clients = dict(clients if clients is not None else {demo.DEMO_CLIENT_ID: demo.DEMO_CLIENT_SECRET})
        self.token_ttl = token_ttl
        self.clock = clock or time.monotonic
        self._seed = seed
        self.lock = threading.RLock()
        self.webhooks = PiggyWebhooks(self)
        self.reset()
        self.url_map = Map([
            *webhook_rules(PREFIX),
            Rule("/oauth/token", methods=["POST"], endpoint="token"),
            Rule("/api/v2/oauth/clients", methods=["GET"], endpoint="ping"),
            Rule(f"{PREFIX}/contacts", methods=["GET"], endpoint="contacts_list"),
            Rule(f"{PREFIX}/contacts", methods=["POST"], endpoint="contact_create"),
            Rule(f"{PREFIX}/contacts/find-one-by", methods=["GET"], endpoint="contact_find_one"),
            Rule(f"{PREFIX}/contacts/find-or-create", methods=["GET"], endpoint="contact_find_or_create"),
            Rule(f"{PREFIX}/contacts/<cuuid>", methods=["GET"], endpoint="contact_get"),
            Rule(f"{PREFIX}/contacts/<cuuid>", methods=["PUT"], endpoint="contact_update"),
            Rule(f"{PREFIX}/contacts/<cuuid>/delete", methods=["POST"], endpoint="contact_delete"),
            Rule(f"{PREFIX}/contact-attributes", methods=["GET"], endpoint="contact_attributes"),
            Rule(f"{PREFIX}/custom-attributes", methods=["GET"], endpoint="custom_attributes"),
            Rule(f"{PREFIX}/automations", methods=["GET"], endpoint="automations"),
            Rule(f"{PREFIX}/automations/runs", methods=["POST"], endpoint="automation_run"),
            Rule(f"{PREFIX}/subscription-types", methods=["GET"], endpoint="subscription_types"),
            Rule(f"{PREFIX}/contact-subscriptions/<cuuid>", methods=["GET"], endpoint="contact_subscriptions"),
            Rule(f"{PREFIX}/contact-subscriptions/<cuuid>/<action>", methods=["PUT"], endpoint="subscribe"),
            Rule("/__sim__/state", methods=["GET"], endpoint="sim_state"),
            Rule("/__sim__/reset", methods=["POST"], endpoint="sim_reset"),
            Rule("/__sim__/tokens/expire", methods=["POST"], endpoint="sim_expire"),
            Rule("/__sim__/maintenance", methods=["POST"], endpoint="sim_maintenance"),
            Rule("/__sim__/clock/advance", methods=["POST"], endpoint="sim_clock"),
        ])

    # -- state ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.attributes: list[dict[str, Any]] = self.demo_data.attributes()
            self.automations: list[dict[str, Any]] = self.demo_data.automations()
            self.subscription_types: list[dict[str, Any]] = self.demo_data.subscription_types()
            self.contacts: dict[str, dict[str, Any]] = {}
            if self._seed:
                for c in self.demo_data.contacts():
                    self.contacts[c["uuid"]] = copy.deepcopy(c)
            self._next_id = 1000
            self.issued_tokens: dict[str, float] = {}
            self.maintenance = False
            self.counters: Counter[str] = Counter()
            self.runs: list[dict[str, Any]] = []
            self.webhooks.reset()

    invalid = staticmethod(_invalid)
    api_error = PiggyApiError

    def expire_tokens(self) -> None:
        """Revoke every token issued through client credentials (personal tokens stay valid)."""
        with self.lock:
            self.issued_tokens.clear()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"counters": dict(self.counters), "runs": copy.deepcopy(self.runs),
                    "contacts": len(self.contacts)}

    def contact_by_email(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            email = email.strip().lower()
            return next((copy.deepcopy(c) for c in self.contacts.values() if c["email"] == email), None)

    def add_contact_sharing_email(self, email: str) -> dict[str, Any]:
        """Seed a second (third, ...) contact with an e-mail address another contact has (module doc)."""
        with self.lock:
            return copy.deepcopy(self._create(email.strip().lower()))

    def get_contact(self, cuuid: str) -> dict[str, Any] | None:
        with self.lock:
            c = self.contacts.get(cuuid)
            return copy.deepcopy(c) if c else None

    # -- WSGI -------------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
        except NotFound:
            resp = self._error(PiggyApiError(404, 404, "Not found."))
            return resp(environ, start_response)
        except MethodNotAllowed:
            resp = self._error(PiggyApiError(405, 405, "Method not allowed."))
            return resp(environ, start_response)
        except HTTPException as exc:  # pragma: no cover - e.g. redirects for trailing slashes
            return exc(environ, start_response)
        try:
            if endpoint.startswith("sim_"):
                resp = getattr(self, endpoint)(request, **args)
            else:
                with self.lock:
                    if self.maintenance:
                        raise PiggyApiError(503, CODE_MAINTENANCE, "Service Unavailable: maintenance mode.")
                if endpoint != "token":
                    self._authenticate(request)
                resp = self._handle(request, endpoint, args)
        except PiggyApiError as exc:
            resp = self._error(exc)
        return resp(environ, start_response)

    def _handle(self, request: Request, endpoint: str, args: dict[str, Any]) -> Response:
        if endpoint.startswith("wh_"):
            with self.lock:
                body = self._body(request) if request.method in ("POST", "PUT") else {}
                data, status = getattr(self.webhooks, endpoint)(request, body, **args)
            return self._ok(data, status=status)
        handler = getattr(self, "h_" + endpoint)
        if not self.webhooks.active():
            return handler(request, **args)
        with self.lock:  # what this call changes (a GET find-or-create too) fires the webhooks, sent after it
            before = self.webhooks.snapshot(self.contacts)
            resp = handler(request, **args)
            self.webhooks.after(before, self.contacts)
        return resp

    @staticmethod
    def _json(payload: Any, status: int = 200) -> Response:
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    def _ok(self, data: Any, meta: Any = None, status: int = 200) -> Response:
        return self._json({"data": data, "meta": [] if meta is None else meta}, status)

    def _error(self, exc: PiggyApiError) -> Response:
        body: dict[str, Any] = {"status_code": exc.status, "code": exc.code, "message": exc.message}
        if exc.errors:
            body["errors"] = exc.errors
        return self._json(body, exc.status)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with self.lock:
            if token and token in self.personal_tokens:
                return
            expiry = self.issued_tokens.get(token) if token else None
            if expiry is not None and expiry > self.clock():
                return
            if expiry is not None:
                del self.issued_tokens[token]
            self.counters["auth_failures"] += 1
        raise PiggyApiError(401, CODE_UNAUTHENTICATED, "Unauthenticated.")

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        if request.mimetype == "application/json":
            try:
                data = json.loads(request.get_data(as_text=True) or "{}")
            except ValueError:
                raise _invalid({"body": ["The body is not valid JSON."]}) from None
            if not isinstance(data, dict):
                raise _invalid({"body": ["The body must be an object."]})
            return data
        pairs = parse_qsl(request.get_data(as_text=True), keep_blank_values=True)
        return parse_php_form(pairs)

    # -- auth -------------------------------------------------------------------------------------------
    def h_token(self, request: Request) -> Response:
        body = self._body(request)
        missing = {k: [f"The {k} field is required."] for k in ("grant_type", "client_id", "client_secret")
                   if not body.get(k)}
        if missing:
            raise _invalid(missing)
        if body["grant_type"] != "client_credentials":
            raise PiggyApiError(400, CODE_INVALID_INPUT, "Unsupported grant type.",
                                {"grant_type": ["Only client_credentials is supported."]})
        with self.lock:
            if self.clients.get(str(body["client_id"])) != str(body["client_secret"]):
                raise PiggyApiError(401, CODE_UNAUTHENTICATED, "Client authentication failed.")
            token = "sim-" + secrets.token_urlsafe(32)
            self.issued_tokens[token] = self.clock() + self.token_ttl
            self.counters["tokens_issued"] += 1
        # the real endpoint answers without the {data, meta} envelope (SDK AuthenticationResponse)
        return self._json({"token_type": "Bearer", "expires_in": self.token_ttl, "access_token": token})

    def h_ping(self, request: Request) -> Response:
        return self._ok({"name": "Piggy simulator", "active": True})

    # -- contacts ---------------------------------------------------------------------------------------
    def _contact_json(self, c: dict[str, Any]) -> dict[str, Any]:
        by_name = {a["name"]: a for a in self.attributes}
        subs_by_uuid = {s["uuid"]: s for s in self.subscription_types}
        return {
            "id": c["id"], "uuid": c["uuid"], "email": c["email"],
            "attributes": [{"value": v, "attribute": copy.deepcopy(by_name[n])}
                           for n, v in c["current_values"].items() if n in by_name],
            "current_values": copy.deepcopy(c["current_values"]),
            "tier": None,
            "subscriptions": [{"is_subscribed": bool(on), "status": "SUBSCRIBED" if on else "UNSUBSCRIBED",
                               "subscription_type": copy.deepcopy(subs_by_uuid[su])}
                              for su, on in c["subscriptions"].items() if su in subs_by_uuid],
            "prepaid_balance": {"balance_in_cents": 0},
            "credit_balance": {"balance": 0},
        }

    def _contact(self, cuuid: str) -> dict[str, Any]:
        c = self.contacts.get(cuuid)
        if c is None:
            raise _contact_not_found()
        return c

    @staticmethod
    def _email_arg(value: Any) -> str:
        email = str(value or "").strip()
        if not email:
            raise _invalid({"email": ["The email field is required."]})
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise _invalid({"email": ["The email must be a valid email address."]})
        return email.lower()

    def _create(self, email: str) -> dict[str, Any]:
        self._next_id += 1
        c = {"id": self._next_id, "uuid": str(uuidlib.uuid4()), "email": email,
             "current_values": {"email": email},
             "subscriptions": {s["uuid"]: s["strategy"] == "OPT_OUT" for s in self.subscription_types}}
        self.contacts[c["uuid"]] = c
        self.counters["contacts_created"] += 1
        return c

    def _find(self, email: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts.values() if c["email"] == email), None)

    def _find_one(self, email: str) -> dict[str, Any] | None:
        """The contact with this e-mail address for a lookup; 409 when the account holds several (module doc)."""
        found = sorted((c for c in self.contacts.values() if c["email"] == email), key=lambda c: c["id"])
        if len(found) > 1:
            raise PiggyApiError(409, CODE_SEVERAL_CONTACTS, "Several contacts have this email.",
                                {"contact_uuid": [c["uuid"] for c in found]})
        return found[0] if found else None

    def h_contacts_list(self, request: Request) -> Response:
        try:
            page = max(1, int(request.args.get("page", 1)))
            limit = min(100, max(1, int(request.args.get("limit", 30))))
        except ValueError:
            raise _invalid({"page": ["The page and limit must be integers."]}) from None
        with self.lock:
            items = sorted(self.contacts.values(), key=lambda c: c["id"])
            chunk = items[(page - 1) * limit: page * limit]
            data = [self._contact_json(c) for c in chunk]
            total = len(items)
        return self._ok(data, {"total": total, "page": page, "limit": limit})

    def h_contact_find_one(self, request: Request) -> Response:
        email = self._email_arg(request.args.get("email"))
        with self.lock:
            c = self._find_one(email)
            if c is None:
                raise _contact_not_found()
            return self._ok(self._contact_json(c))

    def h_contact_find_or_create(self, request: Request) -> Response:
        email = self._email_arg(request.args.get("email"))
        with self.lock:
            c = self._find_one(email) or self._create(email)
            return self._ok(self._contact_json(c))

    def h_contact_create(self, request: Request) -> Response:
        email = self._email_arg(self._body(request).get("email"))
        with self.lock:
            if self._find(email) is not None:
                raise _invalid({"email": ["The email has already been taken."]})
            return self._ok(self._contact_json(self._create(email)))

    def h_contact_get(self, request: Request, cuuid: str) -> Response:
        with self.lock:
            return self._ok(self._contact_json(self._contact(cuuid)))

    def h_contact_update(self, request: Request, cuuid: str) -> Response:
        body = self._body(request)
        attrs = body.get("attributes")
        if attrs is None:
            attrs = {}
        if not isinstance(attrs, dict):
            raise _invalid({"attributes": ["The attributes must be an object of name: value."]})
        with self.lock:
            c = self._contact(cuuid)
            by_name = {a["name"]: a for a in self.attributes}
            errors: dict[str, list[str]] = {}
            new_values: dict[str, Any] = {}
            for name, value in attrs.items():
                attr = by_name.get(name)
                key = f"attributes.{name}"
                if attr is None:
                    errors[key] = [f"The attribute {name} does not exist."]
                elif attr["is_hard_read_only"]:
                    errors[key] = [f"The attribute {name} is read-only."]
                elif value is None or value == "" or value == []:
                    new_values[name] = None
                else:
                    try:
                        new_values[name] = _coerce(attr, value)
                    except ValueError as exc:
                        errors[key] = [f"The {name} {exc}."]
            if errors:
                raise _invalid(errors)
            for name, value in new_values.items():
                if value is None:
                    c["current_values"].pop(name, None)
                else:
                    c["current_values"][name] = value
            self.counters["contact_updates"] += 1
            return self._ok(self._contact_json(c))

    def h_contact_delete(self, request: Request, cuuid: str) -> Response:
        body = self._body(request)
        if not body.get("type"):
            raise _invalid({"type": ["The type field is required."]})
        with self.lock:
            self._contact(cuuid)
            del self.contacts[cuuid]
            self.counters["contacts_deleted"] += 1
        return self._ok(None)

    # -- attributes -------------------------------------------------------------------------------------
    def h_contact_attributes(self, request: Request) -> Response:
        with self.lock:
            return self._ok(copy.deepcopy(self.attributes))

    def h_custom_attributes(self, request: Request) -> Response:
        entity = request.args.get("entity")
        if not entity:
            raise _invalid({"entity": ["The entity field is required."]})
        with self.lock:
            items = []
            if entity == "contact":
                for i, a in enumerate(self.attributes, start=1):
                    item = copy.deepcopy(a)
                    item.update({"id": i, "entity": "contact", "group_name": None, "group": None,
                                 "has_unique_value": a["type"] == "identifier", "position": i,
                                 "created_at": "2022-01-01T00:00:00+00:00", "meta": None,
                                 "can_be_deleted": not a["is_piggy_defined"], "last_used_date": None,
                                 "created_by_user": not a["is_piggy_defined"],
                                 "options": [{"value": o.get("value"), "label": o.get("label"), "description": None,
                                              "media": None} for o in a["options"]]})
                    items.append(item)
        return self._ok(items)

    # -- automations ------------------------------------------------------------------------------------
    def h_automations(self, request: Request) -> Response:
        with self.lock:
            return self._ok(copy.deepcopy(self.automations))

    def h_automation_run(self, request: Request) -> Response:
        body = self._body(request)
        missing = {k: [f"The {k} field is required."] for k in ("contact_uuid", "automation_uuid") if not body.get(k)}
        if missing:
            raise _invalid(missing)
        data = body.get("data")
        if data is not None and not isinstance(data, (dict, list)):
            raise _invalid({"data": ["The data must be an array."]})
        with self.lock:
            automation = next((a for a in self.automations if a["uuid"] == body["automation_uuid"]), None)
            if automation is None:
                raise _model_not_found()
            contact = self._contact(str(body["contact_uuid"]))
            if automation["event"] != "contact_updated":
                raise _invalid({"automation_uuid": [
                    "Only an automation with the contact_updated event can be used to create a run."]})
            if automation["status"] != "active":  # [G] the reference does not say what happens
                raise _invalid({"automation_uuid": ["The automation is not active."]})
            self.runs.append({"automation_uuid": automation["uuid"], "contact_uuid": contact["uuid"],
                              "data": copy.deepcopy(data) if data is not None else None})
            self.counters["automation_runs"] += 1
        return self._ok([])

    # -- subscriptions ----------------------------------------------------------------------------------
    def h_subscription_types(self, request: Request) -> Response:
        with self.lock:
            return self._ok(copy.deepcopy(self.subscription_types))

    def h_contact_subscriptions(self, request: Request, cuuid: str) -> Response:
        with self.lock:
            return self._ok(self._contact_json(self._contact(cuuid))["subscriptions"])

    def h_subscribe(self, request: Request, cuuid: str, action: str) -> Response:
        if action not in ("subscribe", "unsubscribe"):
            raise PiggyApiError(404, 404, "Not found.")
        body = self._body(request)
        st = body.get("subscription_type_uuid")
        if not st:
            raise _invalid({"subscription_type_uuid": ["The subscription type uuid field is required."]})
        with self.lock:
            c = self._contact(cuuid)
            if not any(s["uuid"] == st for s in self.subscription_types):
                raise _model_not_found()
            c["subscriptions"][st] = action == "subscribe"
            self.counters["subscription_changes"] += 1
            return self._ok(self._contact_json(c)["subscriptions"])

    # -- control ----------------------------------------------------------------------------------------
    def sim_state(self, request: Request) -> Response:
        return self._json(self.state())

    def sim_reset(self, request: Request) -> Response:
        self.reset()
        return self._json({"ok": True})

    def sim_expire(self, request: Request) -> Response:
        self.expire_tokens()
        return self._json({"ok": True})

    def sim_maintenance(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        with self.lock:
            self.maintenance = bool(body.get("enabled", True))
        return self._json({"maintenance": self.maintenance})

    def sim_webhooks(self, request: Request) -> Response:
        with self.lock:
            subs = [{k: v for k, v in x.items() if k != "secret"} for x in self.webhooks.subs.values()]
        return self._json({"subscriptions": subs, "sent": self.webhooks.sender.sent()})

    def sim_webhooks_redeliver(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        return self._json({"redelivered": self.webhooks.sender.redeliver(int(body.get("count", 1)))})

    def sim_webhooks_config(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if "retry_delays" in body:
            self.webhooks.sender.retry_delays = tuple(float(x) for x in body["retry_delays"])
        if "account_secret" in body:
            self.webhooks.account_secret = str(body["account_secret"])
        return self._json({"retry_delays": list(self.webhooks.sender.retry_delays)})

    def sim_clock(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if not isinstance(self.clock, FakeClock):
            return self._json({"detail": "The simulator runs on the real clock."}, 409)
        self.clock.advance(float(body.get("seconds", 0)))
        return self._json({"now": self.clock()})


def create_app(**kwargs: Any) -> PiggySimulator:
    """Build a simulator (see :class:`PiggySimulator` for the keyword arguments)."""
    return PiggySimulator(**kwargs)
