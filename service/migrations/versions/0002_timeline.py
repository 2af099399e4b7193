"""Dataverse timeline notes on the job record; callers of Entra ID need a longer caller id.

* ``timeline_status`` (written | failed | skipped) and ``timeline`` (JSON: reason, message, noteId) record the
  note a call with ``regarding`` added to the Dataverse record's timeline.
* ``api_key_id`` holds the caller: ``aad:<tenant id>:<object id>`` is 77 characters, so 64 -> 128.

Revision ID: 0002_timeline
Revises: 0001_job_ledger
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_timeline"
down_revision = "0001_job_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_ledger") as batch:
        batch.add_column(sa.Column("timeline_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("timeline", sa.JSON(), nullable=True))
        batch.alter_column("api_key_id", existing_type=sa.String(64), type_=sa.String(128), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("job_ledger") as batch:
        batch.alter_column("api_key_id", existing_type=sa.String(128), type_=sa.String(64), existing_nullable=True)
        batch.drop_column("timeline")
        batch.drop_column("timeline_status")
