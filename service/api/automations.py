"""Automation operations: thin read handlers over service.actions.automations."""

from __future__ import annotations

from service.actions import automations as actions
from service.api.calls import request_platform


def list_automations(user=None):
    return actions.list_automations(request_platform()), 200


def get_automation_fields_schema(automationId: str, user=None):  # noqa: N803 - name fixed by the spec
    return actions.fields_schema(request_platform(), automationId), 200
