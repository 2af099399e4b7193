"""Exactly-once building blocks: idempotency keys, request hashes and the value types of a job.

Power Automate retries a call on 408/429/5xx and timeouts (up to 8 times), sometimes while the first attempt is
still running, and it gives up on a synchronous answer after 120 s. The runner (:mod:`service.actions.runner`)
therefore runs every write action at most once per idempotency key and answers within a deadline; this module
holds what it and the actions share:

* :func:`derive_key` / :func:`body_hash`: the key of a logical call and the hash of its inputs;
* :class:`ActionCall` (the typed call object: what was asked, by which caller, over which connection - built
  once by the HTTP layer, or from the record of a resumed job), :class:`ActionResult` (what the work returns),
  :class:`Answer` (the outcome the HTTP layer turns into a response: it alone adds Content-Type, Location,
  Retry-After of a 202 and Idempotent-Replayed) and :class:`JobContext` (what the work may tell the runner
  while it runs: upstream ids, progress, what a read-back needs, and the guard of calls not safe to repeat).

Key derivation (:func:`derive_key`): an explicit ``Idempotency-Key`` header, scoped by caller and operation; else
the Power Automate run headers (``x-ms-workflow-run-id`` + action name/tracking id + repetition headers) plus a
hash of the request; else no key (the call is still recorded).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from service.actions.problems import Problem, invalid
from service.providers.base import ContactRef
from service.providers.http import UnsafeCallGuard

if TYPE_CHECKING:  # pragma: no cover - typing only
    from service.actions.connection import Connection

log = logging.getLogger(__name__)

IN_PROGRESS = "InProgress"
COMPLETED = "Completed"
FAILED = "Failed"
STATUSES = (IN_PROGRESS, COMPLETED, FAILED)

#: ``mode`` of a job that answered 202 and continues in the background
ASYNC = "async"

#: status of the stored answer once a record's outcome is unknown (a 4xx that Power Automate does not retry: a
#: retry could not learn more, and running the call again could apply it twice)
OUTCOME_UNKNOWN_STATUS = 409
OUTCOME_UNKNOWN_MESSAGE = (
    "The outcome of this call is unknown: the marketing platform may have applied it, but its answer never "
    "came back (or the service stopped while waiting for it). Check in the marketing platform whether the "
    "action took effect before running it again with a new idempotency key or flow run."
)

#: one rule for the Idempotency-Key header, also stated in openapi.yaml (parameters/IdempotencyKey; a contract
#: test compares them): 1 to 200 characters, no control characters
MAX_IDEMPOTENCY_KEY_LENGTH = 200
IDEMPOTENCY_KEY_PATTERN = r"^[^\x00-\x1F\x7F]+$"
_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)
INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
IDEMPOTENCY_KEY_RULE = (f"The Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters without "
                        "control characters.")

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
    #: who called: an opaque identity (``key:<key id>`` for an API key, ``aad:<tenant>:<object id>`` for Entra
    #: ID); jobs are scoped to it. Never a secret.
    caller: str | None = None
    request_id: str | None = None
    #: the caller's run headers (service.logs.correlation_from_headers: whitelisted, capped), stored on the job
    correlation: dict[str, str] | None = None
    contact: ContactRef | None = None
    #: the inputs as given; the ledger redacts them again (secrets removed, e-mails and field values masked)
    inputs: dict[str, Any] | None = None
    idempotency_key: str | None = None  # from derive_key(); None: recorded, no replay
    body_hash: str | None = None  # from body_hash(); compared on replay (422 when it differs)
    #: secret values to scrub wherever they appear in inputs/messages (e.g. the caller's API key); never stored
    known_secrets: tuple[str, ...] = field(default=(), repr=False)
    #: what the work needs to run again in another process (path parameters and body): stored encrypted while
    #: the job runs, so that any instance can resume it after a crash
    params: dict[str, Any] = field(default_factory=dict, repr=False)
    body: Any = field(default=None, repr=False)
    #: the platform account the call is for; None: the service's own (single mode). Hosted mode (issue 22)
    #: sets it from the request's headers, or from the job's encrypted record when the job is resumed.
    connection: Connection | None = field(default=None, repr=False)
    #: whose rights the Dataverse timeline uses (service.actions.timeline.DataverseIdentity); None: the app's
    identity: Any = field(default=None, repr=False)


@dataclass
class ActionResult:
    """What the work returns on success."""

    body: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    result_code: str | None = "OK"
    message: str | None = None
    #: e.g. {"automationContactIds": ["123", "124"]}
    upstream_ids: dict[str, list[str]] = field(default_factory=dict)
    #: extra response headers to send (and replay)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    """The outcome of a call: ``status``, JSON ``body`` (a result, or a problem's document), the ``headers`` the
    outcome itself brings (a problem's Retry-After, what a stored answer kept). The HTTP layer
    (service.api.answers) adds the rest: Content-Type, and

    * ``replayed`` - the answer comes from the ledger: ``Idempotent-Replayed: true``;
    * ``accepted`` - a 202: the work continues in the background; the absolute ``Location`` of the job's result
      (``/jobs/{jobId}/result``) and ``Retry-After: retry_after`` (when to poll it).
    """

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    job_id: str | None = None
    accepted: bool = False
    #: seconds until a 202's Location is worth polling
    retry_after: int | None = None

    @property
    def is_problem(self) -> bool:
        return self.status >= 400


class JobSink(Protocol):  # pragma: no cover - typing only
    def progress_changed(self, ctx: JobContext) -> None: ...


class _NoGuard:
    """The guard of work that no runner watches (a JobContext built on its own, e.g. in a test)."""

    def before_unsafe_call(self, call: str) -> None:
        pass


NO_GUARD: UnsafeCallGuard = _NoGuard()


class JobContext:
    """Handed to the work: the job id (to put into the response), upstream ids, progress and read-back data.

    Nothing here writes to the database by itself: the runner records upstream ids when the job finishes,
    progress together with the lease renewal of long jobs, and the read-back data together with the note that a
    call which is not safe to repeat is about to be sent.
    """

    def __init__(self, job_id: str, attempt: int, upstream_ids: dict[str, list[str]] | None = None,
                 sink: JobSink | None = None, background: bool = False, guard: UnsafeCallGuard = NO_GUARD):
        self.job_id = job_id
        self.attempt = attempt
        self.upstream_ids: dict[str, list[str]] = {k: list(v) for k, v in (upstream_ids or {}).items()}
        self.progress: dict[str, int] | None = None
        #: what settles a call that is not safe to repeat when its answer is lost (see service.actions.tags)
        self.readback: dict[str, Any] | None = None
        #: True when the job runs in the background (resumed after a crash, or after a 202)
        self.background = background
        #: hand it to a provider method that makes a call which is not safe to repeat (``guard=job.guard``):
        #: the runner is told just before the call is sent (service.providers.http.send_unsafe)
        self.guard = guard
        self._sink = sink

    def add_upstream_ids(self, name: str, ids: Any) -> None:
        """Record upstream ids (``name`` e.g. ``automationContactIds``); stored with the outcome."""
        values = [ids] if isinstance(ids, (str, int)) else list(ids or [])
        merge_upstream_ids(self.upstream_ids, {name: values})

    def set_progress(self, done: int, total: int) -> None:
        """Progress of long work (shown by GET /jobs while the job runs in the background)."""
        self.progress = {"done": int(done), "total": int(total)}
        if self._sink is not None:
            self._sink.progress_changed(self)

    def note_readback(self, info: dict[str, Any]) -> None:
        """What a read-back needs to settle the next call that is not safe to repeat (JSON-safe, nothing
        personal): stored with the note that the call is about to be sent."""
        self.readback = dict(info)


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


def check_idempotency_key(value: str) -> None:
    """Raise the one 400 ``INVALID_IDEMPOTENCY_KEY`` when ``value`` breaks the rule (see the constants)."""
    if not value or len(value) > MAX_IDEMPOTENCY_KEY_LENGTH or not _KEY_RE.match(value):
        raise invalid("Idempotency-Key", IDEMPOTENCY_KEY_RULE, code=INVALID_IDEMPOTENCY_KEY)


def derive_key(operation: str, headers: Mapping[str, str] | Any, body_bytes: bytes | str | None,
               caller: str | None, *, scope: Mapping[str, Any] | str | None = None,
               request_hash: str | None = None) -> str | None:
    """The idempotency key of a call, or None when the call carries nothing to derive one from.

    1. ``Idempotency-Key`` (or ``X-Idempotency-Key``) header: the key is scoped by ``api_key_id`` and
       ``operation`` (two callers or two operations never collide). The body is not part of the key: a
       different body with the same key is answered 422 by the runner. Invalid keys (longer than 200
       characters, control characters) raise a 400 ``INVALID_IDEMPOTENCY_KEY``.
    2. Power Automate run headers: ``x-ms-workflow-run-id`` plus the action's identity - the action name
       ``x-ms-workflow-operation-name`` if present, else ``x-ms-action-tracking-id``, else
       ``x-ms-client-tracking-id`` - plus the repetition headers of loops when present
       (``x-ms-workflow-repeatitem-*``) and the hash of the request (body + ``scope``). These are identical
       on every retry of one action in one run. Two calls of the same action in the same run with the same
       inputs therefore count as one (the second gets the first's answer).
    3. Otherwise None.

    ``scope``: path and query parameters that identify the target (e.g. ``{"automationId": "42"}``); pass the
    same value to :func:`body_hash`. ``request_hash``: that :func:`body_hash`, when the caller has it already
    (the request is then hashed once).
    Returned keys are opaque hex digests (``k1:``/``r1:`` prefix, 67 characters): nothing a caller sent is
    stored in clear.
    """
    h = _header_map(headers or {})
    explicit = h.get("idempotency-key") or h.get("x-idempotency-key")
    if explicit:
        check_idempotency_key(explicit)
        return "k1:" + _digest("explicit", caller or "", operation, explicit)
    run_id = h.get("x-ms-workflow-run-id")
    if not run_id:
        return None
    action = (h.get("x-ms-workflow-operation-name") or h.get("x-ms-action-tracking-id")
              or h.get("x-ms-client-tracking-id"))
    if not action:
        return None
    workflow = h.get("x-ms-workflow-id") or h.get("x-ms-workflow-name") or ""
    repeat = [f"{name}={h[name]}" for name in _REPEAT_HEADERS if h.get(name)]
    return "r1:" + _digest("run", caller or "", operation, workflow, run_id, action, *repeat,
                           request_hash or body_hash(body_bytes, scope))


# ---------------------------------------------------------------------------------------------------------
# Stored state and problems
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
    mode: str | None = None


def problem_body(problem: Problem, *, job_id: str | None, request_id: str | None) -> dict[str, Any]:
    body = problem.to_dict(request_id=request_id)
    if job_id:
        body.setdefault("jobId", job_id)
    return body


def outcome_unknown_problem(detail: str | None = None, **ext: Any) -> Problem:
    return Problem(OUTCOME_UNKNOWN_STATUS, "OUTCOME_UNKNOWN", "Conflict", detail or OUTCOME_UNKNOWN_MESSAGE,
                   ext=ext)


def lease_until(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
