"""Tag and score operations: thin handlers over service.actions.tags."""

from __future__ import annotations

from service.actions import tags as actions
from service.api.calls import run
from service.runtime import current_runtime


def list_tags(user=None):
    return actions.list_tags(current_runtime()), 200


def add_tag(body: dict, user=None):
    return run("AddTag", user, body)


def remove_tag(body: dict, user=None):
    return run("RemoveTag", user, body)


def set_score(body: dict, user=None):
    return run("SetScore", user, body)
