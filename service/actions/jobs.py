"""Queries over the job ledger for the API."""

from __future__ import annotations

from datetime import datetime

from service.actions.problems import ActionError, invalid


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:  # absent; an empty value is not a date-time (the spec says format: date-time)
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(name, f"'{value}' is not an ISO 8601 date-time like 2026-11-22T10:00:00Z.")


def list_jobs(ledger, *, caller: str | None, status=None, operation=None, email=None, since=None, until=None,
              limit=50, cursor=None) -> dict:
    """The caller's jobs (a caller never sees another caller's jobs)."""
    items, next_cursor = ledger.list(caller=caller or "", status=status, operation=operation, email=email,
                                     since=_when(since, "since"), until=_when(until, "until"),
                                     limit=limit, cursor=cursor)
    out = {"value": [r.to_public_dict() for r in items]}
    if next_cursor:
        out["nextCursor"] = next_cursor
    return out


def get_job(ledger, job_id: str, *, caller: str | None) -> dict:
    record = ledger.get(job_id, caller=caller or "")
    if record is None:
        raise ActionError(404, "JOB_NOT_FOUND", f"There is no job '{job_id[:64]}'. Use the jobId an action returned.")
    return record.to_public_dict()
