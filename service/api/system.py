"""Health, TestConnection and GetCapabilities."""

from __future__ import annotations

from service.actions import system as actions
from service.api.calls import connection_named, request_platform
from service.runtime import current_runtime


def health():
    rt = current_runtime()
    hosted_without_connection = rt.settings.hosted and not connection_named()
    return actions.health(None if hosted_without_connection else request_platform(), rt.settings), 200


def test_connection(user=None):
    return actions.test_connection(request_platform(), current_runtime().settings), 200


def get_capabilities(user=None):
    return actions.capabilities(request_platform(), current_runtime().settings), 200


def get_sandbox_data():
    rt = current_runtime()
    if actions.tenancy(rt.settings) == "hosted":  # no platform of its own: the demo accounts of all three
        return actions.hosted_sandbox_data(rt.settings, rt.sandbox_accounts), 200
    return actions.sandbox_data(request_platform(), rt.settings, rt.sandbox_contacts), 200
