"""Campaign operations: thin read handlers over service.actions.automations."""

from __future__ import annotations

from service.actions import automations as actions
from service.api.calls import request_platform


def list_campaigns(user=None):
    return actions.list_campaigns(request_platform()), 200
