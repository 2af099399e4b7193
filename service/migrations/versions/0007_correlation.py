"""Correlation: the caller's run headers on each job.

Revision ID: 0007_correlation
Revises: 0006_hosted
Create Date: 2026-12-08

* ``correlation`` (JSON): the Power Automate / Logic Apps run headers the call brought
  (``x-ms-workflow-run-id``, ``x-ms-client-tracking-id``, ``x-ms-workflow-name``, ...; only whitelisted names, only
  those present, values capped: ``service/logs.py correlation_from_headers``), shown by GetJob. Null for older
  jobs and for calls without such headers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_correlation"
down_revision = "0006_hosted"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_ledger") as batch:
        batch.add_column(sa.Column("correlation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_ledger") as batch:
        batch.drop_column("correlation")
