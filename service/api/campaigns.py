"""Campaign operations: thin handlers over service.actions.automations."""

from __future__ import annotations

from service.actions import automations as actions
from service.api.calls import run
from service.runtime import current_runtime


def list_campaigns(user=None):
    return actions.list_campaigns(current_runtime()), 200


def trigger_campaign(triggerId: str, body: dict, user=None):  # noqa: N803 - name fixed by the spec
    return run("TriggerCampaign", user, body,
               lambda rt, job: actions.trigger_campaign(rt, triggerId, body, job), scope={"triggerId": triggerId})


def stop_campaign(campaignId: str, body: dict, user=None):  # noqa: N803
    return run("StopCampaign", user, body,
               lambda rt, job: actions.stop_campaign(rt, campaignId, body, job), scope={"campaignId": campaignId})
