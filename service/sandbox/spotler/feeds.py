"""The Spotler simulator's event feeds, its clock and the control calls that make events happen.

Feeds (vendor description 2022, reference §5.1.7, §5.1.8, §5.6), served from the simulator's real state:

* ``GET /contact/updates/list?fromDate&toDate&pageSize[&after]``: contacts whose ``lastChanged`` lies in the
  window (every contact write through any call moves ``lastChanged``); 400 "Invalid fromDate or no fromDate
  given" (same for toDate), 400 when ``pageSize`` is missing.
* ``GET /contact/bounces/list?fromDate&toDate&pageSize[&after]``: ``ContactBounce {date, type, contact,
  encryptedActId}``.
* ``GET /mailing-interaction/{opened,clicked,bounced,sent}?[fromDate&toDate][&fromChangeDate&toChangeDate]
  [&trendReportIds][&after][&pageSize]``: ``{paging, interactions: [{id, externalContactId, encryptedMailingId,
  date, changeDate, trendReportId}]}`` (bounced items add ``bounceType``; sent items ``name``, ``subject``,
  ``onlineVersionLink``).
* ``GET /mailing?fromDate&toDate`` (bare array of Mailing) and ``GET /mailing/{encryptedMailingId}``.

Both list shapes (``{paging, <items>}`` as in the spec, or a bare array as observed on ``-1.1.0``) and both
timestamp forms (epoch milliseconds as observed live, or ISO 8601 as in the spec) are selectable: constructor
options ``list_shape`` / ``date_format``, ``POST /__sim__/options {"listShape", "dateFormat"}`` or the command
line (``--list-shape``, ``--date-format``). Items are ordered by their window timestamp, then id.

The clock: every timestamp the simulator writes comes from :meth:`FeedsMixin._now`, which can run ahead of or
behind the machine's clock, or stand still (``POST /__sim__/clock``), to imitate Spotler's own clock.

Control calls (not part of Spotler's API; never subject to faults or OAuth), JSON in and out:

* ``POST /__sim__/signup {email, firstName?, lastName?, permissions?}``: a form sign-up (new contact with the
  given permissions, by name or bit, default Newsletter; an existing address is updated).
* ``POST /__sim__/bounce {email|externalId, type: hard|soft, mailingId?}``
* ``POST /__sim__/open`` / ``POST /__sim__/click {email|externalId, mailingId?}``
* ``POST /__sim__/unsubscribe {email|externalId, permission?}``: that permission off, or without one the
  contact opts out of everything (every permission off, e-mail channel off).
* ``GET|POST /__sim__/clock {offsetSeconds?, advanceSeconds?, freeze?}``
* ``GET|POST /__sim__/options {listShape?, dateFormat?}``
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from service.sandbox.spotler.wire import json_response, parse_iso

LIST_SHAPES = ("paged", "array")
DATE_FORMATS = ("epoch_ms", "iso")
INTERACTION_KINDS = ("opened", "clicked", "bounced", "sent")
DAY_MS = 86_400_000

FEED_ROUTES: list[tuple[str, str, list[str]]] = [
    ("/contact/updates/list", "updates", ["GET"]),
    ("/contact/bounces/list", "bounces", ["GET"]),
    ("/mailing", "mailing_list", ["GET"]),
    ("/mailing/<mid>", "mailing_get", ["GET"]),
    ("/mailing-interaction/<kind>", "interactions", ["GET"]),
]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FeedsMixin:
    """Mixed into SpotlerSimulator (which provides ``lock``, ``contacts``, ``properties``, ``bounces``, ``_page``,
    ``_date``, ``_contact_out``, ``_write_contact``, ``_effect`` and ``SimError``)."""

    # -- clock --------------------------------------------------------------------------------------------
    def _init_clock(self) -> None:
        self.clock_offset_ms = 0
        self.frozen_ms: int | None = None

    def _now(self) -> int:
        """The simulator's clock (epoch ms): the machine's clock + offset, or the frozen instant."""
        if self.frozen_ms is not None:
            return self.frozen_ms
        return int(time.time() * 1000) + self.clock_offset_ms

    def set_clock(self, *, offset_seconds: float | None = None, advance_seconds: float | None = None,
                  freeze: bool | None = None) -> dict[str, Any]:
        with self.lock:
            if offset_seconds is not None:
                self.clock_offset_ms = int(offset_seconds * 1000)
                if self.frozen_ms is not None:
                    self.frozen_ms = int(time.time() * 1000) + self.clock_offset_ms
            if advance_seconds is not None:
                self.clock_offset_ms += int(advance_seconds * 1000)
                if self.frozen_ms is not None:
                    self.frozen_ms += int(advance_seconds * 1000)
            if freeze is True and self.frozen_ms is None:
                self.frozen_ms = self._now()
            elif freeze is False:
                self.frozen_ms = None
            return self.clock()

    def clock(self) -> dict[str, Any]:
        now = self._now()
        return {"now": dt.datetime.fromtimestamp(now / 1000, tz=dt.UTC).isoformat(timespec="milliseconds"),
                "nowMs": now, "offsetSeconds": self.clock_offset_ms / 1000, "frozen": self.frozen_ms is not None}

    # -- state --------------------------------------------------------------------------------------------
    def _reset_feeds(self, seed: dict[str, Any]) -> None:
        now = self._now()
        self.mailings: dict[str, dict] = {}
        for m in seed["mailings"]:
            self.mailings[m["encryptedId"]] = {**m, "scheduledStartDate": now - m["daysAgo"] * DAY_MS}
        self.interactions: list[dict] = []
        self._interaction_seq = 1000

    # -- events (the control calls; also callable in-process by tests) ------------------------------------
    def _find(self, body: dict[str, Any]) -> dict:
        eid, email = body.get("externalId"), body.get("email")
        if isinstance(eid, str) and eid in self.contacts:
            return self.contacts[eid]
        if isinstance(email, str) and email.strip():
            for c in sorted(self.contacts.values(), key=lambda x: (x["created"], x["externalId"])):
                if str(c["properties"].get("email", "")).lower() == email.strip().lower():
                    return c
        raise ControlError(404, "No such contact: give the email or externalId of an existing contact.")

    def _permission_bits(self, names: Any) -> list[int]:
        entries = self.properties["permissions"].get("entries", [])
        out = []
        for n in names:
            hit = next((e["bit"] for e in entries if str(e["bit"]) == str(n) or
                        e["description"].lower() == str(n).lower()), None)
            if hit is None:
                raise ControlError(400, f"Unknown permission {n!r}; the account has "
                                        f"{', '.join(e['description'] for e in entries)}.")
            out.append(hit)
        return out

    def _mailing_id(self, body: dict[str, Any]) -> str:
        mid = body.get("mailingId")
        if mid is None:
            return max(self.mailings.values(), key=lambda m: m["scheduledStartDate"])["encryptedId"]
        if mid not in self.mailings:
            raise ControlError(404, f"No such mailing {mid!r}; the account has {', '.join(self.mailings)}.")
        return mid

    def signup(self, email: str, *, first_name: str | None = None, last_name: str | None = None,
               permissions: list | None = None) -> dict[str, Any]:
        """A form sign-up: the subscribe call's semantics (dedupe by e-mail; new contacts get a generated id)."""
        with self.lock:
            bits = self._permission_bits(["Newsletter"] if permissions is None else permissions)
            props: dict[str, Any] = {"email": email, "permissions": [{"bit": b, "enabled": True} for b in bits]}
            if first_name:
                props["firstName"] = first_name
            if last_name:
                props["lastName"] = last_name
            try:
                existing = self._find({"email": email})
            except ControlError:
                existing = None
            eid = existing["externalId"] if existing else "sub-" + uuid.uuid4().hex[:16]
            try:
                outcome = self._write_contact(eid, {"properties": props}, purge=False, create=True)
            except self.SimError as exc:
                raise ControlError(exc.status, (exc.body or {}).get("message", "invalid")) from None
            self._effect("subscriptions")
            return {"externalId": eid, "created": outcome == "created"}

    def bounce(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            c = self._find(body)
            kind = str(body.get("type") or "hard").lower()
            if kind not in ("hard", "soft"):
                raise ControlError(400, "type must be hard or soft")
            mid = self._mailing_id(body)
            now = self._now()
            self.bounces.append({"externalId": c["externalId"], "date": now,
                                 "type": "HARDBOUNCE" if kind == "hard" else "SOFTBOUNCE", "encryptedActId": mid})
            self._interaction("bounced", c["externalId"], mid, now, bounceType=kind.upper())
            return {"externalId": c["externalId"], "mailingId": mid, "date": self._date(now)}

    def engage(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """An open or a click of a mailing by a contact."""
        with self.lock:
            c = self._find(body)
            mid = self._mailing_id(body)
            item = self._interaction(kind, c["externalId"], mid, self._now())
            return {"id": item["id"], "externalId": c["externalId"], "mailingId": mid}

    def unsubscribe(self, body: dict[str, Any]) -> dict[str, Any]:
        """One permission off, or (no permission given) an opt-out of everything."""
        with self.lock:
            c = self._find(body)
            stored = c["properties"].setdefault("permissions", {})
            if body.get("permission") not in (None, ""):
                for bit in self._permission_bits([body["permission"]]):
                    stored[str(bit)] = False
            else:
                for e in self.properties["permissions"].get("entries", []):
                    stored[str(e["bit"])] = False
                c["channels"] = {k: False for k in c["channels"]} or {"EMAIL": False}
                self.blocked.add(c["externalId"])
            c["lastChanged"] = self._now()
            self._effect("contacts_updated")
            return {"externalId": c["externalId"], "permissions": dict(stored),
                    "channels": dict(c["channels"])}

    def _interaction(self, kind: str, external_id: str, mailing_id: str, now: int, **extra: Any) -> dict:
        self._interaction_seq += 1
        item = {"id": self._interaction_seq, "kind": kind, "externalContactId": external_id,
                "encryptedMailingId": mailing_id, "date": now, "changeDate": now,
                "trendReportId": self.mailings[mailing_id]["trendReportId"], **extra}
        self.interactions.append(item)
        return item

    # -- feeds --------------------------------------------------------------------------------------------
    def _window(self, request: Request, lo_name: str, hi_name: str, *, required: bool) -> tuple[int, int] | None:
        raw_lo, raw_hi = request.args.get(lo_name), request.args.get(hi_name)
        if not required and raw_lo is None and raw_hi is None:
            return None
        lo, hi = parse_iso(raw_lo), parse_iso(raw_hi)
        if lo is None and (required or raw_lo is not None):
            raise self.SimError(400, "INVALID_PARAMS", f"Invalid {lo_name} or no {lo_name} given")
        if hi is None and (required or raw_hi is not None):
            raise self.SimError(400, "INVALID_PARAMS", f"Invalid {hi_name} or no {hi_name} given")
        return (int(lo.timestamp() * 1000) if lo else -(2 ** 62), int(hi.timestamp() * 1000) if hi else 2 ** 62)

    def h_updates(self, request, body):
        lo, hi = self._window(request, "fromDate", "toDate", required=True)
        items = [self._contact_out(c) for c in sorted(self.contacts.values(),
                                                       key=lambda x: (x["lastChanged"], x["externalId"]))
                 if lo <= c["lastChanged"] <= hi]
        return self._page(request, items, "contacts", shape=self.list_shape)

    def h_bounces(self, request, body):
        lo, hi = self._window(request, "fromDate", "toDate", required=True)
        items = []
        for b in sorted(self.bounces, key=lambda x: (x["date"], x["externalId"])):
            if lo <= b["date"] <= hi and b["externalId"] in self.contacts:
                items.append({"date": self._date(b["date"]), "type": b["type"], "encryptedActId": b["encryptedActId"],
                              "contact": self._contact_out(self.contacts[b["externalId"]])})
        return self._page(request, items, "bounces", shape=self.list_shape)

    def h_interactions(self, request, body, kind):
        if kind not in INTERACTION_KINDS:
            raise self.SimError(404, "RESOURCE_NOT_FOUND", "Resource not found")
        by_date = self._window(request, "fromDate", "toDate", required=False)
        by_change = self._window(request, "fromChangeDate", "toChangeDate", required=False)
        reports = request.args.get("trendReportIds")
        wanted = None
        if reports:
            try:
                wanted = {int(x) for x in reports.split(",") if x.strip()}
            except ValueError:
                raise self.SimError(400, "INVALID_PARAMS", "Invalid trendReportIds") from None
        items = []
        for i in sorted(self.interactions, key=lambda x: (x["changeDate"], x["id"])):
            if i["kind"] != kind:
                continue
            if by_date and not by_date[0] <= i["date"] <= by_date[1]:
                continue
            if by_change and not by_change[0] <= i["changeDate"] <= by_change[1]:
                continue
            if wanted is not None and i["trendReportId"] not in wanted:
                continue
            out = {"id": i["id"], "externalContactId": i["externalContactId"],
                   "encryptedMailingId": i["encryptedMailingId"], "date": self._date(i["date"]),
                   "changeDate": self._date(i["changeDate"]), "trendReportId": i["trendReportId"]}
            if kind == "bounced":
                out["bounceType"] = i.get("bounceType", "HARD")
            if kind == "sent":
                m = self.mailings[i["encryptedMailingId"]]
                out.update(name=m["name"], subject=m["subject"], onlineVersionLink=m["archiveLink"])
            items.append(out)
        return self._page(request, items, "interactions", required=False, shape=self.list_shape)

    def _mailing_out(self, m: dict) -> dict:
        return {"encryptedId": m["encryptedId"], "name": m["name"], "scheduledStartDate": self._date(
            m["scheduledStartDate"]), "type": m["type"], "archiveLink": m["archiveLink"], "sentCount": m["sentCount"]}

    def h_mailing_list(self, request, body):
        lo, hi = self._window(request, "fromDate", "toDate", required=True)
        return json_response(200, [self._mailing_out(m) for m in sorted(self.mailings.values(),
                                                                key=lambda x: x["scheduledStartDate"])
                           if lo <= m["scheduledStartDate"] <= hi])

    def h_mailing_get(self, request, body, mid):
        m = self.mailings.get(mid)
        if m is None:
            raise self.SimError(404, "MAILING_NOTFOUND", "Mailing not found")
        return json_response(200, {**self._mailing_out(m), "subject": m["subject"]})

    # -- control endpoints --------------------------------------------------------------------------------
    def _feed_control(self, request: Request) -> Response | None:
        """The answer for a ``/__sim__/...`` control call of this module, or None when the path is not ours."""
        _json = json_response
        name = request.path[len("/__sim__/"):].strip("/")
        body = request.get_json(silent=True) if request.method == "POST" else None
        if request.method == "POST" and not isinstance(body, dict):
            body = {}
        try:
            if name == "clock":
                if request.method == "GET":
                    with self.lock:
                        return _json(200, self.clock())
                freeze = body.get("freeze")
                if freeze is not None and not isinstance(freeze, bool):
                    raise ControlError(400, "freeze must be true or false")
                return _json(200, self.set_clock(offset_seconds=_number(body, "offsetSeconds"),
                                                 advance_seconds=_number(body, "advanceSeconds"), freeze=freeze))
            if name == "options":
                if request.method == "POST":
                    shape, fmt = body.get("listShape"), body.get("dateFormat")
                    if shape is not None and shape not in LIST_SHAPES:
                        raise ControlError(400, f"listShape must be one of {', '.join(LIST_SHAPES)}")
                    if fmt is not None and fmt not in DATE_FORMATS:
                        raise ControlError(400, f"dateFormat must be one of {', '.join(DATE_FORMATS)}")
                    with self.lock:
                        self.list_shape = shape or self.list_shape
                        self.date_format = fmt or self.date_format
                return _json(200, {"listShape": self.list_shape, "dateFormat": self.date_format})
            if request.method != "POST":
                return None
            if name == "signup":
                email = body.get("email")
                if not isinstance(email, str) or not email.strip():
                    raise ControlError(400, "email is required")
                perms = body.get("permissions")
                if perms is not None and not isinstance(perms, list):
                    raise ControlError(400, "permissions must be a list of permission names or bits")
                return _json(200, self.signup(email.strip(), first_name=body.get("firstName"),
                                              last_name=body.get("lastName"), permissions=perms))
            if name == "bounce":
                return _json(200, self.bounce(body))
            if name in ("open", "click"):
                return _json(200, self.engage("opened" if name == "open" else "clicked", body))
            if name == "unsubscribe":
                return _json(200, self.unsubscribe(body))
        except ControlError as exc:
            return _json(exc.status, {"message": exc.message})
        return None


def _number(body: dict, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ControlError(400, f"{key} must be a number of seconds")
    return float(value)

