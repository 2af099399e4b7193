"""Polling triggers over HTTP: 202/200, ``Location`` (the next poll, absolute, through the proxies' address)
and ``Retry-After``. The logic is in :mod:`service.actions.triggers` (``engine.poll``, ``mailings.list_mailings``)."""

from __future__ import annotations

from urllib.parse import urlencode

import flask

from service.actions.triggers import engine, mailings
from service.api.calls import connection, remember_connection, request_platform, scoped
from service.api.urls import absolute_url
from service.runtime import current_runtime


def _answer(operation: str, params: dict, *, since=None, batch_size=None, state=None, user=None):
    deps = current_runtime().triggers_for(connection())
    result = engine.poll(deps, operation, params, state=state, caller=scoped(user), since=since,
                         batch_size=batch_size)
    remember_connection()  # hosted: the next polls may come without the connection's headers
    query = dict(result.query)
    if batch_size is not None:
        query["batchSize"] = str(batch_size)
    query["state"] = result.state
    headers = {"Location": absolute_url(flask.request.path + "?" + urlencode(query)),
               "Retry-After": str(result.retry_after)}
    if result.status == 200:
        return {"value": result.items}, 200, headers
    return flask.Response(status=202, headers=headers, mimetype="application/json")


def on_contact_added(permissions=None, since=None, batchSize=None, state=None, user=None):  # noqa: N803
    return _answer("OnContactAdded", {"permissions": permissions}, since=since, batch_size=batchSize, state=state,
                   user=user)


def on_contact_changed(fields=None, since=None, batchSize=None, state=None, user=None):  # noqa: N803
    return _answer("OnContactChanged", {"fields": fields}, since=since, batch_size=batchSize, state=state, user=user)


def on_contact_bounced(bounceType=None, since=None, batchSize=None, state=None, user=None):  # noqa: N803
    return _answer("OnContactBounced", {"bounceType": bounceType}, since=since, batch_size=batchSize, state=state,
                   user=user)


def on_contact_unsubscribed(permissions=None, batchSize=None, state=None, user=None):  # noqa: N803
    return _answer("OnContactUnsubscribed", {"permissions": permissions}, batch_size=batchSize, state=state,
                   user=user)


def on_mailing_interaction(interaction=None, mailingId=None, since=None, batchSize=None, state=None,  # noqa: N803
                           user=None):
    return _answer("OnMailingInteraction", {"interaction": interaction, "mailingId": mailingId}, since=since,
                   batch_size=batchSize, state=state, user=user)


def list_mailings(user=None):
    return mailings.list_mailings(request_platform()), 200
