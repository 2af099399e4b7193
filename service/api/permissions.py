"""Permission operations: thin handlers over service.actions.contacts."""

from __future__ import annotations

from service.actions import contacts as actions
from service.api.calls import run
from service.runtime import current_runtime


def list_permissions(user=None):
    return actions.list_permissions(current_runtime()), 200


def set_permissions(body: dict, user=None):
    return run("SetPermissions", user, body)
