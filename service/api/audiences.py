"""Audience operations: thin handlers over service.actions.audiences."""

from __future__ import annotations

from service.actions import audiences as actions
from service.api.calls import run
from service.runtime import current_runtime


def list_audiences(user=None):
    return actions.list_audiences(current_runtime()), 200


def create_audience(body: dict, user=None):
    return run("CreateAudience", user, body)


def add_to_audience(audienceId: str, body: dict, user=None):  # noqa: N803 - name fixed by the spec
    return run("AddToAudience", user, body, scope={"audienceId": audienceId})


def remove_from_audience(audienceId: str, body: dict, user=None):  # noqa: N803
    return run("RemoveFromAudience", user, body, scope={"audienceId": audienceId})
