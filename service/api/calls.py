"""A write action over HTTP: the request parsed ONCE into the typed call object (:func:`build_call`), handed to
the job runner, and its outcome turned into the HTTP answer (:mod:`service.api.answers`). Every write handler
(:mod:`service.api.writes`, derived from the operation registry) comes through :func:`run`."""

from __future__ import annotations

from typing import Any

import flask
from connexion.context import context as connexion_context

from service.actions import timeline
from service.actions.deps import Connection, Platform
from service.actions.idempotency import ActionCall, Answer, body_hash, derive_key
from service.actions.operations import SHORT_OPERATIONS
from service.actions.problems import ActionError
from service.actions.resolution import contact_ref, parse_identifier
from service.actions.tenancy import check_connection, missing_platform, scoped_caller
from service.actions.runner import RunningCall
from service.api import fairness
from service.api.answers import answer_parts, location_token, media_type_detail, respond
from service.api.urls import external_base_url
from service.api.wsgi_bridge import DEADLINE_KEY, Deadline
from service.logs import correlation_var, request_id_var
from service.runtime import current_runtime


def connection() -> Connection | None:
    """The platform account the request names. Single mode: none (the service's own account). Hosted mode
    (``TENANCY=hosted``): ``X-Platform``, ``X-Platform-Key`` and ``X-Platform-Secret``, checked (a 401 or 400
    problem naming the connection parameter to fill in); read once per request.

    A trigger's poll of its ``Location`` that comes without them (Power Platform does not say whether the
    connector's policies run on those calls) is the tenant's whose signed state it carries, with the
    credentials the service keeps for that tenant (:func:`remember_connection`)."""
    rt = current_runtime()
    if not rt.settings.hosted:
        return None
    cached = flask.g.get("hosted_connection")
    if cached is not None:
        return cached
    request = flask.request
    headers = request.headers
    state = request.args.get("state")
    if not headers.get("X-Platform") and state and request.path.startswith("/triggers/"):
        found = _stored_connection(rt, state)
    else:
        found = check_connection(headers.get("X-Platform"), headers.get("X-Platform-Key"),
                                 headers.get("X-Platform-Secret"))
    flask.g.hosted_connection = found
    fairness.admit_connection(found, rt.hosted.tenant(found))  # the throttle, then the tenant's budget (429)
    return found


def connection_named() -> bool:
    """Whether the request names a platform account (hosted mode's ``X-Platform``)."""
    return bool(flask.request.headers.get("X-Platform"))


def _stored_connection(rt, state: str) -> Connection:
    codec, _ = rt.triggers
    tenant = codec.loads(state).tenant  # a state we did not sign: its 400, revealing nothing
    found = rt.hosted.credentials.load(tenant) if tenant else None
    if found is None:
        raise missing_platform()
    return found


def remember_connection() -> None:
    """Hosted mode: keep (sealed) the credentials of this request's account for the work that goes on without a
    request (the polls of a trigger's Location, webhook syncs); refreshed whenever a call brings them."""
    rt = current_runtime()
    found = connection()
    if found is not None and flask.request.headers.get("X-Platform"):
        rt.hosted.credentials.remember(rt.hosted.tenant(found), found)


def tenant() -> str | None:
    """Hosted mode: the tenant of this request (the keyed hash of platform + account key); None in single mode."""
    found = connection()
    return None if found is None else current_runtime().hosted.tenant(found)


def scoped(user: str | None) -> str | None:
    """The caller id of this request as the ledger, idempotency keys and trigger states know it: in hosted mode
    the tenant's own (``<tenant>/<caller>``), so that nothing of another tenant is ever found.
    The tenant's budget is taken where the connection is first read (:func:`connection`)."""
    return scoped_caller(tenant(), user)


def request_platform() -> Platform:
    """The platform deps of this request (dropdowns and reads)."""
    return current_runtime().platform_for(connection())


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


def build_call(operation: str, user: str | None, body: Any, scope: dict[str, Any] | None) -> ActionCall:
    """The typed call object of this request: path parameters checked, the request hashed, the idempotency key
    derived and the contact (for the record) parsed - each once."""
    request = flask.request
    if request.mimetype != "application/json" or not isinstance(body, (dict, list)):
        raise ActionError(415, "UNSUPPORTED_MEDIA_TYPE", media_type_detail(
            request.headers.get("Content-Type"), body_is_json=request.mimetype == "application/json"))
    params = {name: parse_identifier(value, name) for name, value in (scope or {}).items()}
    raw = request.get_data(cache=True)
    headers = request.headers
    request_hash = body_hash(raw, params or None)
    account = connection()
    user = scoped(user)
    return ActionCall(
        operation=operation,
        provider=account.platform if account is not None else current_runtime().settings.provider,
        caller=user,
        request_id=request_id_var.get(),
        correlation=correlation_var.get(),
        contact=_contact_for_record(body),
        inputs={**params, **(body if isinstance(body, dict) else {"body": body})},
        idempotency_key=derive_key(operation, headers, raw, user, scope=params or None, request_hash=request_hash),
        body_hash=request_hash,
        known_secrets=tuple(k for k in (headers.get("X-API-Key"), _bearer(headers), *_platform_secrets(account))
                            if k),
        params=params,
        body=body,
        connection=account,
        identity=dataverse_identity(),
    )


def _platform_secrets(account: Connection | None) -> tuple[str, ...]:
    return () if account is None else (account.key, account.secret or "")


def run(operation: str, user: str | None, body: Any, scope: dict[str, Any] | None = None) -> flask.Response:
    """Run write action ``operation`` for caller ``user`` (the security handler's ``sub``: ``key:<id>`` or
    ``aad:<tenant>:<object id>``). With ``regarding`` in the body, the work also resolves the contact from the
    Dataverse record and writes the note (:mod:`service.actions.timeline`), as the signed-in user or the app.

    A short operation runs in this thread while the transport keeps the deadline (service.api.wsgi_bridge):
    past it, the transport detaches the running call and sends its 202; a bulk one runs on the runner's
    threads, which answer 202 after the sync budget themselves."""
    call = build_call(operation, user, body, scope)
    rt = current_runtime()
    runner, work = rt.runner, rt.operations.work(call)
    deadline = flask.request.environ.get(DEADLINE_KEY)
    if deadline is None or operation not in SHORT_OPERATIONS:
        return respond(runner.run(call, work))
    started = runner.begin(call, work)
    if isinstance(started, Answer):  # a replay, or the 202 of the same call going on in the background
        return respond(started)
    deadline.hold(_EarlyAnswer(started))
    try:
        answer = started.execute()
    finally:
        deadline.release()
    return respond(answer)


class _EarlyAnswer:
    """What the transport's deadline asks, from another thread, when the call runs too long: the running call
    detached (its 202, with the Location built from what the request said here), or None when it is finishing
    anyway (its own answer comes next)."""

    __slots__ = ("running", "headers", "scheme", "host", "token")

    def __init__(self, running: RunningCall) -> None:
        request = flask.request
        self.running = running
        self.headers, self.scheme, self.host = request.headers, request.scheme, request.host
        self.token = location_token()

    def answer_now(self) -> tuple[int, dict[str, str], bytes] | None:
        answer = self.running.detach()
        if answer is None:
            return None
        return answer_parts(answer, lambda: external_base_url(self.headers, self.scheme, self.host), self.token)


__all__ = ["build_call", "connection", "remember_connection", "request_platform", "respond", "run", "scoped",
           "tenant", "Deadline"]
