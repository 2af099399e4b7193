"""Every write action by operationId: how to run it from its stored request (path parameters + body), how to
settle it when its worker died after a call that is not safe to repeat, and what a flow maker should check when
its outcome is unknown. The HTTP handlers and the job runner (resumed background jobs) use the same entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.actions import audiences, automations, contacts, tags, timeline
from service.actions.idempotency import ActionResult, JobContext
from service.actions.runner import Work
from service.privacy import mask_email
from service.providers.base import Contact

#: operationId -> work(rt, params, body, job)
_WORKS: dict[str, Callable[[Any, dict[str, Any], Any, JobContext], ActionResult]] = {
    "StartAutomation": lambda rt, p, b, job: automations.start_automation(rt, p["automationId"], b, job),
    "StopAutomation": lambda rt, p, b, job: automations.stop_automation(rt, p["automationId"], b, job),
    "StopAutomationRuns": lambda rt, p, b, job: automations.stop_automation_runs(rt, b, job),
    "TriggerCampaign": lambda rt, p, b, job: automations.trigger_campaign(rt, p["triggerId"], b, job),
    "StopCampaign": lambda rt, p, b, job: automations.stop_campaign(rt, p["campaignId"], b, job),
    "UpsertContact": lambda rt, p, b, job: contacts.upsert_contact(rt, b, job),
    "AnonymizeContact": lambda rt, p, b, job: contacts.anonymize_contact(rt, b, job),
    "SetContactField": lambda rt, p, b, job: contacts.set_contact_field(rt, b, job),
    "ClearContactField": lambda rt, p, b, job: contacts.clear_contact_field(rt, b, job),
    "SetPermissions": lambda rt, p, b, job: contacts.set_permissions(rt, b, job),
    "AddTag": lambda rt, p, b, job: tags.add_tag(rt, b, job),
    "RemoveTag": lambda rt, p, b, job: tags.remove_tag(rt, b, job),
    "SetScore": lambda rt, p, b, job: tags.set_score(rt, b, job),
    "CreateAudience": lambda rt, p, b, job: audiences.create_audience(rt, b, job),
    "AddToAudience": lambda rt, p, b, job: audiences.add_to_audience(rt, p["audienceId"], b, job),
    "RemoveFromAudience": lambda rt, p, b, job: audiences.remove_from_audience(rt, p["audienceId"], b, job),
}

WRITE_OPERATIONS = frozenset(_WORKS)

#: works that make a few upstream calls for one contact (or one campaign, one audience), each bounded by the
#: HTTP timeouts: the HTTP layer runs them in the request's own thread (no hand-off to a runner thread; the
#: transport keeps the deadline). The others - per id or per contact of a list of up to 10,000 - can run for
#: minutes after their 202 and stay on the runner's threads, so that they never hold a request thread.
SHORT_OPERATIONS = WRITE_OPERATIONS - {"StopAutomation", "StopAutomationRuns", "AddToAudience",
                                       "RemoveFromAudience"}


def _contact_text(body: Any) -> str:
    contact = body.get("contact") if isinstance(body, dict) else None
    if isinstance(contact, dict):
        if contact.get("externalId"):
            return f"the contact with externalId '{str(contact['externalId'])[:60]}'"
        if contact.get("email"):
            return f"the contact {mask_email(str(contact['email']))}"
    return "the contact"


class Operations:
    """The runner's view of the actions, bound to one runtime (provider, caches, settings)."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt

    def work(self, operation: str, params: dict[str, Any], body: Any,
             identity: timeline.DataverseIdentity | None = None) -> Work:
        """The work of one call. With ``regarding`` in the body it is wrapped by the timeline (contact from the
        Dataverse record before, the note after), as ``identity`` (the signed-in user) or, for a job resumed
        after a crash (the user's token is gone), as the app."""
        run = _WORKS[operation]
        rt = self.rt
        wrapped = timeline.with_timeline(operation, body, identity or timeline.APP,
                                         lambda _rt, job: run(rt, params, body, job), params)
        return lambda job: wrapped(rt, job)

    def settle(self, operation: str, params: dict[str, Any], body: Any, unsafe_call: dict[str, Any],
               job_id: str) -> tuple[str, ActionResult | None]:
        """``("applied", result)``, ``("not_applied", None)`` or ``("unknown", None)`` for a job whose worker
        died after a call that is not safe to repeat may have been sent. Only a read-back can tell; the
        platform must have had time to finish the request (the lease is longer than the read timeout)."""
        info = unsafe_call.get("readback") if isinstance(unsafe_call, dict) else None
        if operation != "SetScore" or not isinstance(info, dict) or not isinstance(body, dict):
            return tags.UNKNOWN, None
        try:
            contact = Contact(external_id=str(info["externalId"]))
            before, delta, tag = int(info["before"]), int(info["delta"]), str(info["tag"])
        except (KeyError, TypeError, ValueError):
            return tags.UNKNOWN, None
        verdict, now = tags.settle_score(self.rt.provider, contact, tag, before, delta)
        if verdict != tags.APPLIED:
            return verdict, None
        mode = str(body.get("mode") or "set").strip().lower()
        result = tags.score_result(job_id, contact, tag, abs(delta), mode, now)
        return verdict, result

    def check_hint(self, operation: str, params: dict[str, Any], body: Any) -> str:
        platform = getattr(self.rt.provider, "name", "the marketing platform")
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
