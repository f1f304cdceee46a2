"""Tables of the outbound side: subscriptions, events, deliveries, polling.

Mirrors migration ``0003_outbound`` column for column.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.models import Base, UtcDateTime


class SubscriptionModel(Base):
    """A downstream URL that wants some outbound event types.

    ``previous_secret`` keeps signing during a rotation's grace period,
    until ``previous_secret_expires_at``. ``failing_since`` starts at the
    first failed delivery after a success, for auto-disable.
    """

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    learning_ids: Mapped[list[str] | None] = mapped_column(JSON)
    user_group_id: Mapped[str | None] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(String(255))
    previous_secret: Mapped[str | None] = mapped_column(String(255))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboundEventModel(Base):
    """One event to announce: a progress transition or a bridge notice."""

    __tablename__ = "outbound_events"
    __table_args__ = (Index(None, "type", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    user_id: Mapped[str | None] = mapped_column(String(64))
    learning_id: Mapped[str | None] = mapped_column(String(64))
    inbound_event_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeliveryModel(Base):
    """One outbound event to one subscription, retried until it is accepted."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("outbound_event_id", "subscription_id"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "subscription_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    outbound_event_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("outbound_events.id")
    )
    subscription_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subscriptions.id")
    )
    status: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeliveryAttemptModel(Base):
    """One HTTP attempt of a delivery, kept for the operator."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index(None, "delivery_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36), ForeignKey("deliveries.id"))
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class TrackedPairModel(Base):
    """A (user, learning) pair the poller watches, and what it last saw."""

    __tablename__ = "tracked_pairs"
    __table_args__ = (Index(None, "next_poll_at"),)

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    learning_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    origin: Mapped[str] = mapped_column(String(32))
    last_polled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    next_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WatchScopeModel(Base):
    """An admin's declaration of what to track: a user, group or learning.

    ``kind`` is ``user``, ``group``, ``learning`` or ``user_learning``
    (every learning listed on a user); ``value`` is the id.
    """

    __tablename__ = "watch_scopes"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
