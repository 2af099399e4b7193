"""What the ledger hands out: :class:`JobRecord` (the API's view of a job, built from a row), :class:`Claimed`
(a job this process claimed to resume or settle) and the cursors of the job list."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.actions.idempotency import ASYNC
from service.actions.ledger.model import Job, aware
from service.actions.problems import invalid

c = Job.__table__.c


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return aware(dt).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class JobRecord:
    job_id: str
    operation: str
    provider: str
    status: str
    created_at: datetime
    updated_at: datetime
    attempts: int = 1
    caller: str | None = None
    request_id: str | None = None
    correlation: dict[str, str] | None = None
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
    mode: str | None = None
    progress: dict[str, int] | None = None

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
        if self.progress and isinstance(self.progress, dict):
            doc["progress"] = {k: int(self.progress[k]) for k in ("done", "total") if k in self.progress}
        doc.update({
            "background": True if self.mode == ASYNC else None,
            "attempts": self.attempts,
            "createdAt": _iso(self.created_at),
            "finishedAt": _iso(self.finished_at),
            "durationMs": self.duration_ms,
            "requestId": self.request_id,
        })
        if self.correlation and isinstance(self.correlation, dict):
            doc["correlation"] = {str(k): str(v) for k, v in self.correlation.items()}
        if self.timeline:
            doc["timeline"] = dict(self.timeline)
        return {k: v for k, v in doc.items() if v is not None and v != ""}


def record_from_row(row: Any) -> JobRecord:
    m = row._mapping
    return JobRecord(
        job_id=m["id"], operation=m["operation"], provider=m["provider"], status=m["status"],
        created_at=m["created_at"], updated_at=m["updated_at"], attempts=m["attempts"],
        caller=m["caller"], request_id=m["request_id"], correlation=m["correlation"], email_masked=m["contact_email_masked"],
        external_id=m["contact_external_id"], inputs=m["inputs"], http_status=m["http_status"],
        result_code=m["result_code"], message=m["message"], upstream_ids=dict(m["upstream_ids"] or {}),
        finished_at=m["finished_at"], duration_ms=m["duration_ms"], lease_expires_at=m["lease_expires_at"],
        retryable=bool(m["retryable"]), timeline=m["timeline"], mode=m["mode"], progress=m["progress"],
    )


RECORD_COLUMNS = [c.id, c.operation, c.provider, c.status, c.created_at, c.updated_at, c.attempts, c.caller,
                   c.request_id, c.correlation, c.contact_email_masked, c.contact_external_id, c.inputs, c.http_status,
                   c.result_code, c.message, c.upstream_ids, c.finished_at, c.duration_ms, c.lease_expires_at,
                   c.retryable, c.timeline, c.mode, c.progress]


@dataclass
class Claimed:
    """A job this process claimed to resume or settle (its worker died, or it waits for a background retry)."""

    job_id: str
    attempt: int  # the attempt this process now owns
    operation: str
    caller: str | None
    request_id: str | None
    unsafe_call: dict[str, Any] | None
    params: dict[str, Any]
    body: Any
    upstream_ids: dict[str, list[str]]
    progress: dict[str, int] | None
    #: hosted mode: the connection, from the job's sealed credentials (None: single mode, or none kept)
    connection: Any = None
    #: hosted mode: the record had credentials that could not be opened (a key that is gone)
    credentials_lost: bool = False


def encode_cursor(rec: JobRecord) -> str:
    raw = json.dumps([aware(rec.created_at).isoformat(), rec.job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, job_id = json.loads(raw)
        return aware(datetime.fromisoformat(at)), str(job_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid("cursor", "The cursor is not valid; use the nextCursor of a previous answer.",
                      code="INVALID_CURSOR") from exc

