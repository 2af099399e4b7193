"""Health, readiness, metrics, TestConnection and GetCapabilities."""

from __future__ import annotations

import hmac

from service import metrics
from service.actions import system as actions
from service.actions.problems import ActionError
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


def health_ready():
    rt = current_runtime()
    return actions.readiness(lambda: rt.ledger.engine, rt.settings), 200


def get_metrics(token_info=None):
    """Prometheus text format; with ``METRICS_TOKEN`` set, only for ``Authorization: Bearer <token>``."""
    from flask import Response, request

    expected = current_runtime().settings.metrics_token
    if expected:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), expected.encode()):
            raise ActionError(401, "METRICS_TOKEN_REQUIRED", "Send the metrics token in the header "
                              "'Authorization: Bearer <METRICS_TOKEN>'.", headers={"WWW-Authenticate": "Bearer"})
    body, content_type = metrics.render()
    return Response(body, status=200, content_type=content_type)  # as it is: not JSON
