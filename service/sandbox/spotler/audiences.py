"""The Spotler simulator's audiences (list, create, get, update, delete, members, add, remove; 403 on the basic
tier) and temporary lists."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from service.sandbox.spotler.wire import SimError, json_response

TIER_MESSAGE = "Only Automation or eCommerce products can use this call"

AUDIENCE_ROUTES: list[tuple[str, str, list[str]]] = [
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
]


class AudiencesMixin:
    """Mixed into :class:`~service.sandbox.spotler.app.SpotlerSimulator` (which provides ``lock``, the state,
    ``_now``, ``_effect``, ``_date``, ``_page`` and ``_contact_out``)."""

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
        return json_response(200, [self._audience_out(a) for a in self.audiences.values()])

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
        return json_response(200, self._audience_out(self.audiences[aid]))

    def h_audience_get(self, request, body, aid):
        self._tier_check()
        return json_response(200, self._audience_out(self._audience(aid)))

    def h_audience_update(self, request, body, aid):
        self._tier_check()
        a = self._audience(aid)
        if not isinstance(body, dict) or body.get("externalId") != aid:
            raise SimError(400, "INVALID_PARAMS", "Path id doesn't match audience id")
        a["name"] = self._check_audience_name(body.get("name"), exclude=aid)
        a["description"] = body.get("description")
        a["changeDate"] = self._now()
        self._effect("audiences_updated")
        return json_response(200, self._audience_out(a))

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
        return json_response(200, [{"externalTemporaryListId": t["externalTemporaryListId"], "name": t["name"],
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
