"""Runs one write action through the job runner: idempotency, recording, replay, the 202 of long work. Shared by
every write handler; the work itself is the operation's entry in service.actions.operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask
from connexion.context import context as connexion_context

from service.actions import timeline
from service.actions.idempotency import ActionCall, Answer, body_hash, derive_key
from service.actions.operations import SHORT_OPERATIONS
from service.actions.problems import ActionError
from service.actions.resolution import contact_ref, parse_identifier
from service.actions.runner import Offer
from service.api import jsonbody
from service.api.urls import external_base_url, request_base_url
from service.api.wsgi_bridge import DEADLINE_KEY, Deadline
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


def run(operation: str, user: str | None, body: Any, scope: dict[str, Any] | None = None) -> flask.Response:
    """Run write action ``operation`` for caller ``user`` (the security handler's ``sub``: ``key:<id>`` or
    ``aad:<tenant>:<object id>``). With ``regarding`` in the body, the work also resolves the contact from the
    Dataverse record and writes the note (:mod:`service.actions.timeline`), as the signed-in user or the app."""
    rt = current_runtime()
    request = flask.request
    if request.mimetype != "application/json" or not isinstance(body, (dict, list)):
        raise ActionError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the request body as JSON with the header "
                          "Content-Type: application/json.")
    params = {name: parse_identifier(value, name) for name, value in (scope or {}).items()}
    raw = request.get_data(cache=True)
    headers = request.headers
    call = ActionCall(
        operation=operation,
        provider=rt.settings.provider,
        caller=user,
        request_id=request_id_var.get(),
        contact=_contact_for_record(body),
        inputs={**params, **(body if isinstance(body, dict) else {"body": body})},
        idempotency_key=derive_key(operation, headers, raw, user, scope=params or None),
        body_hash=body_hash(raw, params or None),
        known_secrets=tuple(k for k in (headers.get("X-API-Key"), _bearer(headers)) if k),
        params=params,
        body=body,
    )
    work = rt.operations.work(operation, params, body, identity=dataverse_identity())
    deadline = request.environ.get(DEADLINE_KEY)
    offer = _offer(deadline) if deadline is not None and operation in SHORT_OPERATIONS else None
    return respond(rt.runner.run(call, work, offer))


def _offer(deadline: Deadline) -> Offer:
    """The job runner's inline mode through the transport's deadline (service.api.wsgi_bridge): the early
    answer is built off the request's thread, from what is captured here."""
    request = flask.request
    headers, scheme, host = request.headers, request.scheme, request.host

    def offer(give_up):
        if give_up is None:
            deadline.early = None
            return

        def early():
            answer = give_up()
            return None if answer is None else answer_parts(answer, lambda: external_base_url(headers, scheme, host))

        deadline.early = early
    return offer


def answer_parts(answer: Answer, base_url: Callable[[], str]) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of ``answer``; ``base_url()`` gives the external base of a 202's Location."""
    headers = dict(answer.headers)
    if "Content-Type" not in headers and "content-type" not in headers:
        headers["Content-Type"] = "application/problem+json" if answer.status >= 400 else "application/json"
    if answer.accepted and answer.job_id:
        headers["Location"] = f"{base_url()}/jobs/{answer.job_id}/result"
    if answer.replayed:
        headers[REPLAY_HEADER] = "true"
    return answer.status, headers, jsonbody.dumps(answer.body).encode("utf-8")


def respond(answer: Answer) -> flask.Response:
    status, headers, body = answer_parts(answer, request_base_url)
    response = flask.Response(body, status=status)
    response.headers.update(headers)
    return response
