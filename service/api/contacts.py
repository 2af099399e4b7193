"""Contact operations: thin handlers over service.actions.contacts."""

from __future__ import annotations

from service.actions import contacts as actions
from service.api.calls import run
from service.runtime import current_runtime


def list_contact_fields(user=None):
    return actions.list_contact_fields(current_runtime()), 200


def get_contact(email=None, externalId=None, user=None):  # noqa: N803 - name fixed by the spec
    return actions.get_contact(current_runtime(), email, externalId), 200


def upsert_contact(body: dict, user=None):
    return run("UpsertContact", user, body)


def anonymize_contact(body: dict, user=None):
    return run("AnonymizeContact", user, body)


def set_contact_field(body: dict, user=None):
    return run("SetContactField", user, body)


def clear_contact_field(body: dict, user=None):
    return run("ClearContactField", user, body)
