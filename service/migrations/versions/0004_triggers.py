"""Polling triggers: large seen sets, trigger instances and per-contact fingerprints.

Revision ID: 0004_triggers
Revises: 0003_reliability
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_triggers"
down_revision = "0003_reliability"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trigger_seen_sets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
    )
    op.create_index("ix_trigger_seen_sets_used", "trigger_seen_sets", ["used_at"])
    op.create_table(
        "trigger_instances",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_trigger_instances_last_seen", "trigger_instances", ["last_seen_at"])
    op.create_table(
        "trigger_contacts",
        sa.Column("instance_id", sa.String(32), primary_key=True),
        sa.Column("contact_hash", sa.String(32), primary_key=True),
        sa.Column("prev", sa.String(512), nullable=True),
        sa.Column("cur", sa.String(512), nullable=False),
        sa.Column("cur_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trigger_contacts")
    op.drop_index("ix_trigger_instances_last_seen", table_name="trigger_instances")
    op.drop_table("trigger_instances")
    op.drop_index("ix_trigger_seen_sets_used", table_name="trigger_seen_sets")
    op.drop_table("trigger_seen_sets")
