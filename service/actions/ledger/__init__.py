"""The job ledger: one record per logical action call, on SQLAlchemy 2 (SQLite file or PostgreSQL).

A record is written (``InProgress``) before the upstream call and finished (``Completed``/``Failed``) after it,
so the ledger shows what was asked, by which caller, the outcome, upstream ids and timings. It is also the store
behind exactly-once execution and background jobs (:mod:`service.actions.runner`): the unique constraint on
``idempotency_key`` decides races between threads, worker processes and instances; a lease (renewed while the
work runs) tells a live job from one whose worker died; ``attempts`` fences a late worker off a record that was
taken over.

Privacy: no secret and no clear e-mail address or field value is stored. Contacts are kept as a masked address
(``j***@example.com``) plus a keyed hash (HMAC-SHA256 of the normalised address) for filtering; inputs are
redacted (:func:`service.privacy.redact_inputs`); the answer kept for replays and the request kept while a job
runs (to resume it elsewhere) are encrypted (AES-GCM, key derived from the ledger key, bound to the record id).
The key comes from settings (``LEDGER_HASH_KEY``); changing it makes earlier e-mail filters and stored answers
unusable (replays of those answer ``STORED_ANSWER_UNAVAILABLE``).

Schema: Alembic migrations in ``service/migrations``, applied by :func:`service.actions.storage.ensure_schema`.

The package: :mod:`.model` (the table, UTC times, job ids), :mod:`.records` (what the ledger hands out),
:mod:`.repository` (:class:`Ledger`: every query; tenant scoping of hosted mode goes there), :mod:`.hot` (the
hot statements - the INSERT and the UPDATEs of a running attempt - on the pooled connection's DBAPI cursor,
compiled once); the seals are :mod:`service.actions.sealing`.
"""

from service.actions.idempotency import COMPLETED, FAILED, IN_PROGRESS, STATUSES
from service.actions.ledger.model import Base, Job, UTCDateTime, new_job_id, utcnow
from service.actions.ledger.records import Claimed, JobRecord
from service.actions.ledger.repository import Ledger

__all__ = [
    "COMPLETED", "FAILED", "IN_PROGRESS", "STATUSES", "Base", "Claimed", "Job", "JobRecord", "Ledger", "UTCDateTime",
    "new_job_id", "utcnow",
]
