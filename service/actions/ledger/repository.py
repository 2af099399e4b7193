"""The ledger's repository: every query and statement on the job table (:class:`Ledger`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service import metrics, privacy
from service.actions import idempotency as idem
from service.actions.idempotency import ASYNC, FAILED, IN_PROGRESS, STATUSES, ActionCall, Answer, KeyState
from service.actions.ledger.hot import HotStatements
from service.actions.ledger.model import Job, aware, new_job_id, utcnow
from service.actions.ledger.records import (
    RECORD_COLUMNS,
    Claimed,
    JobRecord,
    decode_cursor,
    encode_cursor,
    record_from_row,
)
from service.actions.problems import ActionError, Problem, invalid
from service.actions.sealing import Keyring, Sealer
from service.actions.storage import create_engine

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 30.0
MAX_LIST_LIMIT = 500

T = Job.__table__
c = T.c


#: hot-path statements built once: the SET/VALUES columns come from the parameters at execution; they run on the
#: pooled connection's own DBAPI cursor, compiled once per set of columns (service/actions/ledger/hot.py)
_INSERT = sa.insert(T)
_UPDATE_ATTEMPT = sa.update(T).where(c.id == sa.bindparam("_job_id"), c.attempts == sa.bindparam("_attempt"))
_UPDATE_RUNNING = _UPDATE_ATTEMPT.where(c.status == IN_PROGRESS)


class Ledger:
    """Repository of job records. Thread-safe and fork-friendly when created in the worker process (after
    gunicorn forks). Cheap hot path: one INSERT before the work and one UPDATE after it, on pooled connections.
    """

    def __init__(self, engine: Engine, *, email_hash_key: bytes, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 clock: Callable[[], datetime] | None = None, owns_engine: bool = False,
                 owner: str | None = None, credentials_box: Any = None) -> None:
        if isinstance(email_hash_key, str):
            email_hash_key = email_hash_key.encode("utf-8")
        if not email_hash_key:
            raise ValueError("Ledger needs a non-empty email_hash_key (settings: LEDGER_HASH_KEY)")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be > 0")
        self.engine = engine
        self.lease_seconds = float(lease_seconds)
        #: who holds leases taken through this ledger (host:pid by default)
        self.owner = (owner or f"{os.uname().nodename}:{os.getpid()}")[:64]
        self._clock = clock or utcnow
        self._owns_engine = owns_engine
        self._hot = HotStatements(engine)
        keys = Keyring(email_hash_key)
        self._email_key = keys.identifier_key("ledger/email-hash")
        self._sealer = Sealer(keys, "ledger/response")
        #: hosted mode: seals the connection of a job that goes on after its request (service.actions.tenancy)
        self.credentials_box = credentials_box

    @classmethod
    def from_url(cls, database_url: str, *, email_hash_key: bytes, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 pool_size: int = 5, max_overflow: int = 10, **kwargs: Any) -> Ledger:
        """A ledger on its own engine (:func:`service.actions.storage.create_engine`). The schema must exist
        (:func:`service.actions.storage.ensure_schema`)."""
        engine = create_engine(database_url, pool_size=pool_size, max_overflow=max_overflow)
        return cls(engine, email_hash_key=email_hash_key, lease_seconds=lease_seconds, owns_engine=True, **kwargs)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def now(self) -> datetime:
        return aware(self._clock())

    # -- queries ------------------------------------------------------------------------------------------
    def get(self, job_id: str, *, caller: str | None = None) -> JobRecord | None:
        """The record, or None. With ``caller``, only when that caller made the call."""
        if not job_id or len(job_id) > 40:
            return None
        q = sa.select(*RECORD_COLUMNS).where(c.id == job_id)
        if caller is not None:
            q = q.where(c.caller == caller)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return record_from_row(row) if row is not None else None

    def list(self, *, status: str | None = None, operation: str | None = None, email: str | None = None,
             since: datetime | None = None, until: datetime | None = None, limit: int = 50,
             cursor: str | None = None, caller: str | None = None) -> tuple[list[JobRecord], str | None]:
        """Records, newest first, and the cursor of the next page (None on the last page).

        ``email`` matches through the keyed hash of the normalised address; ``since``/``until`` bound
        ``createdAt`` (inclusive/exclusive; naive datetimes are UTC); ``caller`` limits to one caller's jobs.
        """
        if status is not None and status not in STATUSES:
            raise invalid("status", f"status must be one of {', '.join(STATUSES)}.")
        limit = max(1, min(int(limit or 50), MAX_LIST_LIMIT))
        q = sa.select(*RECORD_COLUMNS)
        if status:
            q = q.where(c.status == status)
        if operation:
            q = q.where(c.operation == operation)
        if email is not None and email.strip():
            q = q.where(c.contact_email_hash == self.email_hash(email))
        if caller is not None:
            q = q.where(c.caller == caller)
        if since is not None:
            q = q.where(c.created_at >= aware(since))
        if until is not None:
            q = q.where(c.created_at < aware(until))
        if cursor:
            at, last_id = decode_cursor(cursor)
            q = q.where(sa.or_(c.created_at < at, sa.and_(c.created_at == at, c.id < last_id)))
        q = q.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        items = [record_from_row(r) for r in rows[:limit]]
        next_cursor = encode_cursor(items[-1]) if len(rows) > limit else None
        return items, next_cursor

    def record_timeline(self, job_id: str, timeline: dict[str, Any]) -> None:
        """Record the outcome of the job's Dataverse timeline note (``{status, reason?, message?, noteId?}``)."""
        detail = {k: (privacy.redact_text(v)[:500] if isinstance(v, str) else v) for k, v in timeline.items()
                  if k in ("status", "reason", "message", "noteId")}
        with self.engine.begin() as conn:
            conn.execute(sa.update(T).where(c.id == job_id).values(
                timeline_status=str(timeline.get("status"))[:16], timeline=detail, updated_at=self.now()))

    def email_hash(self, email: str) -> str:
        return privacy.email_hash(email, self._email_key)

    # -- writing a call -----------------------------------------------------------------------------------
    def _values(self, call: ActionCall, now: datetime, job_id: str) -> dict[str, Any]:
        email = call.contact.email if call.contact is not None else None
        external_id = call.contact.external_id if call.contact is not None else None
        return {
            "id": job_id,
            "idempotency_key": call.idempotency_key,
            "body_hash": call.body_hash,
            "operation": privacy.clean_text(call.operation)[:64],
            "provider": call.provider[:32],
            "caller": (call.caller or None) and privacy.clean_text(call.caller)[:255],
            "request_id": (call.request_id or None) and privacy.clean_text(call.request_id)[:128],
            "correlation": privacy.json_safe(dict(call.correlation)) if call.correlation else None,
            "contact_email_masked": privacy.mask_email(email) if email else None,
            "contact_email_hash": self.email_hash(email) if email and email.strip() else None,
            "contact_external_id": (privacy.clean_text(str(external_id))[:255]
                                    if external_id not in (None, "") else None),
            "inputs": (privacy.redact_inputs(call.inputs, known_secrets=call.known_secrets)
                       if call.inputs is not None else None),
            "status": IN_PROGRESS,
            "retryable": False,
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
            "lease_expires_at": idem.lease_until(now, self.lease_seconds),
            "lease_owner": self.owner,
            "payload": self._seal_payload(job_id, call),
        }

    def insert(self, call: ActionCall, now: datetime | None = None) -> str | None:
        """Insert an InProgress record for ``call`` (lease held by this process); its job id. None when
        ``call.idempotency_key`` already exists (another call with that key got there first)."""
        now = now or self.now()
        job_id = new_job_id(now)
        try:
            self._hot.execute(_INSERT, self._values(call, now, job_id))
        except sa.exc.IntegrityError:
            if call.idempotency_key is None:
                raise
            return None
        return job_id

    def key_state(self, key: str) -> KeyState | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c.id, c.status, c.retryable, c.body_hash, c.attempts, c.lease_expires_at,
                                         c.mode).where(c.idempotency_key == key)).first()
        if row is None:
            return None
        return KeyState(job_id=row.id, status=row.status, retryable=bool(row.retryable), body_hash=row.body_hash,
                        attempts=row.attempts, lease_expires_at=row.lease_expires_at, mode=row.mode)

    def take_over(self, job_id: str, seen_attempts: int, call: ActionCall,
                  now: datetime | None = None) -> dict[str, list[str]] | None:
        """Atomically move a retryable Failed record back to InProgress (attempts + 1). Returns its upstream
        ids when this caller won, None when another caller did (or the record changed)."""
        now = now or self.now()
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(T)
                .where(c.id == job_id, c.status == FAILED, c.retryable.is_(True), c.attempts == seen_attempts)
                .values(status=IN_PROGRESS, retryable=False, attempts=seen_attempts + 1, updated_at=now,
                        lease_expires_at=idem.lease_until(now, self.lease_seconds), lease_owner=self.owner,
                        request_id=(call.request_id or None) and privacy.clean_text(call.request_id)[:128],
                        http_status=None, result_code=None, message=None, finished_at=None, duration_ms=None,
                        response_status=None, response_headers=None, response_body=None, unsafe_call=None,
                        payload=self._seal_payload(job_id, call), credentials=None))
            if res.rowcount != 1:
                return None
            ids = conn.execute(sa.select(c.upstream_ids).where(c.id == job_id)).scalar_one_or_none()
        return dict(ids or {})

    def mark_unsafe(self, job_id: str, attempt: int, info: dict[str, Any]) -> bool:
        """Note, before it is sent, that a call which is not safe to repeat may reach the platform."""
        return self._hot.execute(_UPDATE_RUNNING, {"_job_id": job_id, "_attempt": attempt,
                                                   "unsafe_call": privacy.json_safe(info),
                                                   "updated_at": self.now()}) == 1

    def mark_async(self, job_id: str, attempt: int, connection: Any = None) -> bool:
        """The call answered 202: the job continues in the background. False when it finished meanwhile.
        Hosted mode: ``connection``'s credentials are kept with it, sealed, until it ends (another worker may
        have to resume it)."""
        values: dict[str, Any] = {"_job_id": job_id, "_attempt": attempt, "mode": ASYNC, "updated_at": self.now()}
        if connection is not None and self.credentials_box is not None:
            values["credentials"] = self.credentials_box.seal(job_id, connection)
        if self._hot.execute(_UPDATE_RUNNING, values) == 1:
            metrics.job_accepted()
            return True
        return False

    def renew(self, items: Iterable[tuple[str, int, dict[str, int] | None]]) -> set[str]:
        """Extend the leases of running jobs (and store their progress); returns the ids whose lease this
        process no longer holds (taken over after it expired)."""
        now = self.now()
        lost: set[str] = set()
        until = idem.lease_until(now, self.lease_seconds)
        with self.engine.begin() as conn:
            for job_id, attempt, progress in items:
                values: dict[str, Any] = {"_job_id": job_id, "_attempt": attempt, "lease_expires_at": until,
                                          "updated_at": now}
                if progress is not None:
                    values["progress"] = progress
                if conn.execute(_UPDATE_RUNNING, values).rowcount != 1:
                    lost.add(job_id)
        return lost

    def finish(self, job_id: str, attempt: int, *, status: str, http_status: int | None, result_code: str | None,
               message: str | None, upstream_ids: dict[str, list[str]], duration_ms: int, retryable: bool,
               response: tuple[int, dict[str, str], dict[str, Any]] | None,
               known_secrets: tuple[str, ...] = (), progress: dict[str, int] | None = None) -> bool:
        """Record the outcome of attempt ``attempt`` (and drop the kept request). The condition on ``attempts``
        keeps a late worker from overwriting a record that was taken over or settled after its lease expired."""
        now = self.now()
        values: dict[str, Any] = {
            "status": status, "http_status": http_status,
            "result_code": (result_code or None) and privacy.clean_text(result_code)[:64],
            "message": privacy.redact_text(message, known_secrets)[:2000] if message else None,
            "upstream_ids": privacy.json_safe(upstream_ids) or None, "duration_ms": duration_ms,
            "retryable": retryable, "finished_at": now, "updated_at": now, "lease_expires_at": None,
            "lease_owner": None, "payload": None, "credentials": None,
            "response_status": None, "response_headers": None, "response_body": None,
        }
        if progress is not None:
            values["progress"] = progress
        if response is not None:
            r_status, r_headers, r_body = response
            values.update(response_status=r_status, response_headers=_safe_headers(r_headers),
                          response_body=self._seal(job_id, r_body))
        if self._hot.execute(_UPDATE_RUNNING, {"_job_id": job_id, "_attempt": attempt, **values}) != 1:
            log.warning("job %s: attempt %s finished after its lease was taken over; outcome not recorded",
                        job_id, attempt)
            return False
        metrics.job_finished(status, result_code)
        return True

    def reschedule(self, job_id: str, attempt: int, at: datetime, problem: Problem,
                   upstream_ids: dict[str, list[str]]) -> bool:
        """A background attempt failed transiently: the job stays InProgress and becomes due again at ``at``
        (any process may claim it then)."""
        with self.engine.begin() as conn:
            res = conn.execute(_UPDATE_RUNNING, {
                "_job_id": job_id, "_attempt": attempt, "lease_expires_at": at, "lease_owner": None,
                "unsafe_call": None, "updated_at": self.now(), "result_code": problem.code[:64],
                "message": privacy.redact_text(problem.detail)[:2000],
                "upstream_ids": privacy.json_safe(upstream_ids) or None})
        return res.rowcount == 1

    def settle_unknown(self, job_id: str, attempt: int, problem: Problem, request_id: str | None,
                       upstream_ids: dict[str, list[str]] | None = None) -> bool:
        """Finish a job whose call that is not safe to repeat may have been applied: Failed/OUTCOME_UNKNOWN,
        with that answer kept for every retry."""
        body = idem.problem_body(problem, job_id=job_id, request_id=request_id)
        return self.finish(job_id, attempt, status=FAILED, http_status=problem.status, result_code=problem.code,
                           message=problem.detail, upstream_ids=upstream_ids or {}, duration_ms=0,
                           retryable=False, response=(problem.status, dict(problem.headers), body))

    def claim_due(self, limit: int, now: datetime | None = None) -> list[Claimed]:
        """Claim up to ``limit`` InProgress jobs whose lease expired (their worker died, or a background retry
        is due): attempts + 1, lease held by this process. PostgreSQL skips rows another instance is claiming
        (``FOR UPDATE SKIP LOCKED``); on SQLite the conditional UPDATE alone decides (writers are serialised)."""
        if limit <= 0:
            return []
        now = now or self.now()
        out: list[Claimed] = []
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(c.id, c.attempts, c.operation, c.caller, c.request_id, c.unsafe_call, c.payload,
                          c.upstream_ids, c.progress, c.credentials)
                .where(c.status == IN_PROGRESS, c.lease_expires_at < now)
                .order_by(c.lease_expires_at).limit(limit)
                .with_for_update(skip_locked=True)).all()
            for row in rows:
                res = conn.execute(
                    sa.update(T).where(c.id == row.id, c.attempts == row.attempts, c.status == IN_PROGRESS,
                                       c.lease_expires_at < now)
                    .values(attempts=row.attempts + 1, lease_owner=self.owner, mode=ASYNC, updated_at=now,
                            lease_expires_at=idem.lease_until(now, self.lease_seconds)))
                if res.rowcount != 1:
                    continue
                try:
                    params, body = self._open_payload(row.id, row.payload)
                except ValueError:
                    params, body = None, None
                connection, lost = None, False
                if row.credentials:
                    try:
                        connection = self.credentials_box.open(row.id, row.credentials)
                    except (AttributeError, ValueError):  # no box (single mode) or a key that is gone
                        lost = True
                out.append(Claimed(job_id=row.id, attempt=row.attempts + 1, operation=row.operation,
                                   caller=row.caller, request_id=row.request_id, unsafe_call=row.unsafe_call,
                                   params=params if isinstance(params, dict) else {}, body=body,
                                   upstream_ids=dict(row.upstream_ids or {}),
                                   progress=row.progress if isinstance(row.progress, dict) else None,
                                   connection=connection, credentials_lost=lost))
        return out

    def stored_answer(self, job_id: str, *, caller: str | None = None) -> Answer | None:
        """The answer kept for replays of a finished job; None while it runs (or when it may run again)."""
        q = sa.select(c.status, c.retryable, c.http_status, c.result_code, c.message, c.request_id,
                      c.response_status, c.response_headers, c.response_body).where(c.id == job_id)
        if caller is not None:
            q = q.where(c.caller == caller)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None or row.status == IN_PROGRESS or (row.status == FAILED and row.retryable):
            return None
        if row.response_body is None:
            # a finished record without a kept answer (written before answers were kept for every call)
            problem = Problem(409, "STORED_ANSWER_UNAVAILABLE", "Conflict",
                              "This call was already processed but its answer was not kept. Look up the job "
                              "(GET /jobs/{jobId}) for its outcome.")
            return Answer(problem.status, idem.problem_body(problem, job_id=job_id, request_id=row.request_id),
                          dict(problem.headers), replayed=True, job_id=job_id)
        try:
            body = self._open(job_id, row.response_body)
        except ValueError as exc:
            raise ActionError(409, "STORED_ANSWER_UNAVAILABLE",
                              "This call was already processed but its answer can no longer be read (the ledger "
                              "key changed). Look up the job for its outcome.", jobId=job_id) from exc
        return Answer(row.response_status or row.http_status or 200, body, dict(row.response_headers or {}),
                      replayed=True, job_id=job_id)

    # -- maintenance --------------------------------------------------------------------------------------
    def recover_stale(self, now: datetime | None = None) -> tuple[int, int]:
        """For a service that is down: settle expired jobs whose call that is not safe to repeat may have been
        applied and that no read-back can settle (OUTCOME_UNKNOWN). Returns ``(settled, left)``: the others are
        resumed (or settled by read-back) by the service's workers when it runs."""
        now = aware(now) if now is not None else self.now()
        with self.engine.connect() as conn:
            stale = conn.execute(sa.select(c.id, c.attempts, c.unsafe_call, c.request_id).where(
                c.status == IN_PROGRESS, c.lease_expires_at < now)).all()
        settled = 0
        for job_id, attempts, unsafe, request_id in stale:
            if not unsafe or (isinstance(unsafe, dict) and unsafe.get("readback")):
                continue
            with self.engine.begin() as conn:
                res = conn.execute(sa.update(T).where(c.id == job_id, c.attempts == attempts,
                                                      c.status == IN_PROGRESS, c.lease_expires_at < now)
                                   .values(attempts=attempts + 1, lease_expires_at=idem.lease_until(now, 60)))
            if res.rowcount == 1 and self.settle_unknown(job_id, attempts + 1, idem.outcome_unknown_problem(),
                                                          request_id):
                settled += 1
        return settled, len(stale) - settled

    def purge(self, older_than_days: int, now: datetime | None = None, batch_size: int = 5000) -> int:
        """Delete records created more than ``older_than_days`` days ago (not running ones); returns how many."""
        now = aware(now) if now is not None else self.now()
        cutoff = now - timedelta(days=older_than_days)
        total = 0
        while True:
            with self.engine.begin() as conn:
                ids = [r[0] for r in conn.execute(
                    sa.select(c.id).where(c.created_at < cutoff, c.status != IN_PROGRESS)
                    .limit(batch_size)).all()]
                if not ids:
                    return total
                total += conn.execute(sa.delete(T).where(c.id.in_(ids))).rowcount or 0
            if len(ids) < batch_size:
                return total

    # -- encryption ---------------------------------------------------------------------------------------
    def _seal_payload(self, job_id: str, call: ActionCall) -> str:
        return self._seal(job_id, {"params": call.params or {}, "body": call.body}, purpose=b"payload:")

    def _open_payload(self, job_id: str, token: str | None) -> tuple[Any, Any]:
        if not token:
            raise ValueError("no payload")
        doc = self._open(job_id, token, purpose=b"payload:")
        return doc.get("params"), doc.get("body")

    def _seal(self, job_id: str, body: Any, purpose: bytes = b"") -> str:
        return self._sealer.seal(body, purpose + job_id.encode("utf-8"))

    def _open(self, job_id: str, token: str, purpose: bytes = b"") -> Any:
        return self._sealer.open(token, purpose + job_id.encode("utf-8"))


_SAFE_HEADERS = {"content-type", "retry-after", "content-language"}


def _safe_headers(headers: dict[str, str]) -> dict[str, str]:
    """Only headers that are safe and meaningful to replay are kept (a Location is rebuilt per request)."""
    return {k: privacy.redact_text(str(v)) for k, v in headers.items() if k.lower() in _SAFE_HEADERS}

