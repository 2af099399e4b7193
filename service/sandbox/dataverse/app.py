"""A simulator of the slice of the Dataverse Web API the service uses, as a WSGI app (serve it over HTTPS).

What it models (``/work/shared/reference/microsoft-identity-dataverse.md`` §4):

- ``GET /api/data/v9.2/{contacts|leads|accounts}(<guid>)?$select=a,b``: 200 with ``@odata.context``,
  ``@odata.etag``, the selected attributes and the primary key; an unknown attribute is a 400, a missing
  record a 404 (``"contact With Id = ... Does Not Exist"``, code ``0x80040217``).
- ``POST /api/data/v9.2/annotations``: a note with ``subject`` (at most 500 characters), ``notetext`` and one
  ``objectid_<table>@odata.bind`` (``/contacts(<guid>)``, ``/leads(...)``, ``/accounts(...)``); the
  ``annotationid`` may be chosen by the client, and an id that exists already is a 412
  (``0x80040237`` "A record with matching key values already exists."). 204 + ``OData-EntityId``, or 201 and the
  record with ``Prefer: return=representation``.
- Every error has Dataverse's body ``{"error": {"code": "0x...", "message": "..."}}``.
- Bearer tokens from the Entra ID simulator: signature, expiry and ``aud`` = this organisation's URL, else 401
  with ``WWW-Authenticate``; an app-only token's app must be an application user, a user token's user a
  system user of the organisation, else 403 ``0x80072560`` "The user is not a member of the organization.".
  A note records its author (``_createdby_value``): the signed-in user (on-behalf-of) or the application user.
- 429 + ``Retry-After``, 503, dropped connections: :class:`service.sandbox.faults.FaultInjector` wraps the app
  (``POST /__sim__/faults``), see :func:`service.sandbox.dataverse.build`.

Control endpoints: ``GET /__sim__/notes`` (``?regarding=<guid>``: the notes on one record, newest last),
``GET /__sim__/stats``, ``POST /__sim__/reset``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import jwt
from werkzeug.wrappers import Request, Response

from service.sandbox.dataverse import demo

API = "/api/data/v9.2"

#: entity set -> (logical name, primary key, readable attributes)
ENTITY_SETS: dict[str, tuple[str, str, frozenset[str]]] = {
    "contacts": ("contact", "contactid", frozenset({"contactid", "firstname", "lastname", "fullname",
                                                    "emailaddress1", "emailaddress2", "companyname"})),
    "leads": ("lead", "leadid", frozenset({"leadid", "firstname", "lastname", "fullname", "emailaddress1",
                                           "companyname", "subject"})),
    "accounts": ("account", "accountid", frozenset({"accountid", "name", "emailaddress1", "accountnumber"})),
}
_NOTE_FIELDS = {"annotationid", "subject", "notetext", "isdocument", "filename", "mimetype", "documentbody"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY_PATH = re.compile(r"^(\w+)\(([^()]*)\)$")
_BIND = re.compile(r"^/?(\w+)\(([^()]*)\)$")

ERROR_BODY = {"error": {"code": "0x80040216", "message": "An unexpected error occurred (simulated)."}}


class DataverseError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _not_found(logical: str, rid: str) -> DataverseError:
    return DataverseError(404, "0x80040217", f"{logical} With Id = {rid} Does Not Exist")


class DataverseSimulator:
    """WSGI app. ``verify_token(token) -> claims`` checks signatures (the Entra ID simulator's ``verify``)."""

    def __init__(self, verify_token, *, application_users: set[str] | None = None,
                 system_users: set[str] | None = None) -> None:
        from service.sandbox.entra import demo as entra_demo

        self.verify_token = verify_token
        self.application_users = set(application_users if application_users is not None
                                     else {entra_demo.API_CLIENT_ID})
        self.system_users = set(system_users if system_users is not None else {entra_demo.USER_OBJECT_ID})
        self.lock = threading.RLock()
        self.reset()

    # -- state ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.records = demo.records()
            self.annotations: dict[str, dict[str, Any]] = {}
            self.counters: Counter[str] = Counter()

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"counters": dict(self.counters), "notes": len(self.annotations)}

    def notes(self, regarding: str | None = None) -> list[dict[str, Any]]:
        """The stored notes (optionally those on one record), in creation order."""
        with self.lock:
            return [copy.deepcopy(n) for n in self.annotations.values()
                    if regarding is None or n["_objectid_value"] == regarding.lower()]

    # -- WSGI -------------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        path = request.path
        try:
            if path.startswith("/__sim__/"):
                resp = self._control(request, path[len("/__sim__/"):].rstrip("/"))
            elif path.startswith(API + "/"):
                principal = self._authenticate(request)
                resp = self._api(request, path[len(API) + 1:], principal)
            else:
                raise DataverseError(404, "0x80060888", "Resource not found for the segment "
                                     f"'{path.strip('/').split('/')[0]}'.")
        except DataverseError as exc:
            with self.lock:
                self.counters[f"status_{exc.status}"] += 1
            resp = self._json({"error": {"code": exc.code, "message": exc.message}}, exc.status)
            resp.headers.update(exc.headers)
        return resp(environ, start_response)

    @staticmethod
    def _json(payload: Any, status: int = 200) -> Response:
        resp = Response(json.dumps(payload), status=status, content_type="application/json; odata.metadata=minimal")
        resp.headers["OData-Version"] = "4.0"
        return resp

    def _authenticate(self, request: Request) -> dict[str, Any]:
        org = request.host_url.rstrip("/")
        challenge = {"WWW-Authenticate": f'Bearer authorization_uri="https://login.microsoftonline.com/common/'
                                         f'oauth2/authorize", resource_id="{org}/"'}
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise DataverseError(401, "0x80072560", "The access token is missing.", challenge)
        try:
            claims = self.verify_token(token.strip())
        except jwt.InvalidTokenError:
            raise DataverseError(401, "0x80072560", "The access token is invalid or expired.", challenge) from None
        if str(claims.get("aud", "")).rstrip("/") != org:
            raise DataverseError(401, "0x80072560", "The access token was issued for another resource.",
                                 challenge)
        if "scp" in claims:  # a user (on-behalf-of)
            if claims.get("oid") not in self.system_users:
                raise DataverseError(403, "0x80072560", "The user is not a member of the organization.")
            return {"kind": "user", "id": claims["oid"]}
        app_id = claims.get("appid") or claims.get("azp")
        if app_id not in self.application_users:
            raise DataverseError(403, "0x80072560", "The user is not a member of the organization.")
        return {"kind": "application", "id": app_id}

    def _api(self, request: Request, rest: str, principal: dict[str, Any]) -> Response:
        if rest == "annotations":
            if request.method != "POST":
                raise DataverseError(405, "0x8006088a", "The HTTP method is not allowed on this resource.")
            return self._create_note(request, principal)
        m = _KEY_PATH.match(rest)
        if m and m.group(1) in ENTITY_SETS:
            if request.method != "GET":
                raise DataverseError(405, "0x8006088a", "The HTTP method is not allowed on this resource.")
            return self._retrieve(request, m.group(1), m.group(2))
        raise DataverseError(404, "0x80060888", f"Resource not found for the segment '{rest.split('(')[0]}'.")

    def _retrieve(self, request: Request, entity_set: str, key: str) -> Response:
        logical, pk, readable = ENTITY_SETS[entity_set]
        with self.lock:
            self.counters[f"get_{logical}"] += 1
        if not _GUID.match(key):
            raise DataverseError(400, "0x80060888", f"Bad Request - Error in query syntax: '{key}' is not a "
                                 "valid Guid.")
        select = [s.strip() for s in (request.args.get("$select") or "").split(",") if s.strip()]
        for name in select:
            if name not in readable:
                raise DataverseError(400, "0x80060888", f"Could not find a property named '{name}' on type "
                                     f"'Microsoft.Dynamics.CRM.{logical}'.")
        with self.lock:
            record = copy.deepcopy(self.records[entity_set].get(key.lower()))
        if record is None:
            raise _not_found(logical, key)
        names = select or sorted(readable)
        org = request.host_url.rstrip("/")
        body: dict[str, Any] = {
            "@odata.context": f"{org}{API}/$metadata#{entity_set}({','.join(names)})/$entity",
            "@odata.etag": 'W/"%d"' % (abs(hash(key)) % 10_000_000),
        }
        for name in names:
            body[name] = record.get(name)
        body[pk] = record[pk]
        return self._json(body)

    def _create_note(self, request: Request, principal: dict[str, Any]) -> Response:
        try:
            data = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise DataverseError(400, "0x80060891", "The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise DataverseError(400, "0x80060891", "The request body must be a JSON object.")
        binds = {k: v for k, v in data.items() if k.endswith("@odata.bind")}
        for k in data:
            if k not in binds and k not in _NOTE_FIELDS:
                raise DataverseError(400, "0x80060888", f"The property '{k}' does not exist on type "
                                     "'Microsoft.Dynamics.CRM.annotation'. Make sure to only use property names "
                                     "that are defined by the type.")
        subject = data.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            raise DataverseError(400, "0x80044331", "A validation error occurred. The value of 'subject' on "
                                 "record of type 'annotation' is required.")
        if len(subject) > 500:
            raise DataverseError(400, "0x80044331", "A validation error occurred. The length of the 'subject' "
                                 "attribute of the 'annotation' entity exceeded the maximum allowed length of "
                                 "'500'.")
        if len(binds) != 1:
            raise DataverseError(400, "0x80040203", "A note must be related to exactly one record (objectid).")
        (bind_name, target), = binds.items()
        nav = bind_name[: -len("@odata.bind")]
        m = _BIND.match(str(target))
        if not nav.startswith("objectid_") or not m or m.group(1) not in ENTITY_SETS \
                or ENTITY_SETS[m.group(1)][0] != nav[len("objectid_"):]:
            raise DataverseError(400, "0x80060888", f"An undeclared property '{nav}' which only has property "
                                 "annotations in the payload but no property value was found in the payload.")
        entity_set, rid = m.group(1), m.group(2).lower()
        logical = ENTITY_SETS[entity_set][0]
        note_id = str(data.get("annotationid") or uuid.uuid4()).lower()
        if not _GUID.match(note_id):
            raise DataverseError(400, "0x80060891", f"Cannot convert the literal '{note_id}' to the expected type "
                                 "'Edm.Guid'.")
        with self.lock:
            self.counters["post_annotation"] += 1
            if rid not in self.records[entity_set]:
                raise _not_found(logical, rid)
            if note_id in self.annotations:
                raise DataverseError(412, "0x80040237", "A record with matching key values already exists.")
            note = {
                "annotationid": note_id, "subject": subject, "notetext": data.get("notetext"),
                "isdocument": False, "objecttypecode": logical, "_objectid_value": rid,
                "_createdby_value": principal["id"], "createdbytype": principal["kind"],
                "createdon": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            }
            self.annotations[note_id] = note
        org = request.host_url.rstrip("/")
        if "return=representation" in (request.headers.get("Prefer") or ""):
            resp = self._json({"@odata.context": f"{org}{API}/$metadata#annotations/$entity", **note}, 201)
        else:
            resp = Response(status=204)
            resp.headers["OData-Version"] = "4.0"
        resp.headers["OData-EntityId"] = f"{org}{API}/annotations({note_id})"
        return resp

    # -- control ----------------------------------------------------------------------------------------
    def _control(self, request: Request, sub: str) -> Response:
        if sub == "notes" and request.method == "GET":
            return self._json({"value": self.notes(request.args.get("regarding"))})
        if sub == "reset" and request.method == "POST":
            self.reset()
            return self._json({"reset": True})
        if sub == "state" and request.method == "GET":
            return self._json(self.state())
        raise DataverseError(404, "0x80060888", "No such control endpoint.")


__all__ = ["API", "ENTITY_SETS", "ERROR_BODY", "DataverseSimulator"]
