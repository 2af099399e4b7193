"""Audience operations: thin read handlers over service.actions.audiences."""

from __future__ import annotations

from service.actions import audiences as actions
from service.api.calls import request_platform


def list_audiences(user=None):
    return actions.list_audiences(request_platform()), 200
