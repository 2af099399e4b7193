"""Automation operations: thin handlers over service.actions.automations."""

from __future__ import annotations

from service.actions import automations as actions
from service.api.calls import run
from service.runtime import current_runtime


def list_automations(user=None):
    return actions.list_automations(current_runtime()), 200


def get_automation_fields_schema(automationId: str, user=None):  # noqa: N803 - name fixed by the spec
    return actions.fields_schema(current_runtime(), automationId), 200


def start_automation(automationId: str, body: dict, user=None):  # noqa: N803
    return run("StartAutomation", user, body, scope={"automationId": automationId})


def stop_automation(automationId: str, body: dict, user=None):  # noqa: N803
    return run("StopAutomation", user, body, scope={"automationId": automationId})


def stop_automation_runs(body: dict, user=None):
    return run("StopAutomationRuns", user, body)
