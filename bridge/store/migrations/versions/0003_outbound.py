"""Add the outbound side: subscriptions, outbound events, deliveries, polling.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    """Return a timezone-aware timestamp column."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the outbound tables."""
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("learning_ids", sa.JSON(), nullable=True),
        sa.Column("user_group_id", sa.String(64), nullable=True),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("previous_secret", sa.String(255), nullable=True),
        _timestamp("previous_secret_expires_at", nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        _timestamp("failing_since", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
    )
    op.create_table(
        "outbound_events",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("learning_id", sa.String(64), nullable=True),
        sa.Column("inbound_event_id", sa.String(36), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_events"),
    )
    op.create_index(
        "ix_outbound_events_type_created_at", "outbound_events", ["type", "created_at"]
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("outbound_event_id", sa.String(64), nullable=False),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("next_attempt_at", nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        _timestamp("lease_expires_at", nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("delivered_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(
            ["outbound_event_id"],
            ["outbound_events.id"],
            name="fk_deliveries_outbound_event_id_outbound_events",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name="fk_deliveries_subscription_id_subscriptions",
        ),
        sa.UniqueConstraint(
            "outbound_event_id",
            "subscription_id",
            name="uq_deliveries_outbound_event_id_subscription_id",
        ),
    )
    op.create_index(
        "ix_deliveries_status_next_attempt_at",
        "deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_deliveries_subscription_id_status",
        "deliveries",
        ["subscription_id", "status"],
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        _timestamp("attempted_at"),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name="fk_delivery_attempts_delivery_id_deliveries",
        ),
    )
    op.create_index(
        "ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"]
    )
    op.create_table(
        "tracked_pairs",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("learning_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("origin", sa.String(32), nullable=False),
        _timestamp("last_polled_at", nullable=True),
        _timestamp("next_poll_at", nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        _timestamp("lease_expires_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("user_id", "learning_id", name="pk_tracked_pairs"),
    )
    op.create_index("ix_tracked_pairs_next_poll_at", "tracked_pairs", ["next_poll_at"])
    op.create_table(
        "watch_scopes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_watch_scopes"),
        sa.UniqueConstraint("kind", "value", name="uq_watch_scopes_kind_value"),
    )


def downgrade() -> None:
    """Drop the outbound tables."""
    for table in (
        "watch_scopes",
        "tracked_pairs",
        "delivery_attempts",
        "deliveries",
        "outbound_events",
        "subscriptions",
    ):
        op.drop_table(table)
