"""Campaign operations: thin handlers over service.actions.automations."""

from __future__ import annotations

from service.actions import automations as actions
from service.api.calls import run
from service.runtime import current_runtime


def list_campaigns(user=None):
    return actions.list_campaigns(current_runtime()), 200


def trigger_campaign(triggerId: str, body: dict, user=None):  # noqa: N803 - name fixed by the spec
    return run("TriggerCampaign", user, body, scope={"triggerId": triggerId})


def stop_campaign(campaignId: str, body: dict, user=None):  # noqa: N803
    return run("StopCampaign", user, body, scope={"campaignId": campaignId})
