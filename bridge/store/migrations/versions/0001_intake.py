"""Create the intake tables: sources, inbound_requests and events.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    """Return a timezone-aware timestamp column."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the three tables with their keys and indexes."""
    op.create_table(
        "sources",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("auth", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("max_body_bytes", sa.Integer(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_sources"),
    )

    op.create_table(
        "inbound_requests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        _timestamp("received_at"),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("event_ids", sa.JSON(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_requests"),
        sa.UniqueConstraint(
            "source", "dedupe_key", name="uq_inbound_requests_source_dedupe_key"
        ),
    )
    op.create_index(
        "ix_inbound_requests_received_at", "inbound_requests", ["received_at"]
    )

    op.create_table(
        "events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("source_event_id", sa.String(255), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("learner", sa.JSON(), nullable=False),
        sa.Column("activity", sa.JSON(), nullable=False),
        sa.Column("registration", sa.String(255), nullable=True),
        _timestamp("occurred_at"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["inbound_requests.id"],
            name="fk_events_request_id_inbound_requests",
        ),
        sa.UniqueConstraint(
            "source", "source_event_id", name="uq_events_source_source_event_id"
        ),
    )
    op.create_index("ix_events_status_created_at", "events", ["status", "created_at"])
    op.create_index("ix_events_source", "events", ["source"])
    op.create_index("ix_events_request_id", "events", ["request_id"])


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_table("events")
    op.drop_table("inbound_requests")
    op.drop_table("sources")
