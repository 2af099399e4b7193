"""The job ledger: one record per logical action call, on SQLAlchemy 2 (SQLite file or PostgreSQL).

A record is written (``InProgress``) before the upstream call and finished (``Completed``/``Failed``) after it,
so the ledger shows what was asked, by which connection, the outcome, upstream ids and timings. It is also the
store behind exactly-once execution (:mod:`service.actions.idempotency`): the unique constraint on
``idempotency_key`` decides races between threads, worker processes and instances.

Privacy: no secret and no clear e-mail address is stored. Contacts are kept as a masked address
(``j***@example.com``) plus a keyed hash (HMAC-SHA256 of the normalised address) for filtering; inputs are
redacted (:func:`service.privacy.redact`); the response kept for replays is encrypted (AES-GCM, key derived
from the ledger key, bound to the record id). The key comes from settings (``LEDGER_HASH_KEY``); changing it
makes earlier e-mail filters and stored answers unusable (replays of those answer ``STORED_ANSWER_UNAVAILABLE``).

Schema: Alembic migrations in ``service/migrations`` (``python -m service.db upgrade``); no DDL at request time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from service import privacy
from service.actions import idempotency as idem
from service.actions.idempotency import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    STATUSES,
    ActionCall,
    ActionResult,
    Answer,
    JobContext,
    KeyState,
)
from service.actions.problems import ActionError, invalid

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 150.0  # > Power Automate's 120 s request limit
DEFAULT_RECOVER_INTERVAL = 30.0
DEFAULT_IN_PROGRESS_RETRY_AFTER = 5
MAX_LIST_LIMIT = 500
_RESPONSE_VERSION = "v1."


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def new_job_id(now: datetime | None = None) -> str:
    """``job_`` + a 26-character ULID (time-ordered, 80 random bits), e.g. ``job_01J9Z3M8Q4XKQ7V0T5S2B6R1YA``."""
    ms = int((now or utcnow()).timestamp() * 1000) & ((1 << 48) - 1)
    n = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    chars = []
    for _ in range(26):
        chars.append(alphabet[n & 31])
        n >>= 5
    return "job_" + "".join(reversed(chars))


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = _aware(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return None if value is None else _aware(value)


class Base(DeclarativeBase):
    pass


class Job(Base):
    """A ledger record. Columns mirror the migrations (0001, 0002_timeline; keep them in step)."""

    __tablename__ = "job_ledger"
    __table_args__ = (
        sa.UniqueConstraint("idempotency_key", name="uq_job_ledger_idempotency_key"),
        sa.Index("ix_job_ledger_created", "created_at", "id"),
        sa.Index("ix_job_ledger_status_lease", "status", "lease_expires_at"),
        sa.Index("ix_job_ledger_email_hash", "contact_email_hash"),
        sa.Index("ix_job_ledger_operation_created", "operation", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(80))
    body_hash: Mapped[str | None] = mapped_column(sa.String(64))
    operation: Mapped[str] = mapped_column(sa.String(64))
    provider: Mapped[str] = mapped_column(sa.String(32))
    #: the caller: an API key id, or ``aad:<tenant id>:<object id>`` for Entra ID (0002_timeline widened it)
    api_key_id: Mapped[str | None] = mapped_column(sa.String(128))
    request_id: Mapped[str | None] = mapped_column(sa.String(128))
    contact_email_masked: Mapped[str | None] = mapped_column(sa.String(320))
    contact_email_hash: Mapped[str | None] = mapped_column(sa.String(64))
    contact_external_id: Mapped[str | None] = mapped_column(sa.String(255))
    inputs: Mapped[Any | None] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16))
    retryable: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    http_status: Mapped[int | None] = mapped_column(sa.Integer)
    result_code: Mapped[str | None] = mapped_column(sa.String(64))
    message: Mapped[str | None] = mapped_column(sa.Text)
    upstream_ids: Mapped[Any | None] = mapped_column(sa.JSON)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    response_headers: Mapped[Any | None] = mapped_column(sa.JSON)
    #: encrypted JSON body of the answer kept for replays
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    #: the Dataverse timeline note of a call with ``regarding``: written | failed | skipped, and its details
    timeline_status: Mapped[str | None] = mapped_column(sa.String(16))
    timeline: Mapped[Any | None] = mapped_column(sa.JSON)


T = Job.__table__
c = T.c


#: hot-path statements built once: the SET/VALUES columns come from the parameters at execution, so the
#: statement and its cache key are not rebuilt (and every value not coerced into a new bind) on each call
_INSERT = sa.insert(T)
_UPDATE_ATTEMPT = sa.update(T).where(c.id == sa.bindparam("_job_id"), c.attempts == sa.bindparam("_attempt"))


# ---------------------------------------------------------------------------------------------------------
# Public record
# ---------------------------------------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return _aware(dt).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class JobRecord:
    job_id: str
    operation: str
    provider: str
    status: str
    created_at: datetime
    updated_at: datetime
    attempts: int = 1
    api_key_id: str | None = None
    request_id: str | None = None
    email_masked: str | None = None
    external_id: str | None = None
    inputs: dict[str, Any] | None = None
    http_status: int | None = None
    result_code: str | None = None
    message: str | None = None
    upstream_ids: dict[str, list[str]] = field(default_factory=dict)
    finished_at: datetime | None = None
    duration_ms: int | None = None
    lease_expires_at: datetime | None = None
    retryable: bool = False
    timeline: dict[str, Any] | None = None

    def to_public_dict(self) -> dict[str, Any]:
        """The API representation (camelCase; absent values omitted, never null)."""
        doc: dict[str, Any] = {
            "jobId": self.job_id,
            "operation": self.operation,
            "provider": self.provider,
            "status": self.status,
            "resultCode": self.result_code,
            "message": self.message,
            "httpStatus": self.http_status,
        }
        contact = {k: v for k, v in (("emailMasked", self.email_masked), ("externalId", self.external_id)) if v}
        if contact:
            doc["contact"] = contact
        if self.upstream_ids:
            doc["upstreamIds"] = {k: list(v) for k, v in self.upstream_ids.items()}
        doc.update({
            "attempts": self.attempts,
            "createdAt": _iso(self.created_at),
            "finishedAt": _iso(self.finished_at),
            "durationMs": self.duration_ms,
            "requestId": self.request_id,
        })
        if self.timeline:
            doc["timeline"] = dict(self.timeline)
        return {k: v for k, v in doc.items() if v is not None and v != ""}


def _record(row: Any) -> JobRecord:
    m = row._mapping
    return JobRecord(
        job_id=m["id"], operation=m["operation"], provider=m["provider"], status=m["status"],
        created_at=m["created_at"], updated_at=m["updated_at"], attempts=m["attempts"],
        api_key_id=m["api_key_id"], request_id=m["request_id"], email_masked=m["contact_email_masked"],
        external_id=m["contact_external_id"], inputs=m["inputs"], http_status=m["http_status"],
        result_code=m["result_code"], message=m["message"], upstream_ids=dict(m["upstream_ids"] or {}),
        finished_at=m["finished_at"], duration_ms=m["duration_ms"], lease_expires_at=m["lease_expires_at"],
        retryable=bool(m["retryable"]), timeline=m["timeline"],
    )


_RECORD_COLUMNS = [c.id, c.operation, c.provider, c.status, c.created_at, c.updated_at, c.attempts, c.api_key_id,
                   c.request_id, c.contact_email_masked, c.contact_external_id, c.inputs, c.http_status,
                   c.result_code, c.message, c.upstream_ids, c.finished_at, c.duration_ms, c.lease_expires_at,
                   c.retryable, c.timeline]


# ---------------------------------------------------------------------------------------------------------
# The ledger
# ---------------------------------------------------------------------------------------------------------


class Ledger:
    """Repository of job records + the exactly-once runner.

    Thread-safe and fork-friendly when created in the worker process (after gunicorn forks). Cheap hot path:
    one INSERT before the work and one UPDATE after it, on pooled connections.
    """

    def __init__(self, engine: Engine, *, email_hash_key: bytes, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 recover_interval: float = DEFAULT_RECOVER_INTERVAL,
                 in_progress_retry_after: int = DEFAULT_IN_PROGRESS_RETRY_AFTER,
                 clock: Callable[[], datetime] | None = None, owns_engine: bool = False) -> None:
        if isinstance(email_hash_key, str):
            email_hash_key = email_hash_key.encode("utf-8")
        if not email_hash_key:
            raise ValueError("Ledger needs a non-empty email_hash_key (settings: LEDGER_HASH_KEY)")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be > 0")
        self.engine = engine
        self.lease_seconds = float(lease_seconds)
        self.recover_interval = float(recover_interval)
        self.in_progress_retry_after = int(in_progress_retry_after)
        self._clock = clock or utcnow
        self._owns_engine = owns_engine
        self._email_key = hmac.new(email_hash_key, b"marketing-actions/ledger/email-hash", hashlib.sha256).digest()
        self._aead = AESGCM(hmac.new(email_hash_key, b"marketing-actions/ledger/response", hashlib.sha256).digest())
        self._recover_lock = threading.Lock()
        self._next_recover = 0.0

    @classmethod
    def from_url(cls, database_url: str, *, email_hash_key: bytes, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 pool_size: int = 5, max_overflow: int = 10, **kwargs: Any) -> Ledger:
        """A ledger on its own engine (``service.db.create_engine``). The schema must exist (``upgrade``)."""
        from service.db import create_engine

        engine = create_engine(database_url, pool_size=pool_size, max_overflow=max_overflow)
        return cls(engine, email_hash_key=email_hash_key, lease_seconds=lease_seconds, owns_engine=True, **kwargs)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    # -- the runner ---------------------------------------------------------------------------------------
    def run(self, call: ActionCall, work: Callable[[JobContext], ActionResult]) -> Answer:
        """Record the call and run ``work`` at most once per idempotency key.

        Returns the Answer (success or a problem raised by ``work``; ``replayed`` for stored answers). Raises
        ActionError 422 ``IDEMPOTENCY_KEY_REUSED`` / 409 ``REQUEST_IN_PROGRESS``, and re-raises unexpected
        exceptions from ``work`` after recording them (the HTTP layer answers 500).
        """
        return idem.run_call(self, call, work)

    # -- queries ------------------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        if not job_id or len(job_id) > 40:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*_RECORD_COLUMNS).where(c.id == job_id)).first()
        return _record(row) if row is not None else None

    def list(self, *, status: str | None = None, operation: str | None = None, email: str | None = None,
             since: datetime | None = None, until: datetime | None = None, limit: int = 50,
             cursor: str | None = None, api_key_id: str | None = None) -> tuple[list[JobRecord], str | None]:
        """Records, newest first, and the cursor of the next page (None on the last page).

        ``email`` matches through the keyed hash of the normalised address; ``since``/``until`` bound
        ``createdAt`` (inclusive/exclusive; naive datetimes are UTC); ``api_key_id`` limits to one connection.
        """
        if status is not None and status not in STATUSES:
            raise invalid("status", f"status must be one of {', '.join(STATUSES)}.")
        limit = max(1, min(int(limit or 50), MAX_LIST_LIMIT))
        q = sa.select(*_RECORD_COLUMNS)
        if status:
            q = q.where(c.status == status)
        if operation:
            q = q.where(c.operation == operation)
        if email is not None and email.strip():
            q = q.where(c.contact_email_hash == self.email_hash(email))
        if api_key_id:
            q = q.where(c.api_key_id == api_key_id)
        if since is not None:
            q = q.where(c.created_at >= _aware(since))
        if until is not None:
            q = q.where(c.created_at < _aware(until))
        if cursor:
            at, last_id = _decode_cursor(cursor)
            q = q.where(sa.or_(c.created_at < at, sa.and_(c.created_at == at, c.id < last_id)))
        q = q.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        items = [_record(r) for r in rows[:limit]]
        next_cursor = _encode_cursor(items[-1]) if len(rows) > limit else None
        return items, next_cursor

    def record_timeline(self, job_id: str, timeline: dict[str, Any]) -> None:
        """Record the outcome of the job's Dataverse timeline note (``{status, reason?, message?, noteId?}``)."""
        detail = {k: (privacy.redact_text(v)[:500] if isinstance(v, str) else v) for k, v in timeline.items()
                  if k in ("status", "reason", "message", "noteId")}
        with self.engine.begin() as conn:
            conn.execute(sa.update(T).where(c.id == job_id).values(
                timeline_status=str(timeline.get("status"))[:16], timeline=detail, updated_at=self._now()))

    def email_hash(self, email: str) -> str:
        return privacy.email_hash(email, self._email_key)

    # -- maintenance --------------------------------------------------------------------------------------
    def recover_stale(self, now: datetime | None = None) -> int:
        """Mark InProgress records whose lease expired as Failed/OUTCOME_UNKNOWN; returns how many."""
        now = _aware(now) if now is not None else self._now()
        with self.engine.connect() as conn:
            stale = conn.execute(sa.select(c.id, c.attempts).where(
                c.status == IN_PROGRESS, c.lease_expires_at < now)).all()
        return sum(1 for job_id, attempts in stale if self._mark_outcome_unknown(job_id, attempts, now))

    def maybe_recover(self, now: datetime | None = None) -> int | None:
        """:meth:`recover_stale` at most every ``recover_interval`` seconds per process (cheap to call from
        every request). Returns the count, or None when skipped. Never raises (errors are logged)."""
        mono = time.monotonic()
        if mono < self._next_recover or not self._recover_lock.acquire(blocking=False):
            return None
        try:
            if mono < self._next_recover:
                return None
            self._next_recover = mono + self.recover_interval
            return self.recover_stale(now)
        except Exception:
            log.exception("recovering stale ledger records failed")
            return None
        finally:
            self._recover_lock.release()

    def purge(self, older_than_days: int, now: datetime | None = None, batch_size: int = 5000) -> int:
        """Delete records created more than ``older_than_days`` days ago (not running ones); returns how many."""
        now = _aware(now) if now is not None else self._now()
        cutoff = now - timedelta(days=older_than_days)
        total = 0
        while True:
            with self.engine.begin() as conn:
                ids = [r[0] for r in conn.execute(
                    sa.select(c.id).where(c.created_at < cutoff,
                                          sa.or_(c.status != IN_PROGRESS, c.lease_expires_at < now))
                    .limit(batch_size)).all()]
                if not ids:
                    return total
                total += conn.execute(sa.delete(T).where(c.id.in_(ids))).rowcount or 0
            if len(ids) < batch_size:
                return total

    # -- internals used by the runner (service.actions.idempotency) ---------------------------------------
    def _now(self) -> datetime:
        return _aware(self._clock())

    def _values(self, call: ActionCall, now: datetime, job_id: str) -> dict[str, Any]:
        email = call.contact.email if call.contact is not None else None
        external_id = call.contact.external_id if call.contact is not None else None
        return {
            "id": job_id,
            "idempotency_key": call.idempotency_key,
            "body_hash": call.body_hash,
            "operation": call.operation[:64],
            "provider": call.provider[:32],
            "api_key_id": call.api_key_id,
            "request_id": (call.request_id or None) and call.request_id[:128],
            "contact_email_masked": privacy.mask_email(email) if email else None,
            "contact_email_hash": self.email_hash(email) if email and email.strip() else None,
            "contact_external_id": (str(external_id)[:255] if external_id not in (None, "") else None),
            "inputs": (privacy.redact(call.inputs, known_secrets=call.known_secrets)
                       if call.inputs is not None else None),
            "status": IN_PROGRESS,
            "retryable": False,
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
            "lease_expires_at": idem.lease_until(now, self.lease_seconds),
        }

    def _insert(self, call: ActionCall, now: datetime) -> str:
        job_id = new_job_id(now)
        with self.engine.begin() as conn:
            conn.execute(_INSERT, self._values(call, now, job_id))
        return job_id

    def _insert_keyed(self, call: ActionCall, now: datetime) -> str | None:
        """Insert an InProgress record for ``call.idempotency_key``; None when the key already exists."""
        try:
            return self._insert(call, now)
        except sa.exc.IntegrityError:
            return None

    def _key_state(self, key: str) -> KeyState | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c.id, c.status, c.retryable, c.body_hash, c.attempts, c.lease_expires_at)
                               .where(c.idempotency_key == key)).first()
        if row is None:
            return None
        return KeyState(job_id=row.id, status=row.status, retryable=bool(row.retryable), body_hash=row.body_hash,
                        attempts=row.attempts, lease_expires_at=row.lease_expires_at)

    def _take_over(self, job_id: str, seen_attempts: int, call: ActionCall,
                   now: datetime) -> dict[str, list[str]] | None:
        """Atomically move a retryable Failed record back to InProgress (attempts + 1). Returns its upstream
        ids when this caller won, None when another caller did (or the record changed)."""
        with self.engine.begin() as conn:
            res = conn.execute(
                sa.update(T)
                .where(c.id == job_id, c.status == FAILED, c.retryable.is_(True), c.attempts == seen_attempts)
                .values(status=IN_PROGRESS, retryable=False, attempts=seen_attempts + 1, updated_at=now,
                        lease_expires_at=idem.lease_until(now, self.lease_seconds),
                        request_id=(call.request_id or None) and call.request_id[:128], http_status=None,
                        result_code=None, message=None, finished_at=None, duration_ms=None,
                        response_status=None, response_headers=None, response_body=None))
            if res.rowcount != 1:
                return None
            ids = conn.execute(sa.select(c.upstream_ids).where(c.id == job_id)).scalar_one_or_none()
        return dict(ids or {})

    def _finish(self, job_id: str, attempt: int, *, status: str, http_status: int | None, result_code: str | None,
                message: str | None, upstream_ids: dict[str, list[str]], duration_ms: int, retryable: bool,
                response: tuple[int, dict[str, str], dict[str, Any]] | None,
                known_secrets: tuple[str, ...] = ()) -> bool:
        """Record the outcome of attempt ``attempt``. The condition on ``attempts`` keeps a late worker from
        overwriting a newer attempt; it does overwrite an OUTCOME_UNKNOWN left by recovery (the real outcome
        is better than an unknown one)."""
        now = self._now()
        values: dict[str, Any] = {
            "status": status, "http_status": http_status, "result_code": (result_code or None) and result_code[:64],
            "message": privacy.redact_text(message, known_secrets)[:2000] if message else None,
            "upstream_ids": upstream_ids or None, "duration_ms": duration_ms, "retryable": retryable,
            "finished_at": now, "updated_at": now, "lease_expires_at": None,
            "response_status": None, "response_headers": None, "response_body": None,
        }
        if response is not None:
            r_status, r_headers, r_body = response
            values.update(response_status=r_status, response_headers=_safe_headers(r_headers),
                          response_body=self._seal(job_id, r_body))
        with self.engine.begin() as conn:
            res = conn.execute(_UPDATE_ATTEMPT, {"_job_id": job_id, "_attempt": attempt, **values})
        if res.rowcount != 1:
            log.warning("job %s: attempt %s finished after a newer attempt took over; outcome not recorded",
                        job_id, attempt)
            return False
        return True

    def _mark_outcome_unknown(self, job_id: str, attempts: int, now: datetime) -> bool:
        problem = idem.outcome_unknown_problem()
        with self.engine.begin() as conn:
            request_id = conn.execute(sa.select(c.request_id).where(c.id == job_id)).scalar_one_or_none()
            body = idem.problem_body(problem, job_id=job_id, request_id=request_id)
            res = conn.execute(
                sa.update(T)
                .where(c.id == job_id, c.status == IN_PROGRESS, c.attempts == attempts, c.lease_expires_at <= now)
                .values(status=FAILED, retryable=False, http_status=problem.status, result_code=problem.code,
                        message=problem.detail, finished_at=now, updated_at=now, lease_expires_at=None,
                        response_status=problem.status, response_headers=idem.problem_headers(problem),
                        response_body=self._seal(job_id, body)))
        done = res.rowcount == 1
        if done:
            log.warning("job %s: lease expired while InProgress; marked OUTCOME_UNKNOWN", job_id)
        return done

    def _stored_answer(self, job_id: str) -> Answer | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c.status, c.retryable, c.http_status, c.result_code, c.message,
                                         c.request_id, c.response_status, c.response_headers, c.response_body)
                               .where(c.id == job_id)).first()
        if row is None or row.status == IN_PROGRESS or (row.status == FAILED and row.retryable):
            return None
        if row.response_body is None:
            # a finished record without a kept answer (should not happen for keyed calls)
            problem = idem.Problem(row.http_status or 409, row.result_code or "STORED_ANSWER_UNAVAILABLE",
                                   "Conflict", row.message or "The answer of the original call is not available.")
            return Answer(problem.status, idem.problem_body(problem, job_id=job_id, request_id=row.request_id),
                          idem.problem_headers(problem), replayed=True, job_id=job_id)
        try:
            body = self._open(job_id, row.response_body)
        except ValueError as exc:
            raise ActionError(409, "STORED_ANSWER_UNAVAILABLE",
                              "This call was already processed but its answer can no longer be read (the ledger "
                              "key changed). Look up the job for its outcome.", jobId=job_id) from exc
        return Answer(row.response_status or row.http_status or 200, body, dict(row.response_headers or {}),
                      replayed=True, job_id=job_id)

    def _save_upstream_ids(self, job_id: str, attempt: int, upstream_ids: dict[str, list[str]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(_UPDATE_ATTEMPT, {"_job_id": job_id, "_attempt": attempt,
                                           "upstream_ids": upstream_ids or None, "updated_at": self._now()})

    def _extend_lease(self, job_id: str, attempt: int) -> None:
        now = self._now()
        with self.engine.begin() as conn:
            conn.execute(sa.update(T).where(c.id == job_id, c.attempts == attempt, c.status == IN_PROGRESS)
                         .values(lease_expires_at=idem.lease_until(now, self.lease_seconds), updated_at=now))

    # -- response encryption ------------------------------------------------------------------------------
    def _seal(self, job_id: str, body: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        plain = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
        sealed = self._aead.encrypt(nonce, plain, job_id.encode("utf-8"))
        return _RESPONSE_VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def _open(self, job_id: str, token: str) -> dict[str, Any]:
        if not token.startswith(_RESPONSE_VERSION):
            raise ValueError("unknown stored answer format")
        try:
            raw = base64.urlsafe_b64decode(token[len(_RESPONSE_VERSION):].encode("ascii"))
            plain = self._aead.decrypt(raw[:12], raw[12:], job_id.encode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ValueError("stored answer cannot be decrypted") from exc
        return json.loads(plain)


_SAFE_HEADERS = {"content-type", "retry-after", "location", "content-language"}


def _safe_headers(headers: dict[str, str]) -> dict[str, str]:
    """Only headers that are safe and meaningful to replay are kept."""
    return {k: privacy.redact_text(str(v)) for k, v in headers.items() if k.lower() in _SAFE_HEADERS}


def _encode_cursor(rec: JobRecord) -> str:
    raw = json.dumps([_aware(rec.created_at).isoformat(), rec.job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, job_id = json.loads(raw)
        return _aware(datetime.fromisoformat(at)), str(job_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid("cursor", "The cursor is not valid; use the nextCursor of a previous answer.",
                      code="INVALID_CURSOR") from exc


__all__ = [
    "COMPLETED", "FAILED", "IN_PROGRESS", "STATUSES", "ActionCall", "ActionResult", "Answer",
    "Job", "JobContext", "JobRecord", "Ledger", "new_job_id",
]
