"""The Spotler simulator's automations (list, trigger with automation fields, stop a run or a contact's runs)
and campaigns (list, trigger, stop)."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from werkzeug.wrappers import Response

from service.sandbox.spotler.wire import SimError, json_response

_FIELD_TYPES = {"STRING", "URL", "PRODUCTLIST"}

AUTOMATION_ROUTES: list[tuple[str, str, list[str]]] = [
    ("/automation/list", "automation_list", ["GET"]),
    ("/automation/trigger/<code>", "automation_trigger", ["POST"]),
    ("/automation/trigger/<code>/stop", "automation_stop_contact", ["POST"]),
    ("/automation/stop/<acid>", "automation_stop_run", ["POST"]),
    ("/campaign/list", "campaign_list", ["GET"]),
    ("/campaign/trigger/<tid>", "campaign_trigger", ["POST"]),
    ("/campaign/<cid>/stop", "campaign_stop", ["POST"]),
]


class AutomationsMixin:
    """Mixed into :class:`~service.sandbox.spotler.app.SpotlerSimulator` (which provides ``lock``, the state,
    ``_now``, ``_effect``, ``_date``, ``_page`` and ``_contact_out``)."""

    def _automations_for(self, code: str) -> list[dict]:
        return [a for a in self.automations.values() if a["triggerCode"] == code]

    def h_automation_list(self, request, body):
        return json_response(200, [{
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
            return json_response(404, {"result": "TRIGGER_NOTFOUND", "automationResults": []})
        if not isinstance(body, dict) or not isinstance(body.get("externalContactId"), str):
            raise SimError(400, "INVALID_PARAMS", "externalContactId is required")
        eid = body["externalContactId"]
        contact = self.contacts.get(eid)
        if contact is None or contact["anonymized"]:
            return json_response(404, {"result": "CONTACT_NOTFOUND", "automationResults": []})
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
            return json_response(417, {"result": "NOT_TRIGGERED", "automationResults": results})
        payload: dict[str, Any] = {"result": "OK", "automationResults": results}
        if self.run_id_location == "top":
            started = [acid for acid, r in self.runs.items() if r["externalContactId"] == eid
                       and r["triggerCode"] == code]
            payload["automationContactId"] = started[-1]
        return json_response(200, payload)

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
        return json_response(200, {"results": results})

    def h_campaign_list(self, request, body):
        return json_response(200, [{"encryptedId": c["encryptedId"], "name": c["name"], "active": c["active"],
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
