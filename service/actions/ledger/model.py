"""The job ledger's table (SQLAlchemy 2 declarative model), its column type for UTC times, and job ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator
from ulid import ULID


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def new_job_id(now: datetime | None = None) -> str:
    """``job_`` + a 26-character ULID (python-ulid: time-ordered, 80 random bits), e.g.
    ``job_01J9Z3M8Q4XKQ7V0T5S2B6R1YA``."""
    return "job_" + str(ULID.from_datetime(now or utcnow()))


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = aware(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return None if value is None else aware(value)


class Base(DeclarativeBase):
    pass


class Job(Base):
    """A ledger record. Columns mirror the migrations (0001, 0002_timeline, 0003_reliability, 0006_hosted,
    0007_correlation; keep them in step)."""

    __tablename__ = "job_ledger"
    __table_args__ = (
        sa.UniqueConstraint("idempotency_key", name="uq_job_ledger_idempotency_key"),
        sa.Index("ix_job_ledger_created", "created_at", "id"),
        sa.Index("ix_job_ledger_status_lease", "status", "lease_expires_at"),
        sa.Index("ix_job_ledger_email_hash", "contact_email_hash"),
        sa.Index("ix_job_ledger_operation_created", "operation", "created_at"),
        sa.Index("ix_job_ledger_caller_created", "caller", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(80))
    body_hash: Mapped[str | None] = mapped_column(sa.String(64))
    operation: Mapped[str] = mapped_column(sa.String(64))
    provider: Mapped[str] = mapped_column(sa.String(32))
    #: who called (opaque: ``key:<key id>``, ``aad:<tenant>:<object id>``); a caller sees only its own jobs
    caller: Mapped[str | None] = mapped_column(sa.String(255))
    request_id: Mapped[str | None] = mapped_column(sa.String(128))
    #: the caller's run headers (x-ms-workflow-run-id, ...: service.logs.correlation_from_headers); 0007
    correlation: Mapped[Any | None] = mapped_column(sa.JSON)
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
    #: the process holding the lease
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64))
    #: ``async`` once the call answered 202 (or was resumed after a crash)
    mode: Mapped[str | None] = mapped_column(sa.String(8))
    #: the request (path parameters + body), encrypted, while the job runs
    payload: Mapped[str | None] = mapped_column(sa.Text)
    #: hosted mode: the connection's credentials, sealed (service.actions.tenancy.CredentialBox), only while a job
    #: that answered 202 goes on; removed when it ends (0006_hosted)
    credentials: Mapped[str | None] = mapped_column(sa.Text)
    #: ``{done, total}`` of long work
    progress: Mapped[Any | None] = mapped_column(sa.JSON)
    #: set before a call that is not safe to repeat is sent: ``{call, readback?}``
    unsafe_call: Mapped[Any | None] = mapped_column(sa.JSON)
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    response_headers: Mapped[Any | None] = mapped_column(sa.JSON)
    #: encrypted JSON body of the answer kept for replays
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    #: the Dataverse timeline note of a call with ``regarding``: written | failed | skipped, and its details
    timeline_status: Mapped[str | None] = mapped_column(sa.String(16))
    timeline: Mapped[Any | None] = mapped_column(sa.JSON)

