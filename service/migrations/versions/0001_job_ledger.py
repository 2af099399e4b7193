"""Create the job ledger.

Revision ID: 0001_job_ledger
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_job_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_ledger",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("idempotency_key", sa.String(80), nullable=True),
        sa.Column("body_hash", sa.String(64), nullable=True),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("contact_email_masked", sa.String(320), nullable=True),
        sa.Column("contact_email_hash", sa.String(64), nullable=True),
        sa.Column("contact_external_id", sa.String(255), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("result_code", sa.String(64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("upstream_ids", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_job_ledger_idempotency_key"),
    )
    op.create_index("ix_job_ledger_created", "job_ledger", ["created_at", "id"])
    op.create_index("ix_job_ledger_status_lease", "job_ledger", ["status", "lease_expires_at"])
    op.create_index("ix_job_ledger_email_hash", "job_ledger", ["contact_email_hash"])
    op.create_index("ix_job_ledger_operation_created", "job_ledger", ["operation", "created_at"])


def downgrade() -> None:
    op.drop_table("job_ledger")
