"""Dataverse timeline write-back: ``regarding`` {table, id} on a write action adds a note to that record.

How a call with ``regarding`` runs (:func:`with_timeline` wraps the action's work, inside the job ledger's
exactly-once runner):

1. ``regarding`` is checked (table contact | lead | account, a GUID id): 400 ``INVALID_REGARDING``.
2. Without ``contact``, the record is read from Dataverse and its e-mail address is the contact. With
   ``createContactIfMissing`` (StartAutomation, TriggerCampaign) a contact the platform does not know is
   created from the record's name and e-mail. Nothing has happened on the platform yet, so a failure here
   fails the call: 404 ``REGARDING_NOT_FOUND``, 422 ``REGARDING_HAS_NO_EMAIL``, 403/424 for access and
   configuration, 503/504 + ``Retry-After`` when Dataverse is unavailable.
3. The platform action runs as without ``regarding``.
4. After it succeeded, the note is written (what was done, run ids, job id, time). Its ``annotationid`` is
   derived from the job id (:func:`note_id`), so retries, replays and a second worker can only ever write the
   same note once: Dataverse answers a duplicate id with its duplicate-key error, which counts as written.
   A Dataverse failure never fails or repeats the platform action: the answer is the action's 200 with
   ``timeline: {status: failed, reason}``, and the job records it (Dataverse 429: ``Retry-After`` honoured
   within ``DATAVERSE_TIMELINE_BUDGET_SECONDS``).

Whose rights: with an Entra ID connection the signed-in user's (on-behalf-of: the note's author is the user
and Dataverse's permissions apply), with an API key (or an app-only token) the service app's.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable

from service.actions.deps import Platform, TimelineDeps, WriteDeps
from service.actions.idempotency import ActionResult, JobContext
from service.actions.problems import ActionError, invalid
from service.actions.resolution import contact_ref, parse_email
from service.microsoft import errors as merr

log = logging.getLogger(__name__)

#: the write actions that take ``regarding``
OPERATIONS = frozenset({
    "StartAutomation", "StopAutomation", "TriggerCampaign", "StopCampaign", "UpsertContact", "AnonymizeContact",
    "SetContactField", "ClearContactField", "SetPermissions", "AddTag", "RemoveTag", "SetScore",
})
#: the actions with ``createContactIfMissing``
_CREATING = frozenset({"StartAutomation", "TriggerCampaign"})
TABLES = ("contact", "lead", "account")
#: result codes of an action that changed nothing: no note
_NOTHING_DONE = frozenset({"NOTHING_TO_STOP", "NOTHING_STOPPED"})
#: namespace of the note ids (uuid5 of the job id and the record)
NOTE_NAMESPACE = uuid.UUID("6f1f7d2a-4f7e-5c1b-9a43-3b0c1d6e8a55")
PLATFORM_NAMES = {"spotler": "Spotler Mail+", "piggy": "Piggy", "spoki": "Spoki"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

WRITTEN, FAILED, SKIPPED = "written", "failed", "skipped"


@dataclass(frozen=True)
class Regarding:
    table: str
    record_id: str


@dataclass(frozen=True)
class DataverseIdentity:
    """Whose rights the Dataverse calls use. ``assertion`` is the caller's validated Entra ID user token."""

    kind: str = "app"  # app | user
    assertion: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    object_id: str | None = None

    @property
    def on_behalf_of_user(self) -> bool:
        return self.kind == "user" and bool(self.assertion and self.tenant_id and self.object_id)


APP = DataverseIdentity()


def parse_regarding(value: Any) -> Regarding:
    if not isinstance(value, dict):
        raise invalid("regarding", "'regarding' must be an object with table (contact, lead or account) and id.",
                      code="INVALID_REGARDING")
    table = value.get("table")
    if not isinstance(table, str) or table.strip().lower() not in TABLES:
        raise invalid("regarding.table", "'regarding.table' must be contact, lead or account.",
                      code="INVALID_REGARDING")
    record_id = value.get("id")
    if not isinstance(record_id, str) or not _GUID.match(record_id.strip().strip("{}")):
        raise invalid("regarding.id", "'regarding.id' must be the record's id, a GUID like "
                      "0c0a0001-0000-4000-8000-00000000c001.", code="INVALID_REGARDING")
    return Regarding(table.strip().lower(), record_id.strip().strip("{}").lower())


def note_id(job_id: str, regarding: Regarding) -> str:
    """The note's ``annotationid``: the same for every attempt and replay of one job on one record."""
    return str(uuid.uuid5(NOTE_NAMESPACE, f"{job_id}/{regarding.table}/{regarding.record_id}"))


def wants_timeline(operation: str, body: Any) -> bool:
    """True when the call has ``regarding`` and the action takes it (then it needs :class:`TimelineDeps`)."""
    return operation in OPERATIONS and isinstance(body, dict) and body.get("regarding") is not None


# -- the wrapper ------------------------------------------------------------------------------------------

def with_timeline(operation: str, body: Any, identity: DataverseIdentity,
                  work: Callable[[JobContext], ActionResult], deps: WriteDeps,
                  scope: dict[str, Any] | None = None) -> Callable[[JobContext], ActionResult]:
    """``work`` itself when the call has no ``regarding`` (or the action takes none); else ``work`` with the
    record resolution before it and the note after it. ``body`` is the request body the action reads: a
    contact resolved from the record is put into it."""
    if not wants_timeline(operation, body):
        return work
    platform, timeline_deps = deps.platform, deps.timeline
    assert timeline_deps is not None, "the runtime builds TimelineDeps for a call with regarding"

    def run(job: JobContext) -> ActionResult:
        regarding = parse_regarding(body.get("regarding"))
        created = False
        if not body.get("contact"):
            record = read_record(timeline_deps, regarding, identity)
            if not record.email:
                raise ActionError(422, "REGARDING_HAS_NO_EMAIL",
                                  f"The {regarding.table} has no email address in Dataverse, so there is no contact "
                                  "to act on. Add an email address to the record, or give the contact.")
            try:
                email = parse_email(record.email, "regarding")
            except ActionError:
                raise ActionError(422, "REGARDING_EMAIL_INVALID", f"The {regarding.table}'s email address in "
                                  "Dataverse is not a valid address. Correct the record, or give the contact.") \
                    from None
            body["contact"] = {"email": email}
            if body.get("createContactIfMissing") and operation in _CREATING:
                created = _create_if_missing(platform, body, record)
        result = work(job)
        # from here on the platform action is done: nothing below may fail the call (a retry would repeat it)
        if created and isinstance(result.body.get("contact"), dict):
            result.body["contact"]["created"] = True
        timeline = write_note(platform, timeline_deps, operation, scope or {}, body, result, job, regarding, identity)
        result.body["timeline"] = timeline
        try:
            timeline_deps.ledger.record_timeline(job.job_id, timeline)
        except Exception:  # noqa: BLE001 - the answer (stored with the job) still carries the timeline
            log.exception("could not record the timeline of job %s", job.job_id)
        return result

    return run


# -- Dataverse calls --------------------------------------------------------------------------------------

def _token(ms, identity: DataverseIdentity) -> str:
    resource = ms.dataverse.config.resource
    if identity.on_behalf_of_user:
        return ms.identity.user_token(identity.assertion, tenant_id=identity.tenant_id,
                                      object_id=identity.object_id, resource=resource)
    return ms.identity.app_token(resource)


def read_record(deps: TimelineDeps, regarding: Regarding, identity: DataverseIdentity):
    """The regarding record (e-mail address and name), or the ActionError a flow maker can act on."""
    ms = deps.microsoft
    if ms.dataverse is None:
        raise ActionError(400, "DATAVERSE_NOT_CONFIGURED", "This service has no Dataverse connection, so it cannot "
                          "read the regarding record. Give the contact (email or externalId).", field="contact")
    try:
        return ms.dataverse.get_record(regarding.table, regarding.record_id, _token(ms, identity))
    except merr.TokenAcquisitionError as exc:
        if exc.transient:
            raise ActionError(503, exc.code, f"{exc.message} Try again shortly.",
                              headers={"Retry-After": "5"}) from None
        raise ActionError(424, exc.code, f"{exc.message} The Dataverse record could not be read; see the "
                          "Microsoft Entra ID setup (docs/entra-id.md).") from None
    except merr.DataverseNotFound:
        raise ActionError(404, "REGARDING_NOT_FOUND", f"There is no {regarding.table} with id "
                          f"{regarding.record_id} in Dataverse (or you may not read it).") from None
    except merr.DataverseDenied as exc:
        raise ActionError(403, "DATAVERSE_ACCESS_DENIED", f"Dataverse did not allow reading the {regarding.table}: "
                          f"{exc.message}", upstreamCode=exc.upstream_code) from None
    except merr.DataverseTimeout:
        raise ActionError(504, "DATAVERSE_TIMEOUT", "Dataverse did not answer in time.",
                          headers={"Retry-After": "10"}) from None
    except merr.DataverseUnavailable as exc:
        wait = max(1, math.ceil(exc.retry_after or 5))
        raise ActionError(503, exc.code, "Dataverse is unavailable or busy; try again shortly.",
                          headers={"Retry-After": str(wait)}) from None
    except merr.DataverseError as exc:
        raise ActionError(424, exc.code, f"Dataverse refused to read the record: {exc.message}") from None


def _create_if_missing(platform: Platform, body: dict, record) -> bool:
    """Create the platform contact from the record's name and e-mail when the platform does not know it."""
    ref = contact_ref(body["contact"])
    provider = platform.provider
    if provider.find_contact(ref) is not None:
        return False
    contact = provider.upsert_contact(ref, _name_properties(platform, record))
    body["contact"] = {"email": ref.email, "externalId": contact.external_id}
    return True


_NAME_FIELDS = {
    "first_name": ("firstname", "givenname", "voornaam"),
    "last_name": ("lastname", "surname", "familyname", "achternaam"),
    "company": ("company", "companyname", "organisation", "organization", "accountname"),
}


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _name_properties(platform: Platform, record) -> dict[str, Any]:
    """The platform's first name / last name / company fields (found by name) filled from the record."""
    from service.actions.coercion import coerce_value
    from service.actions.contacts import contact_fields
    from service.providers.errors import ProviderError

    try:
        fields = contact_fields(platform)
    except (ProviderError, ActionError):
        return {}
    out: dict[str, Any] = {}
    for attr, names in _NAME_FIELDS.items():
        value = getattr(record, attr)
        if not value:
            continue
        match = next((f for f in fields if not f.read_only and (_norm(f.name) in names
                                                              or _norm(f.display_name or "") in names)), None)
        if match is None:
            continue
        try:
            out[match.name] = coerce_value(match, value)
        except ActionError:
            continue
    return out


# -- the note ---------------------------------------------------------------------------------------------

def write_note(platform: Platform, deps: TimelineDeps, operation: str, scope: dict[str, Any], body: dict,
               result: ActionResult, job: JobContext,
               regarding: Regarding, identity: DataverseIdentity) -> dict[str, Any]:
    """Write the note; never raises (the platform action is done). Returns the ``timeline`` answer."""
    ms = deps.microsoft
    if ms.dataverse is None:
        return {"status": SKIPPED, "reason": "DATAVERSE_NOT_CONFIGURED",
                "message": "This service has no Dataverse connection; no note was written."}
    if result.result_code in _NOTHING_DONE:
        return {"status": SKIPPED, "reason": "NOTHING_CHANGED",
                "message": "The action changed nothing on the platform; no note was written."}
    nid = note_id(job.job_id, regarding)
    try:
        subject, text = describe(platform, operation, scope, body, result, job)
        deadline = time.monotonic() + ms.timeline_budget_seconds
        written = ms.dataverse.create_note(note_id=nid, table=regarding.table, record_id=regarding.record_id,
                                           subject=subject, text=text, token=_token(ms, identity),
                                           deadline=deadline)
    except merr.MicrosoftError as exc:
        log.warning("timeline note for job %s not written: %s", job.job_id, exc.code)
        return {"status": FAILED, "reason": exc.code,
                "message": f"The action succeeded, but the note could not be added to the {regarding.table}'s "
                           f"timeline: {exc.message}"}
    except Exception:  # noqa: BLE001 - the platform action is done: nothing may turn it into a failure
        log.exception("timeline note for job %s failed unexpectedly", job.job_id)
        return {"status": FAILED, "reason": "TIMELINE_ERROR",
                "message": "The action succeeded, but the note could not be added because of an unexpected error."}
    return {"status": WRITTEN, "noteId": written.note_id,
            "message": f"A note was added to the {regarding.table}'s timeline."}


def _safe(get: Callable[[], str | None], fallback: str) -> str:
    try:
        return get() or fallback
    except Exception:  # noqa: BLE001 - a name for the note is a nicety; the id will do
        return fallback


def _automation_name(platform: Platform, automation_id: str) -> str | None:
    from service.actions.automations import automations

    return next((a.name for a in automations(platform) if a.id == automation_id), None)


def _campaign_name(platform: Platform, key: str, value: str) -> str | None:
    from service.actions.automations import list_campaigns

    for c in list_campaigns(platform)["value"]:
        if c.get(key) == value:
            return c.get("title") if key == "triggerId" else c.get("campaignName")
    return None


def describe(platform: Platform, operation: str, scope: dict[str, Any], body: dict, result: ActionResult,
             job: JobContext) -> tuple[str, str]:
    """(subject, text) of the note: what was done, the run ids, the job id and the time. No e-mail address
    and no field value is written (the record has the address; values may be personal)."""
    out = result.body
    lines: list[str] = []
    what: str
    if operation in ("StartAutomation", "StopAutomation"):
        aid = str(scope.get("automationId", ""))
        name = _safe(lambda: _automation_name(platform, aid), aid)
        what = f"Automation {'started' if operation == 'StartAutomation' else 'stopped'}: {name}"
        lines.append(f"Automation: {name} ({aid})" if name != aid else f"Automation: {aid}")
        if operation == "StopAutomation":
            lines.append(f"Runs stopped: {out.get('stopped', 0)}")
    elif operation in ("TriggerCampaign", "StopCampaign"):
        key = "triggerId" if operation == "TriggerCampaign" else "campaignId"
        cid = str(scope.get(key, ""))
        name = _safe(lambda: _campaign_name(platform, key, cid), cid)
        what = f"Campaign {'triggered' if operation == 'TriggerCampaign' else 'stopped'}: {name}"
        lines.append(f"Campaign: {name} ({cid})" if name != cid else f"Campaign: {cid}")
    elif operation in ("AddTag", "RemoveTag"):
        tags = ", ".join(out.get("tags") or [])
        what = f"Tags {'added' if operation == 'AddTag' else 'removed'}: {tags}"
        if operation == "AddTag" and body.get("score") is not None:
            lines.append(f"Score: {body.get('score')}")
    elif operation == "SetScore":
        mode = out.get("mode", "set")
        what = f"Score {'set' if mode == 'set' else mode + 'd'} on tag {out.get('tag')}"
        if out.get("score") is not None:
            lines.append(f"New score: {out.get('score')}")
    elif operation in ("SetContactField", "ClearContactField"):
        cleared = operation == "ClearContactField" or "value" not in out
        what = f"Contact field {'cleared' if cleared else 'set'}: {out.get('field')}"
    elif operation == "SetPermissions":
        changed = out.get("changed") or []
        names = ", ".join(str(c.get("name")) for c in changed)
        what = f"{'Subscribed to' if body.get('enabled', True) else 'Unsubscribed from'}: {names}"
    elif operation == "UpsertContact":
        created = bool((out.get("contact") or {}).get("created"))
        what = f"Contact {'created' if created else 'updated'}"
        if out.get("fieldsSet"):
            lines.append(f"Fields: {', '.join(out['fieldsSet'])}")
    elif operation == "AnonymizeContact":
        what = "Contact anonymized"
    else:  # pragma: no cover - OPERATIONS is closed
        what = operation
    platform_name = PLATFORM_NAMES.get(platform.provider.name, platform.provider.name)
    run_ids = out.get("automationContactIds") or [r.get("automationContactId") for r in out.get("results") or []
                                                  if r.get("result") == "STOPPED" and r.get("automationContactId")]
    if run_ids:
        lines.append(f"Run ids (automationContactId): {', '.join(str(i) for i in run_ids)}")
    contact = out.get("contact") or {}
    if contact.get("externalId"):
        lines.append(f"Contact in {platform_name}: {contact['externalId']}"
                     + (" (created by this action)" if contact.get("created") else ""))
    when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    text = "\n".join([f"{what} in {platform_name}.", *lines, f"Job: {job.job_id}", f"Time (UTC): {when}",
                      "Written by Marketing Actions."])
    return f"{platform_name}: {what}", text
