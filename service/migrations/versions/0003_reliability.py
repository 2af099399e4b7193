"""Reliability: the caller owns its jobs, background jobs (payload, progress, lease owner), calls not safe to repeat.

Revision ID: 0003_reliability
Revises: 0002_timeline
Create Date: 2026-12-02

* ``caller`` replaces ``api_key_id``: one opaque caller identity (``key:<key id>`` for API keys, later
  ``aad:<tenant>:<object id>`` for Entra ID); existing rows get ``key:<api_key_id>``. Jobs are listed per caller.
* ``mode``: ``async`` once the call answered 202 and continues in the background.
* ``payload``: the request, encrypted with the ledger key, kept while the job runs so that any instance can resume
  it after a crash; cleared when the job finishes.
* ``progress``: ``{done, total}`` of long work, shown by GET /jobs.
* ``unsafe_call``: set before a call that is not safe to repeat is sent (which call, what a read-back needs).
* ``lease_owner``: the process holding the lease.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_reliability"
down_revision = "0002_timeline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_ledger") as batch:
        batch.add_column(sa.Column("caller", sa.String(255), nullable=True))
        batch.add_column(sa.Column("mode", sa.String(8), nullable=True))
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch.add_column(sa.Column("progress", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("unsafe_call", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
    # 0002_timeline recorded Entra ID callers as ``aad:...`` already; API keys as the bare key id
    op.execute("UPDATE job_ledger SET caller = CASE WHEN api_key_id LIKE 'aad:%' THEN api_key_id "
               "ELSE 'key:' || api_key_id END WHERE api_key_id IS NOT NULL")
    with op.batch_alter_table("job_ledger") as batch:
        batch.drop_column("api_key_id")
    op.create_index("ix_job_ledger_caller_created", "job_ledger", ["caller", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_job_ledger_caller_created", table_name="job_ledger")
    with op.batch_alter_table("job_ledger") as batch:
        batch.add_column(sa.Column("api_key_id", sa.String(128), nullable=True))
    op.execute("UPDATE job_ledger SET api_key_id = CASE WHEN caller LIKE 'key:%' THEN substr(caller, 5) "
               "ELSE substr(caller, 1, 128) END WHERE caller IS NOT NULL")
    with op.batch_alter_table("job_ledger") as batch:
        for name in ("lease_owner", "unsafe_call", "progress", "payload", "mode", "caller"):
            batch.drop_column(name)
