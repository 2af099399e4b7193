"""Tag and score operations: thin read handlers over service.actions.tags."""

from __future__ import annotations

from service.actions import tags as actions
from service.api.calls import request_platform


def list_tags(user=None):
    return actions.list_tags(request_platform()), 200
