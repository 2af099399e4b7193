"""Health, TestConnection and GetCapabilities."""

from __future__ import annotations

from service.actions import system as actions
from service.runtime import current_runtime


def health():
    return actions.health(current_runtime()), 200


def test_connection(user=None):
    return actions.test_connection(current_runtime()), 200


def get_capabilities(user=None):
    return actions.capabilities(current_runtime()), 200


def get_sandbox_data():
    return actions.sandbox_data(current_runtime()), 200
