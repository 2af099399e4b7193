"""Webhook triggers (Piggy, Spoki): managed upstream webhooks, subscriptions, inbound events, the delivery outbox.

Revision ID: 0005_webhooks
Revises: 0004_triggers
Create Date: 2026-12-08

The tables are described in ``service/actions/webhooks/model.py`` (keep both in step).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_webhooks"
down_revision = "0004_triggers"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_upstreams",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("route_hash", sa.String(64), nullable=False),
        sa.Column("platform_hook_id", sa.String(128), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("inbound_base", sa.String(512), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("synced_version", sa.Integer(), nullable=False),
        sa.Column("sync_due_at", _TS, nullable=True),
        sa.Column("sync_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("reconciled_at", _TS, nullable=True),
        sa.UniqueConstraint("scope", "platform", "event", name="uq_webhook_upstreams_event"),
        sa.UniqueConstraint("route_hash", name="uq_webhook_upstreams_route"),
    )
    op.create_index("ix_webhook_upstreams_due", "webhook_upstreams", ["sync_due_at"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("upstream", sa.String(32), nullable=False),
        sa.Column("caller", sa.String(255), nullable=True),
        sa.Column("filter", sa.JSON(), nullable=True),
        sa.Column("callback", sa.Text(), nullable=False),
        sa.Column("callback_hint", sa.String(300), nullable=False),
        sa.Column("callback_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("last_success_at", _TS, nullable=True),
    )
    op.create_index("ix_webhook_subscriptions_upstream", "webhook_subscriptions", ["upstream", "status"])
    op.create_index("ix_webhook_subscriptions_ended", "webhook_subscriptions", ["status", "ended_at"])
    op.create_index("uq_webhook_subscriptions_active", "webhook_subscriptions", ["scope", "callback_key"],
                    unique=True, sqlite_where=sa.text("status = 'active'"),
                    postgresql_where=sa.text("status = 'active'"))
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("upstream", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.UniqueConstraint("scope", "platform", "dedupe_key", name="uq_webhook_events_dedupe"),
    )
    op.create_index("ix_webhook_events_received", "webhook_events", ["received_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("subscription_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", _TS, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.UniqueConstraint("event_id", "subscription_id", name="uq_webhook_deliveries_event_subscription"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_at"])
    op.create_index("ix_webhook_deliveries_subscription", "webhook_deliveries", ["subscription_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_subscription", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_events_received", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index("uq_webhook_subscriptions_active", table_name="webhook_subscriptions")
    op.drop_index("ix_webhook_subscriptions_ended", table_name="webhook_subscriptions")
    op.drop_index("ix_webhook_subscriptions_upstream", table_name="webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
    op.drop_index("ix_webhook_upstreams_due", table_name="webhook_upstreams")
    op.drop_table("webhook_upstreams")
