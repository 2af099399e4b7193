"""Hosted mode (TENANCY=hosted): the sealed credentials of a job that goes on after its request, and of a tenant
whose polling triggers and webhook syncs run without one.

Revision ID: 0006_hosted
Revises: 0005_webhooks
Create Date: 2026-12-08

``trigger_instances.tenant`` scopes a trigger's stored baselines by tenant (``service/actions/triggers/store.py``).
``job_ledger.credentials`` is described in ``service/actions/ledger/model.py``, ``tenant_credentials`` in
``service/actions/tenancy.py`` (keep both in step). Both hold AES-GCM seals (CREDENTIALS_KEYS), never a clear value.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_hosted"
down_revision = "0005_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_ledger") as batch:
        batch.add_column(sa.Column("credentials", sa.Text(), nullable=True))
    with op.batch_alter_table("trigger_instances") as batch:
        batch.add_column(sa.Column("tenant", sa.String(40), nullable=True))
    op.create_table(
        "tenant_credentials",
        sa.Column("tenant", sa.String(40), primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_credentials")
    with op.batch_alter_table("trigger_instances") as batch:
        batch.drop_column("tenant")
    with op.batch_alter_table("job_ledger") as batch:
        batch.drop_column("credentials")
