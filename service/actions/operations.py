"""Every write action by operationId: how to run it from its stored request (path parameters + body), how to
settle it when its worker died after a call that is not safe to repeat, and what a flow maker should check when
its outcome is unknown. The HTTP handlers and the job runner (resumed background jobs) use the same entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.actions import audiences, automations, contacts, tags, timeline
from service.actions.deps import DepsSource, Platform
from service.actions.idempotency import ActionCall, ActionResult, JobContext
from service.actions.runner import Work
from service.privacy import mask_email
from service.providers.base import Contact

@dataclass(frozen=True, slots=True)
class WriteOperation:
    """One write action. ``run(platform, [params[target],] body, job)``; ``bulk``: per id or per contact of a
    list of up to 10,000, it can run for minutes after its 202 and stays on the runner's threads, so that it
    never holds a request thread. The others make a few upstream calls for one contact (or one campaign, one
    audience), each bounded by the HTTP timeouts: the HTTP layer runs them in the request's own thread (no
    hand-off to a runner thread; the transport keeps the deadline)."""

    operation_id: str
    run: Callable[..., ActionResult]
    #: the path parameter ``run`` takes after the platform (None: only the body)
    target: str | None = None
    bulk: bool = False

    def __call__(self, platform: Platform, params: dict[str, Any], body: Any, job: JobContext) -> ActionResult:
        if self.target is None:
            return self.run(platform, body, job)
        return self.run(platform, params[self.target], body, job)


#: every write action by operationId: the one registry the HTTP handlers (service.api.writes) and the job
#: runner (resumed background jobs) use
REGISTRY: dict[str, WriteOperation] = {op.operation_id: op for op in (
    WriteOperation("StartAutomation", automations.start_automation, target="automationId"),
    WriteOperation("StopAutomation", automations.stop_automation, target="automationId", bulk=True),
    WriteOperation("StopAutomationRuns", automations.stop_automation_runs, bulk=True),
    WriteOperation("TriggerCampaign", automations.trigger_campaign, target="triggerId"),
    WriteOperation("StopCampaign", automations.stop_campaign, target="campaignId"),
    WriteOperation("UpsertContact", contacts.upsert_contact),
    WriteOperation("AnonymizeContact", contacts.anonymize_contact),
    WriteOperation("SetContactField", contacts.set_contact_field),
    WriteOperation("ClearContactField", contacts.clear_contact_field),
    WriteOperation("SetPermissions", contacts.set_permissions),
    WriteOperation("AddTag", tags.add_tag),
    WriteOperation("RemoveTag", tags.remove_tag),
    WriteOperation("SetScore", tags.set_score),
    WriteOperation("CreateAudience", audiences.create_audience),
    WriteOperation("AddToAudience", audiences.add_to_audience, target="audienceId", bulk=True),
    WriteOperation("RemoveFromAudience", audiences.remove_from_audience, target="audienceId", bulk=True),
)}

WRITE_OPERATIONS = frozenset(REGISTRY)
#: run in the request's own thread (see WriteOperation)
SHORT_OPERATIONS = frozenset(op.operation_id for op in REGISTRY.values() if not op.bulk)


def _contact_text(body: Any) -> str:
    contact = body.get("contact") if isinstance(body, dict) else None
    if isinstance(contact, dict):
        if contact.get("externalId"):
            return f"the contact with externalId '{str(contact['externalId'])[:60]}'"
        if contact.get("email"):
            return f"the contact {mask_email(str(contact['email']))}"
    return "the contact"


class Operations:
    """The runner's view of the actions: the work of a call, with its dependencies from ``deps`` (the runtime:
    the one place that builds them, for a fresh call and for a job resumed from its record alike)."""

    def __init__(self, deps: DepsSource) -> None:
        self.deps = deps

    def work(self, call: ActionCall) -> Work:
        """The work of ``call``. With ``regarding`` in the body it is wrapped by the timeline (contact from the
        Dataverse record before, the note after), as the call's identity (the signed-in user) or, for a job
        resumed after a crash (the user's token is gone), as the app."""
        operation = REGISTRY[call.operation]
        params, body = call.params, call.body
        deps = self.deps.writes_for(call.connection, timeline=timeline.wants_timeline(call.operation, body))
        platform = deps.platform

        def work(job: JobContext) -> ActionResult:
            return operation(platform, params, body, job)

        return timeline.with_timeline(call.operation, body, call.identity or timeline.APP, work, deps, params)

    def settle(self, call: ActionCall, unsafe_call: dict[str, Any], job_id: str) -> tuple[str, ActionResult | None]:
        """``("applied", result)``, ``("not_applied", None)`` or ``("unknown", None)`` for a job whose worker
        died after a call that is not safe to repeat may have been sent. Only a read-back can tell; the
        platform must have had time to finish the request (the lease is longer than the read timeout)."""
        body = call.body
        info = unsafe_call.get("readback") if isinstance(unsafe_call, dict) else None
        if call.operation != "SetScore" or not isinstance(info, dict) or not isinstance(body, dict):
            return tags.UNKNOWN, None
        try:
            contact = Contact(external_id=str(info["externalId"]))
            before, delta, tag = int(info["before"]), int(info["delta"]), str(info["tag"])
        except (KeyError, TypeError, ValueError):
            return tags.UNKNOWN, None
        platform = self.deps.writes_for(call.connection, timeline=False).platform
        verdict, now = tags.settle_score(platform.provider, contact, tag, before, delta)
        if verdict != tags.APPLIED:
            return verdict, None
        mode = str(body.get("mode") or "set").strip().lower()
        result = tags.score_result(job_id, contact, tag, abs(delta), mode, now)
        return verdict, result

    def check_hint(self, call: ActionCall) -> str:
        """What a flow maker should check when the outcome of ``call`` is unknown."""
        operation, params, body = call.operation, call.params, call.body
        provider = self.deps.writes_for(call.connection, timeline=False).platform.provider
        platform = getattr(provider, "name", "the marketing platform")
        contact = _contact_text(body)
        if operation == "StartAutomation":
            return (f"Check in {platform} whether automation '{str(params.get('automationId'))[:80]}' started for "
                    f"{contact} before you start it again with a new idempotency key.")
        if operation == "TriggerCampaign":
            return (f"Check in {platform} whether the campaign of trigger '{str(params.get('triggerId'))[:80]}' "
                    f"started for {contact} before you trigger it again with a new idempotency key.")
        if operation == "SetScore":
            tag = body.get("tag") if isinstance(body, dict) else None
            return (f"Check the score of {contact} on tag '{str(tag)[:80]}' in {platform} before you change it "
                    "again with a new idempotency key.")
        return f"Check in {platform} whether the action took effect before you run it again."
