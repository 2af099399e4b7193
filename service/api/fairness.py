"""Hosted mode's fairness over HTTP: the per-tenant budgets and the refused-credentials throttle
(:mod:`service.actions.budgets`) around every request that names a platform account.

* :func:`admit_connection` - called by :func:`service.api.calls.connection` once per request, when the request's
  platform account is known (from its headers, or a trigger poll's stored tenant): the client's throttle is
  checked BEFORE any platform call (credentials accepted lately pass: :meth:`RefusedCredentials.check`), then
  the tenant's budget is taken for the rest of the request (429 + ``Retry-After`` when used up).
* :func:`check_api_key` - the same throttle for the publisher's API key (``API_KEYS`` in hosted mode).
* :func:`register` - Flask hooks: the answer tells whether the platform refused the credentials (401
  ``PLATFORM_CREDENTIALS_REFUSED``: counted against the client) or accepted them (remembered as proven), and the
  tenant's budget is given back when the request ends.

The client is the caller's address as the server sees it (``FORWARDED_ALLOW_IPS`` decides whether a proxy's
``X-Forwarded-For`` is believed). Single mode: nothing here runs.
"""

from __future__ import annotations

import flask

from service.actions.connection import Connection
from service.actions.problems import CREDENTIALS_REFUSED
from service.errors import AuthFailed
from service.runtime import current_runtime

_BUDGET = "hosted_budget"
_CREDENTIAL = "hosted_credential"


def client_address() -> str:
    return flask.request.remote_addr or "unknown"


def admit_connection(connection: Connection, tenant: str) -> None:
    """Throttle, then budget, this request's platform account (once per request)."""
    rt = current_runtime()
    if flask.g.get(_BUDGET) is not None:
        return
    credential = rt.hosted.keys.credentials_digest(connection)
    rt.budgets.refused.check(client_address(), credential)
    budget = rt.budgets.tenants.admit(tenant)
    budget.__enter__()  # given back by _release (teardown), whatever happens after
    flask.g.setdefault(_BUDGET, budget)
    flask.g.setdefault(_CREDENTIAL, credential)


def check_api_key(presented_id: str, ok: bool, client: str) -> None:
    """Hosted mode, in Connexion's security step (before Flask): a refused publisher key counts against
    ``client``; once it is throttled, its keys not accepted lately are 429 (``presented_id``: the key's hash)."""
    throttle = current_runtime().budgets.refused
    throttle.check(client, presented_id)  # throttled: even a right key not accepted lately is 429 (no oracle)
    if ok:
        throttle.accepted(presented_id)
    else:
        throttle.refused(client)


def _after(response: flask.Response) -> flask.Response:
    """A write's answer (the runner's, also a refusal: 401 PLATFORM_CREDENTIALS_REFUSED) or a read's success; a
    read's refusal is an exception (:func:`_release`)."""
    credential = flask.g.get(_CREDENTIAL)
    if credential is None:
        return response
    throttle = current_runtime().budgets.refused
    if response.status_code == 401:
        body = response.get_json(silent=True) if not response.is_streamed else None
        if isinstance(body, dict) and body.get("code") == CREDENTIALS_REFUSED:
            throttle.refused(client_address())
    elif response.status_code < 400:
        throttle.accepted(credential)
    return response


def _release(exc: BaseException | None = None) -> None:
    if isinstance(exc, AuthFailed) and flask.g.get(_CREDENTIAL) is not None:  # a read the platform refused
        current_runtime().budgets.refused.refused(client_address())
    budget = flask.g.pop(_BUDGET, None)
    if budget is not None:
        budget.__exit__(None, None, None)


def register(flask_app: flask.Flask) -> None:
    flask_app.after_request(_after)
    flask_app.teardown_request(_release)


__all__ = ["admit_connection", "check_api_key", "client_address", "register"]
