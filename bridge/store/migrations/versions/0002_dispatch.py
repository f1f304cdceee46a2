"""Add dispatch: outbox columns on events, mappings, progress, calls, state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    """Return a timezone-aware timestamp column."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Add the columns and tables dispatch needs; queue pending events now."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(_timestamp("next_attempt_at", nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(_timestamp("lease_expires_at", nullable=True))
        batch.add_column(sa.Column("user_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("learning_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("elms_call", sa.String(255), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(_timestamp("dispatched_at", nullable=True))
        batch.create_index(
            "ix_events_status_next_attempt_at", ["status", "next_attempt_at"]
        )
    op.execute(
        "UPDATE events SET next_attempt_at = created_at WHERE status = 'pending'"
    )

    op.create_table(
        "mappings",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("activity_key", sa.String(1024), nullable=False),
        sa.Column("learning_id", sa.String(64), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_mappings"),
        sa.UniqueConstraint(
            "source", "activity_key", name="uq_mappings_source_activity_key"
        ),
    )

    op.create_table(
        "progress",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("learning_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        _timestamp("completed_event_at", nullable=True),
        sa.Column("last_event_id", sa.String(36), nullable=True),
        _timestamp("updated_at"),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        _timestamp("lease_expires_at", nullable=True),
        sa.PrimaryKeyConstraint("user_id", "learning_id", name="pk_progress"),
    )

    op.create_table(
        "elms_calls",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(64), nullable=True),
        _timestamp("called_at"),
        sa.PrimaryKeyConstraint("id", name="pk_elms_calls"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name="fk_elms_calls_event_id_events"
        ),
    )
    op.create_index("ix_elms_calls_event_id", "elms_calls", ["event_id"])

    op.create_table(
        "worker_state",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("key", name="pk_worker_state"),
    )


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("worker_state")
    op.drop_index("ix_elms_calls_event_id", table_name="elms_calls")
    op.drop_table("elms_calls")
    op.drop_table("progress")
    op.drop_table("mappings")
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_status_next_attempt_at")
        for column in (
            "dispatched_at", "last_error", "elms_call", "learning_id", "user_id",
            "lease_expires_at", "lease_owner", "next_attempt_at", "attempts",
        ):  # fmt: skip
            batch.drop_column(column)
