"""Runs one action call through the job ledger: idempotency, recording, replay. Shared by every write handler."""

from __future__ import annotations

from typing import Any, Callable

import flask
from connexion.context import context as connexion_context

from service.actions import timeline
from service.actions.problems import ActionError
from service.actions.idempotency import ActionCall, ActionResult, JobContext, body_hash, derive_key
from service.actions.resolution import contact_ref
from service.api import jsonbody
from service.logs import request_id_var
from service.runtime import current_runtime

REPLAY_HEADER = "Idempotent-Replayed"


def _contact_for_record(body: Any):
    try:
        return contact_ref(body.get("contact")) if isinstance(body, dict) and body.get("contact") else None
    except ActionError:  # an invalid contact is reported by the action itself; the record just lacks it
        return None


def dataverse_identity() -> timeline.DataverseIdentity:
    """Whose rights Dataverse calls use: the signed-in user (Entra ID user token, for on-behalf-of) or the app."""
    try:
        info = connexion_context.get("token_info") or {}
    except (LookupError, RuntimeError):  # pragma: no cover - outside a Connexion request
        info = {}
    token = _bearer(flask.request.headers)
    if info.get("kind") != "user" or token is None:  # API key, or an app-only token: the app's rights
        return timeline.APP
    return timeline.DataverseIdentity(kind="user", assertion=token, tenant_id=info.get("tid"),
                                      object_id=info.get("oid"))


def _bearer(headers) -> str | None:
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def run(operation: str, user: str | None, body: Any, work: Callable[[Any, JobContext], ActionResult],
        scope: dict[str, Any] | None = None) -> flask.Response:
    """``work(runtime, job)`` does the action; the ledger decides whether it runs (new key) or replays.

    With ``regarding`` in the body, the work is wrapped by :func:`service.actions.timeline.with_timeline`
    (contact from the Dataverse record, note on its timeline after the action)."""
    rt = current_runtime()
    if isinstance(body, dict) and body.get("regarding") is not None:
        work = timeline.with_timeline(operation, body, dataverse_identity(), work, scope)
    raw = flask.request.get_data(cache=True)
    headers = flask.request.headers
    call = ActionCall(
        operation=operation,
        provider=rt.settings.provider,
        api_key_id=user,
        request_id=request_id_var.get(),
        contact=_contact_for_record(body),
        inputs={**(scope or {}), **(body if isinstance(body, dict) else {"body": body})},
        idempotency_key=derive_key(operation, headers, raw, user, scope=scope),
        body_hash=body_hash(raw, scope),
        known_secrets=tuple(k for k in (headers.get("X-API-Key"), _bearer(headers)) if k),
    )
    rt.ledger.maybe_recover()
    answer = rt.ledger.run(call, lambda job: work(rt, job))
    response = flask.Response(jsonbody.dumps(answer.body), status=answer.status)
    response.headers.update(answer.headers)
    if "Content-Type" not in answer.headers and "content-type" not in answer.headers:
        response.headers["Content-Type"] = "application/problem+json" if answer.status >= 400 else "application/json"
    if answer.replayed:
        response.headers[REPLAY_HEADER] = "true"
    return response
