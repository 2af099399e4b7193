"""Exactly-once execution of write actions: idempotency keys and the runner behind ``Ledger.run``.

Power Automate retries a call on 408/429/5xx and timeouts (up to 8 times), sometimes while the first attempt is
still running. Every write action therefore goes through :func:`run_call`:

* a new key inserts one ``InProgress`` ledger record (the database's unique constraint on the key decides races
  between threads, processes and instances), runs the work, stores the answer;
* the same key with the same body replays the stored answer (``Answer.replayed``); with a different body it is
  a 422 ``IDEMPOTENCY_KEY_REUSED``; while the first call still runs (lease not expired) it is a 409
  ``REQUEST_IN_PROGRESS`` with ``Retry-After`` - the work never runs twice;
* a transient failure (429/5xx except 501) or an unexpected exception releases the key: a retry re-runs the work
  on the same record (``attempts`` + 1);
* a record whose lease expired (the worker died mid-call) becomes ``Failed``/``OUTCOME_UNKNOWN`` and is answered
  with a 409 that tells the flow maker to check the platform (409 because Power Automate does not retry it).

Key derivation (:func:`derive_key`): an explicit ``Idempotency-Key`` header, scoped by API key and operation; else
the Power Automate run headers (``x-ms-workflow-run-id`` + action name/tracking id + repetition headers) plus a
hash of the request; else no key (the call is still recorded).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from service.actions.problems import ActionError, Problem, invalid, to_problem
from service.providers.base import ContactRef

if TYPE_CHECKING:  # pragma: no cover
    from service.actions.ledger import Ledger

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
JSON_CONTENT_TYPE = "application/json"

IN_PROGRESS = "InProgress"
COMPLETED = "Completed"
FAILED = "Failed"
STATUSES = (IN_PROGRESS, COMPLETED, FAILED)

#: status of the stored answer once a record's outcome is unknown (a 4xx that Power Automate does not retry)
OUTCOME_UNKNOWN_STATUS = 409
OUTCOME_UNKNOWN_MESSAGE = (
    "The outcome of this call is unknown: the service stopped while the marketing platform was being called. "
    "Check in the marketing platform whether the action took effect before running it again with a new "
    "idempotency key or flow run."
)

MAX_IDEMPOTENCY_KEY_LENGTH = 255

#: Power Automate / Logic Apps headers that identify one repetition of an action inside a loop
_REPEAT_HEADERS = (
    "x-ms-workflow-repeatitem-scope-name",
    "x-ms-workflow-repeatitem-index",
    "x-ms-workflow-repeatitem-batch-index",
)


# ---------------------------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------------------------


@dataclass
class ActionCall:
    """One logical action call as the HTTP layer sees it (nothing secret in here)."""

    operation: str  # operationId, e.g. StartAutomation
    provider: str  # spotler | piggy | spoki
    api_key_id: str | None = None  # privacy.api_key_id(api_key) - never the key itself
    request_id: str | None = None
    contact: ContactRef | None = None
    #: the inputs as given; the ledger redacts them again (secrets removed, e-mails masked) before storing
    inputs: dict[str, Any] | None = None
    idempotency_key: str | None = None  # from derive_key(); None: recorded, no replay
    body_hash: str | None = None  # from body_hash(); compared on replay (422 when it differs)
    #: secret values to scrub wherever they appear in inputs/messages (e.g. the caller's API key); never stored
    known_secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass
class ActionResult:
    """What the work returns on success."""

    body: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    result_code: str | None = "OK"
    message: str | None = None
    #: e.g. {"automationContactIds": ["123", "124"]}
    upstream_ids: dict[str, list[str]] = field(default_factory=dict)
    #: extra response headers to send (and replay), e.g. Location
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    """What the HTTP layer sends: ``status``, JSON ``body``, ``headers`` (Content-Type included).

    ``replayed`` is True when the answer comes from the ledger (send ``Idempotent-Replayed: true``).
    """

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    job_id: str | None = None

    @property
    def is_problem(self) -> bool:
        return self.status >= 400


class JobContext:
    """Handed to the work: the job id (to put into the response) and progressive recording of upstream ids."""

    def __init__(self, ledger: Ledger, job_id: str, attempt: int, upstream_ids: dict[str, list[str]] | None = None):
        self._ledger = ledger
        self.job_id = job_id
        self.attempt = attempt
        self.upstream_ids: dict[str, list[str]] = {k: list(v) for k, v in (upstream_ids or {}).items()}

    def add_upstream_ids(self, name: str, ids: Any, *, persist: bool = True) -> None:
        """Record upstream ids (``name`` e.g. ``automationContactIds``) as soon as the platform returns them.

        ``persist=True`` writes them to the ledger at once (one UPDATE), so that a record whose worker dies
        afterwards still shows what was done upstream. Ids returned in ``ActionResult.upstream_ids`` are merged
        in at the end anyway.
        """
        values = [ids] if isinstance(ids, (str, int)) else list(ids or [])
        merge_upstream_ids(self.upstream_ids, {name: values})
        if persist:
            self._ledger._save_upstream_ids(self.job_id, self.attempt, self.upstream_ids)

    def heartbeat(self) -> None:
        """Extend the lease of this record (for work that may legitimately run longer than the lease)."""
        self._ledger._extend_lease(self.job_id, self.attempt)


def merge_upstream_ids(into: dict[str, list[str]], more: Mapping[str, Any] | None) -> dict[str, list[str]]:
    for name, values in (more or {}).items():
        if values is None:
            continue
        vals = [values] if isinstance(values, (str, int)) else list(values)
        bucket = into.setdefault(str(name), [])
        for v in vals:
            s = str(v)
            if s not in bucket:
                bucket.append(s)
    return into


# ---------------------------------------------------------------------------------------------------------
# Keys and hashes
# ---------------------------------------------------------------------------------------------------------


def _canonical_body(body_bytes: bytes | str | None) -> bytes:
    if body_bytes is None:
        return b""
    raw = body_bytes.encode("utf-8") if isinstance(body_bytes, str) else bytes(body_bytes)
    if not raw.strip():
        return b""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _canonical_scope(scope: Mapping[str, Any] | str | None) -> str:
    if scope is None:
        return ""
    if isinstance(scope, str):
        return scope
    return json.dumps({str(k): scope[k] for k in scope}, sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=False)


def body_hash(body_bytes: bytes | str | None, scope: Mapping[str, Any] | str | None = None) -> str:
    """SHA-256 (hex) of the request: the JSON body in canonical form (key order and blanks do not matter)
    plus ``scope`` (path and query parameters, e.g. ``{"automationId": "42"}``)."""
    h = hashlib.sha256()
    h.update(_canonical_scope(scope).encode("utf-8"))
    h.update(b"\x00")
    h.update(_canonical_body(body_bytes))
    return h.hexdigest()


def _header_map(headers: Mapping[str, str] | Any) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else headers
    out: dict[str, str] = {}
    for k, v in items:
        key = k.decode("latin-1") if isinstance(k, bytes) else str(k)
        val = v.decode("latin-1") if isinstance(v, bytes) else str(v)
        out.setdefault(key.lower(), val.strip())
    return out


def _digest(*parts: str) -> str:
    return hashlib.sha256(json.dumps(list(parts), separators=(",", ":")).encode("utf-8")).hexdigest()


def derive_key(operation: str, headers: Mapping[str, str] | Any, body_bytes: bytes | str | None,
               api_key_id: str | None, *, scope: Mapping[str, Any] | str | None = None) -> str | None:
    """The idempotency key of a call, or None when the call carries nothing to derive one from.

    1. ``Idempotency-Key`` (or ``X-Idempotency-Key``) header: the key is scoped by ``api_key_id`` and
       ``operation`` (two connections or two operations never collide). The body is not part of the key: a
       different body with the same key is answered 422 by the runner. Invalid keys (longer than 255
       characters, control characters) raise a 400.
    2. Power Automate run headers: ``x-ms-workflow-run-id`` plus the action's identity - the action name
       ``x-ms-workflow-operation-name`` if present, else ``x-ms-action-tracking-id``, else
       ``x-ms-client-tracking-id`` - plus the repetition headers of loops when present
       (``x-ms-workflow-repeatitem-*``) and the hash of the request (body + ``scope``). These are identical
       on every retry of one action in one run. Two calls of the same action in the same run with the same
       inputs therefore count as one (the second gets the first's answer).
    3. Otherwise None.

    ``scope``: path and query parameters that identify the target (e.g. ``{"automationId": "42"}``); pass the
    same value to :func:`body_hash`.
    Returned keys are opaque hex digests (``k1:``/``r1:`` prefix, 67 characters): nothing a caller sent is
    stored in clear.
    """
    h = _header_map(headers or {})
    explicit = h.get("idempotency-key") or h.get("x-idempotency-key")
    if explicit:
        if len(explicit) > MAX_IDEMPOTENCY_KEY_LENGTH or any(ord(c) < 0x20 or ord(c) == 0x7F for c in explicit):
            raise invalid("Idempotency-Key",
                          f"The Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable "
                          "characters.", code="INVALID_IDEMPOTENCY_KEY")
        return "k1:" + _digest("explicit", api_key_id or "", operation, explicit)
    run_id = h.get("x-ms-workflow-run-id")
    if not run_id:
        return None
    action = (h.get("x-ms-workflow-operation-name") or h.get("x-ms-action-tracking-id")
              or h.get("x-ms-client-tracking-id"))
    if not action:
        return None
    workflow = h.get("x-ms-workflow-id") or h.get("x-ms-workflow-name") or ""
    repeat = [f"{name}={h[name]}" for name in _REPEAT_HEADERS if h.get(name)]
    return "r1:" + _digest("run", api_key_id or "", operation, workflow, run_id, action, *repeat,
                           body_hash(body_bytes, scope))


# ---------------------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------------------


@dataclass
class KeyState:
    """What the ledger knows about an idempotency key (internal to the runner and the ledger)."""

    job_id: str
    status: str
    retryable: bool
    body_hash: str | None
    attempts: int
    lease_expires_at: datetime | None


def problem_body(problem: Problem, *, job_id: str | None, request_id: str | None) -> dict[str, Any]:
    body = problem.to_dict(request_id=request_id)
    if job_id:
        body.setdefault("jobId", job_id)
    return body


def problem_headers(problem: Problem) -> dict[str, str]:
    headers = dict(problem.headers)
    headers["Content-Type"] = PROBLEM_CONTENT_TYPE
    return headers


def _in_progress_error(state: KeyState, now: datetime, retry_after: int) -> ActionError:
    if state.lease_expires_at is not None:
        remaining = (state.lease_expires_at - now).total_seconds()
        retry_after = max(1, min(retry_after, int(remaining) + 1))
    return ActionError(409, "REQUEST_IN_PROGRESS",
                       "The same call (same idempotency key) is still being processed. Retry in a few seconds "
                       "to get its result.", headers={"Retry-After": str(retry_after)}, jobId=state.job_id)


def run_call(ledger: Ledger, call: ActionCall, work: Callable[[JobContext], ActionResult]) -> Answer:
    """Run ``work`` at most once per idempotency key (see the module docstring). The body of ``Ledger.run``."""
    if call.idempotency_key is None:
        job_id = ledger._insert(call, ledger._now())
        return _execute(ledger, call, work, job_id, attempt=1, upstream_ids=None)

    for _ in range(8):
        now = ledger._now()
        job_id = ledger._insert_keyed(call, now)
        if job_id is not None:
            return _execute(ledger, call, work, job_id, attempt=1, upstream_ids=None)
        state = ledger._key_state(call.idempotency_key)
        if state is None:  # purged between our INSERT and SELECT: try again
            continue
        if state.body_hash != call.body_hash:
            raise ActionError(422, "IDEMPOTENCY_KEY_REUSED",
                              "This idempotency key was already used for a call with different inputs. Use a "
                              "new key for a new call.", jobId=state.job_id)
        if state.status == IN_PROGRESS:
            if state.lease_expires_at is not None and state.lease_expires_at <= now:
                # the worker that owned it is gone: never run twice - the outcome is unknown
                ledger._mark_outcome_unknown(state.job_id, state.attempts, now)
                continue
            raise _in_progress_error(state, now, ledger.in_progress_retry_after)
        if state.status == FAILED and state.retryable:
            taken = ledger._take_over(state.job_id, state.attempts, call, now)
            if taken is None:  # someone else took it first (or it changed): look again
                continue
            return _execute(ledger, call, work, state.job_id, attempt=state.attempts + 1, upstream_ids=taken)
        answer = ledger._stored_answer(state.job_id)
        if answer is not None:
            return answer
    # the record keeps changing under us: behave like a call in progress
    state = ledger._key_state(call.idempotency_key)
    if state is not None:
        raise _in_progress_error(state, ledger._now(), ledger.in_progress_retry_after)
    raise ActionError(409, "REQUEST_IN_PROGRESS", "The same call is being processed. Retry in a few seconds.",
                      headers={"Retry-After": str(ledger.in_progress_retry_after)})


def _execute(ledger: Ledger, call: ActionCall, work: Callable[[JobContext], ActionResult], job_id: str, *,
             attempt: int, upstream_ids: dict[str, list[str]] | None) -> Answer:
    ctx = JobContext(ledger, job_id, attempt, upstream_ids)
    started = time.monotonic()
    keyed = call.idempotency_key is not None
    try:
        result = work(ctx)
        if not isinstance(result, ActionResult):
            raise TypeError(f"work must return an ActionResult, not {type(result).__name__}")
    except BaseException as exc:  # noqa: BLE001 - every outcome is recorded, then re-raised when unexpected
        duration_ms = int((time.monotonic() - started) * 1000)
        problem = to_problem(exc) if isinstance(exc, Exception) else None
        if problem is None:
            try:
                ledger._finish(job_id, attempt, status=FAILED, http_status=500, result_code="INTERNAL_ERROR",
                               message=f"Unexpected error ({type(exc).__name__}); the call may be retried.",
                               upstream_ids=ctx.upstream_ids, duration_ms=duration_ms, retryable=True,
                               response=None, known_secrets=call.known_secrets)
            except Exception:  # pragma: no cover - the database is gone too; the lease will expire
                log.exception("could not record the failure of job %s", job_id)
            raise
        body = problem_body(problem, job_id=job_id, request_id=call.request_id)
        headers = problem_headers(problem)
        transient = problem.transient
        ledger._finish(job_id, attempt, status=FAILED, http_status=problem.status, result_code=problem.code,
                       message=problem.detail, upstream_ids=ctx.upstream_ids, duration_ms=duration_ms,
                       retryable=transient, known_secrets=call.known_secrets,
                       response=None if transient or not keyed else (problem.status, headers, body))
        return Answer(problem.status, body, headers, replayed=False, job_id=job_id)

    duration_ms = int((time.monotonic() - started) * 1000)
    merge_upstream_ids(ctx.upstream_ids, result.upstream_ids)
    headers = {"Content-Type": JSON_CONTENT_TYPE, **result.headers}
    body = dict(result.body)
    ledger._finish(job_id, attempt, status=COMPLETED, http_status=result.status, result_code=result.result_code,
                   message=result.message, upstream_ids=ctx.upstream_ids, duration_ms=duration_ms,
                   retryable=False, response=(result.status, headers, body) if keyed else None,
                   known_secrets=call.known_secrets)
    return Answer(result.status, body, headers, replayed=False, job_id=job_id)


def outcome_unknown_problem() -> Problem:
    return Problem(OUTCOME_UNKNOWN_STATUS, "OUTCOME_UNKNOWN", "Conflict", OUTCOME_UNKNOWN_MESSAGE)


def lease_until(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
