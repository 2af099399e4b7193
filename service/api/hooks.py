"""Webhook triggers over HTTP (Piggy, Spoki): the subscription Power Automate makes (201 + Location), its DELETE,
the event dropdown and output schema, and the platforms' inbound webhooks. The logic is in
:mod:`service.actions.webhooks`."""

from __future__ import annotations

import logging
import threading
import weakref
from urllib.parse import urlencode

import flask

from service.actions.webhooks import SINGLE_SCOPE
from service.api.calls import connection, connection_named, remember_connection, request_platform
from service.api.urls import absolute_url, request_base_url
from service.providers.errors import NotSupported
from service.runtime import current_runtime

log = logging.getLogger(__name__)

NO_WEBHOOKS = ("This platform has no webhooks: use its polling triggers (for example 'When a new contact is "
               "added') instead.")


def _platform() -> str:
    """The platform of the call: the connection's (hosted mode), else the deployment's."""
    found = connection()
    return found.platform if found is not None else current_runtime().settings.provider


def _relay():
    relay = current_runtime().webhooks_for(_platform())
    if relay is None:
        raise NotSupported(NO_WEBHOOKS, code="NOT_SUPPORTED_BY_PLATFORM", details={"operation": "OnPlatformEvent"})
    return relay


def _scope() -> str:
    """The account a call belongs to: its connection's tenant (hosted mode), else the deployment's one account."""
    return request_platform().tenant or SINGLE_SCOPE


def on_platform_event(body, user=None):
    relay = _relay()
    remember_connection()  # hosted: the syncs and the reconcile use the tenant's account without a request
    sub, _ = relay.subscribe(scope=_scope(), caller=user, event=body.get("event"),
                                callback_url=body.get("callbackUrl"), filter_=body.get("filter"),
                                inbound_base=request_base_url())
    location = absolute_url(f"/hooks/{sub.id}?" + urlencode({"t": sub.token}))
    return sub.public(), 201, {"Location": location}


def delete_platform_event_hook(hookId, t=None, user=None):  # noqa: N803 - the spec's parameter name
    rt = current_runtime()
    if rt.settings.hosted and not connection_named():
        # hosted, and Power Automate's DELETE came without the connection's headers: the Location's own secret
        # (``t``, derived for this subscription) is the credential; the subscription's scope is its tenant
        from service.providers.factory import WEBHOOK_PLATFORMS

        for platform in WEBHOOK_PLATFORMS:
            if rt.webhooks_for(platform).unsubscribe(hookId, t, scope=None):
                break
        return {"id": hookId, "status": "deleted"}, 200
    relay = rt.webhooks_for(_platform())
    if relay is not None:
        relay.unsubscribe(hookId, t, scope=_scope())
    return {"id": hookId, "status": "deleted"}, 200


def list_platform_events(user=None):
    return {"value": _relay().events()}, 200


def get_platform_event_schema(event, user=None):
    return {"schema": _relay().event_schema(event)}, 200


def receive_platform_webhook(routeToken):  # noqa: N803 - the spec's parameter name
    request = flask.request
    rt = current_runtime()
    if rt.settings.hosted:  # the platform calls without a connection: the route token finds the webhook
        return _receive_hosted(rt, routeToken, request)
    received = _relay().receive(routeToken, request.headers, request.get_data(cache=False))
    return {"received": True, "duplicate": received.duplicate}, 200


def _receive_hosted(rt, route_token: str, request):
    from service.actions.problems import ActionError
    from service.providers.factory import WEBHOOK_PLATFORMS

    raw = request.get_data(cache=True)
    last = None
    for platform in WEBHOOK_PLATFORMS:
        try:
            received = rt.webhooks_for(platform).receive(route_token, request.headers, raw)
        except ActionError as exc:
            if exc.problem.code != "WEBHOOK_NOT_FOUND":
                raise
            last = exc
            continue
        return {"received": True, "duplicate": received.duplicate}, 200
    raise last


_started: weakref.WeakSet = weakref.WeakSet()
_started_lock = threading.Lock()


def start_relay() -> None:
    """Flask ``before_request``: the first request a process serves starts its relay worker (off the request's
    thread), so that any process delivers what is due, also what a process that died left behind."""
    rt = current_runtime()
    if rt in _started:
        return
    with _started_lock:
        if rt in _started:
            return
        _started.add(rt)
    from service.providers.factory import has_webhooks

    if rt.settings.hosted or has_webhooks(rt.settings.provider):
        threading.Thread(target=_start, args=(rt,), name="webhook-relay-start", daemon=True).start()


def _start(rt) -> None:
    from service.providers.factory import WEBHOOK_PLATFORMS

    try:
        if rt.settings.hosted:
            for platform in WEBHOOK_PLATFORMS:
                rt.webhooks_for(platform)
        else:
            rt.webhooks  # noqa: B018 - builds the relay and starts its worker
    except Exception:  # noqa: BLE001 - the database is away: the next webhook call starts it
        log.warning("the webhook relay could not start yet", exc_info=True)
        _started.discard(rt)
