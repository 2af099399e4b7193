"""The relay's tables (migration ``0005_webhooks``, in the ledger's database) and their states.

* ``webhook_upstreams`` - one per account scope, platform and event: the platform's webhook we manage for the
  flows that want that event (reference-counted by its active subscriptions). ``version`` counts changes of
  what the platform should have (a flow came or went, a filter changed); ``synced_version`` is what it has.
  A sync (``service.actions.webhooks.upstream``) runs under a lease and makes the platform match.
* ``webhook_subscriptions`` - one per Power Automate trigger subscription (the ``Location`` id): its callback
  URL (sealed), filter and state: ``active`` -> ``orphaned`` (the callback said the flow is gone) or
  ``deleted`` (DELETE on the Location); rows that ended are removed after 7 days.
* ``webhook_events`` - each inbound event once (unique per scope, platform and dedupe key), its data sealed.
* ``webhook_deliveries`` - the outbox: one row per event and subscription. ``pending`` rows are due at
  ``next_at``; a worker that claims one moves ``next_at`` to the end of its lease (a dead worker's claim
  expires by itself) and raises ``attempts`` (which fences a late worker off). Ends ``delivered``, ``failed``
  (the schedule ran out, or the callback refused the request) or ``cancelled`` (its subscription ended).

Every row carries ``scope``: the account it belongs to (single mode: :data:`SINGLE_SCOPE`; hosted mode: the
tenant's keyed hash). Callback URLs, webhook secrets and event data are sealed (AES-GCM, the row id as
associated data): nothing personal or secret is stored in clear.
"""

from __future__ import annotations

import sqlalchemy as sa

from service.actions.ledger.model import Base, UTCDateTime

#: the scope of every row in single mode (one platform account per deployment)
SINGLE_SCOPE = "single"

ACTIVE, ORPHANED, DELETED = "active", "orphaned", "deleted"
PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"

upstreams = sa.Table(
    "webhook_upstreams", Base.metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("route_hash", sa.String(64), nullable=False),
    sa.Column("platform_hook_id", sa.String(128)),
    sa.Column("secret", sa.Text),
    sa.Column("attributes", sa.JSON),
    sa.Column("inbound_base", sa.String(512), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("synced_version", sa.Integer, nullable=False),
    sa.Column("sync_due_at", UTCDateTime),
    sa.Column("sync_attempts", sa.Integer, nullable=False),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("last_error", sa.String(300)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("reconciled_at", UTCDateTime),
    sa.UniqueConstraint("scope", "platform", "event", name="uq_webhook_upstreams_event"),
    sa.UniqueConstraint("route_hash", name="uq_webhook_upstreams_route"),
    sa.Index("ix_webhook_upstreams_due", "sync_due_at"),
)

subscriptions = sa.Table(
    "webhook_subscriptions", Base.metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("upstream", sa.String(32), nullable=False),
    sa.Column("caller", sa.String(255)),
    sa.Column("filter", sa.JSON),
    sa.Column("callback", sa.Text, nullable=False),
    sa.Column("callback_hint", sa.String(300), nullable=False),
    sa.Column("callback_key", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.String(300)),
    sa.Column("last_success_at", UTCDateTime),
    sa.Index("ix_webhook_subscriptions_upstream", "upstream", "status"),
    sa.Index("ix_webhook_subscriptions_ended", "status", "ended_at"),
    # Power Automate repeating a subscription (its retry) finds the active one: one per callback and filter
    sa.Index("uq_webhook_subscriptions_active", "scope", "callback_key", unique=True,
             sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'")),
)

events = sa.Table(
    "webhook_events", Base.metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("upstream", sa.String(32), nullable=False),
    sa.Column("dedupe_key", sa.String(64), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.UniqueConstraint("scope", "platform", "dedupe_key", name="uq_webhook_events_dedupe"),
    sa.Index("ix_webhook_events_received", "received_at"),
)

deliveries = sa.Table(
    "webhook_deliveries", Base.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("subscription_id", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", UTCDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.String(300)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    sa.UniqueConstraint("event_id", "subscription_id", name="uq_webhook_deliveries_event_subscription"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_at"),
    sa.Index("ix_webhook_deliveries_subscription", "subscription_id", "status"),
)
