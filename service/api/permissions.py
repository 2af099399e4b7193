"""Permission operations: thin read handlers over service.actions.contacts."""

from __future__ import annotations

from service.actions import contacts as actions
from service.api.calls import request_platform


def list_permissions(user=None):
    return actions.list_permissions(request_platform()), 200
