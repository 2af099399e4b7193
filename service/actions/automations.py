"""Automation and campaign actions, independent of the platform."""

from __future__ import annotations

from typing import Any

from service.actions.deps import Platform
from service.actions.automation_fields import build_field_values, dynamic_schema, parse_fields_text
from service.actions.idempotency import ActionResult, JobContext
from service.actions.problems import ActionError, invalid
from service.actions.resolution import contact_not_found, contact_ref, parse_identifier, resolve_contact
from service.providers.base import (
    Automation,
    AutomationField,
    AutomationRunResult,
    Contact,
    StartResult,
    StopRunResult,
)
from service.providers.errors import NotFound, NotSupported, Rejected

_REASONS = {
    "AUTOMATION_INACTIVE": "the automation is not active (set it to Final and publish it in the platform)",
    "PARTICIPATION_LIMIT_REACHED": "the contact reached the automation's participation limit",
}


# -- dropdowns --------------------------------------------------------------------------------------------

def automations(platform: Platform) -> list[Automation]:
    return platform.cache.get(("automations",), platform.provider.list_automations)


def list_automations(platform: Platform) -> dict:
    return {"value": [_automation_info(a) for a in automations(platform)]}


def _automation_info(a: Automation) -> dict:
    return {"id": a.id, "name": a.name, "status": a.status,
            "fields": [{"name": f.name, "type": f.type} for f in a.fields]}


def find_automation(platform: Platform, automation_id: str) -> Automation | None:
    """The automation from the (cached) list; the list is refreshed once before we say it does not exist.
    None when the platform cannot list automations (then nothing can be checked up front)."""
    try:
        for attempt in range(2):
            for a in automations(platform):
                if a.id == automation_id:
                    return a
            if attempt == 0:
                platform.cache.clear()
    except NotSupported:
        return None
    provider = platform.provider
    hint = f" ({provider.automation_hint})" if provider.automation_hint else ""
    raise ActionError(404, "AUTOMATION_NOT_FOUND",
                      f"There is no automation '{automation_id}' on {provider.display_name} that can be started "
                      f"through the API. Choose one from the list{hint}.")


def fields_schema(platform: Platform, automation_id: str) -> dict:
    automation = find_automation(platform, automation_id)
    return {"schema": dynamic_schema(list(automation.fields) if automation else [])}


# -- start and stop ---------------------------------------------------------------------------------------

def _definitions(automation: Automation | None, fields: Any, text: Any, *,
                 fields_known: bool = True) -> list[AutomationField]:
    if automation is not None and fields_known:
        return list(automation.fields)
    # no field list to check against (campaigns; platforms that cannot tell an automation's fields): accept
    # what is given, lists as PRODUCTLIST
    names: dict[str, Any] = dict(parse_fields_text(text)) if isinstance(text, str) and text.strip() else {}
    names.update(fields if isinstance(fields, dict) else {})
    return [AutomationField(n, "PRODUCTLIST" if isinstance(v, list) else "STRING") for n, v in names.items()]


def start_automation(platform: Platform, automation_id: str, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    automation = find_automation(platform, automation_id)
    fields, text = body.get("fields"), body.get("fieldsText")
    known = provider.supports("GetAutomationFieldsSchema")
    values = build_field_values(_definitions(automation, fields, text, fields_known=known), fields, text)
    create = bool(body.get("createContactIfMissing"))
    if ref.external_id and not create and provider.trigger_checks_contact:
        # the platform's trigger checks the contact itself: skip the lookup round trip (hot path)
        contact, created = Contact(external_id=ref.external_id), False
    else:
        contact, created = resolve_contact(provider, ref, create_if_missing=create, can_create=True)
    try:
        result: StartResult = provider.start_automation(automation_id, contact, values, guard=job.guard)
    except NotFound as exc:
        if exc.code != "CONTACT_NOT_FOUND":
            raise
        raise contact_not_found(provider, ref, can_create=True) from exc
    except Rejected as exc:  # the platform refused with per-automation reasons (Spotler's 417)
        runs = exc.details.get("automationResults")
        if not runs:
            raise
        result = StartResult(result="NOT_TRIGGERED", runs=tuple(
            AutomationRunResult(r.get("automationId") or automation_id, r.get("result") or "UNKNOWN") for r in runs))
    ids = result.automation_contact_ids
    if ids:
        job.add_upstream_ids("automationContactIds", ids)
    runs = [_run_info(r) for r in result.runs]
    if result.result != "OK":
        reasons = "; ".join(_REASONS.get(r.result, r.result) for r in result.runs if r.result != "OK") \
            or result.result
        raise ActionError(409, "AUTOMATION_NOT_TRIGGERED",
                          f"The automation did not start for this contact: {reasons}.", results=runs)
    out: dict[str, Any] = {"jobId": job.job_id, "resultCode": "OK", "automationContactIds": ids, "results": runs,
                           "contact": {"externalId": contact.external_id, "created": created}}
    if ids:
        out["automationContactId"] = ids[0]
    return ActionResult(body=out, upstream_ids={"automationContactIds": ids},
                        message=f"Started {len(ids) or 'the'} run(s).")


def _run_info(r) -> dict:
    d = {"automationId": r.automation_id, "result": r.result}
    if r.automation_contact_id:
        d["automationContactId"] = r.automation_contact_id
    return d


def stop_automation(platform: Platform, automation_id: str, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    find_automation(platform, automation_id)
    contact, _ = resolve_contact(provider, ref)
    return _stop_result(provider.stop_automation(automation_id, contact), job)


MAX_RUN_IDS = 500


def parse_run_ids(value: Any) -> list[str]:
    """``"id1,id2"`` or ``["id1", "id2"]`` (items may themselves be comma-separated) -> unique ids in order."""
    items = value if isinstance(value, list) else [value]
    ids: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise invalid("automationContactIds", "automationContactIds must be text like 'id1,id2' or an array "
                          "of ids.", code="INVALID_RUN_IDS")
        for part in str(item).replace(";", ",").split(","):
            part = part.strip()
            if part and part not in ids:
                ids.append(parse_identifier(part, "automationContactIds"))
                if len(ids) > MAX_RUN_IDS:
                    break
    if not ids:
        raise invalid("automationContactIds", "Give at least one automationContactId.", code="INVALID_RUN_IDS")
    if len(ids) > MAX_RUN_IDS:
        raise invalid("automationContactIds", f"At most {MAX_RUN_IDS} automationContactIds per call.",
                      code="TOO_MANY_IDS")
    return ids


#: run ids stopped per step (progress is reported between steps)
STOP_STEP = 25


def stop_automation_runs(platform: Platform, body: dict, job: JobContext) -> ActionResult:
    ids = parse_run_ids(body.get("automationContactIds"))
    results: list[StopRunResult] = []
    for start in range(0, len(ids), STOP_STEP):
        results.extend(platform.provider.stop_automation_runs(ids[start:start + STOP_STEP]))
        if len(ids) > STOP_STEP:
            job.set_progress(min(start + STOP_STEP, len(ids)), len(ids))
    return _stop_result(results, job)


def _stop_result(results: list[StopRunResult], job: JobContext) -> ActionResult:
    stopped = [r.automation_contact_id for r in results if r.result == "STOPPED"]
    if stopped:
        job.add_upstream_ids("stoppedAutomationContactIds", stopped)
    if not results:
        code = "NOTHING_TO_STOP"
    elif len(stopped) == len(results):
        code = "OK"
    else:
        code = "PARTIAL" if stopped else "NOTHING_STOPPED"
    return ActionResult(
        body={"jobId": job.job_id, "resultCode": code, "stopped": len(stopped),
              "results": [{"automationContactId": r.automation_contact_id, "result": r.result} for r in results]},
        result_code=code, upstream_ids={"stoppedAutomationContactIds": stopped},
        message=f"Stopped {len(stopped)} of {len(results)} run(s).")


# -- campaigns --------------------------------------------------------------------------------------------

def list_campaigns(platform: Platform) -> dict:
    campaigns = platform.cache.get(("campaigns",), platform.provider.list_campaigns)
    value = []
    for c in campaigns:
        for t in c.triggers:
            value.append({"triggerId": t.id, "title": f"{c.name} - {t.name}" if t.name else c.name,
                          "triggerName": t.name, "campaignId": c.id, "campaignName": c.name, "active": c.active})
    return {"value": value}


def trigger_campaign(platform: Platform, trigger_id: str, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    ref = contact_ref(body.get("contact"))
    fields, text = body.get("fields"), body.get("fieldsText")
    values = build_field_values(_definitions(None, fields, text), fields, text) if (fields or text) else []
    contact, created = resolve_contact(provider, ref, create_if_missing=bool(body.get("createContactIfMissing")),
                                       can_create=True)
    provider.trigger_campaign(trigger_id, contact, values, guard=job.guard)
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK", "message": "The campaign was triggered.",
                              "contact": {"externalId": contact.external_id, "created": created}})


def stop_campaign(platform: Platform, campaign_id: str, body: dict, job: JobContext) -> ActionResult:
    provider = platform.provider
    contact, _ = resolve_contact(provider, contact_ref(body.get("contact")))
    provider.stop_campaign(campaign_id, contact)
    return ActionResult(body={"jobId": job.job_id, "resultCode": "OK",
                              "message": "The campaign was stopped for the contact.",
                              "contact": {"externalId": contact.external_id}})
