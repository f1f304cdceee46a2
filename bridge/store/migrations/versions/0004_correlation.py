"""Keep the X-Request-ID of the request that carried each event.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable column; events stored before keep no id."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(128), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("events") as batch:
        batch.drop_column("correlation_id")
