"""Contact operations: thin read handlers over service.actions.contacts."""

from __future__ import annotations

from service.actions import contacts as actions
from service.api.calls import request_platform


def list_contact_fields(user=None):
    return actions.list_contact_fields(request_platform()), 200


def get_contact(email=None, externalId=None, user=None):  # noqa: N803 - name fixed by the spec
    return actions.get_contact(request_platform(), email, externalId), 200
