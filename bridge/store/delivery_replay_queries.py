"""Read deliveries back and send them again: listings, attempts, retry, replay.

What operators do with the outbox after the fact; claiming and recording
live in ``delivery_queries``. Every function runs in the caller's
transaction and none commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from bridge.store.delivery_queries import DeliveryStatus, add_delivery
from bridge.store.outbound_models import (
    DeliveryAttemptModel,
    DeliveryModel,
    OutboundEventModel,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DEFAULT_LIST_LIMIT = 50


@dataclass(frozen=True)
class AttemptRow:
    """One recorded HTTP attempt of a delivery."""

    attempted_at: datetime
    status_code: int | None
    latency_ms: float | None
    response_body: str | None
    error: str | None


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery as listings show it; ``attempt_log`` only from get_delivery."""

    id: str
    subscription_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempt_log: tuple[AttemptRow, ...] = ()


# Reading


def list_deliveries(
    session: Session,
    *,
    subscription_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = DEFAULT_LIST_LIMIT,
    after: str | None = None,
) -> list[DeliveryRow]:
    """Return deliveries, newest first, filtered by subscription, status, time.

    ``after`` is the id of the last delivery of the previous page; the page
    starts after it. An unknown id gives an empty page.
    """
    query = (
        select(DeliveryModel, OutboundEventModel.type)
        .join(OutboundEventModel)
        .order_by(DeliveryModel.created_at.desc(), DeliveryModel.id)
        .limit(limit)
    )
    if after is not None:
        cursor = session.get(DeliveryModel, after)
        if cursor is None:
            return []
        query = query.where(listed_after(cursor))
    if subscription_id is not None:
        query = query.where(DeliveryModel.subscription_id == subscription_id)
    if status is not None:
        query = query.where(DeliveryModel.status == status)
    if since is not None:
        query = query.where(DeliveryModel.created_at >= since)
    return [to_delivery_row(model, kind) for model, kind in session.execute(query)]


def listed_after(cursor: DeliveryModel) -> Any:
    """Return the condition of deliveries that a listing shows after ``cursor``."""
    same_time = DeliveryModel.created_at == cursor.created_at
    return or_(
        DeliveryModel.created_at < cursor.created_at,
        same_time & (DeliveryModel.id > cursor.id),
    )


def get_delivery(session: Session, delivery_id: str) -> DeliveryRow | None:
    """Return one delivery with its attempts, oldest first, or None."""
    query = (
        select(DeliveryModel, OutboundEventModel.type)
        .join(OutboundEventModel)
        .where(DeliveryModel.id == delivery_id)
    )
    found = session.execute(query).first()
    if found is None:
        return None
    attempts = session.scalars(
        select(DeliveryAttemptModel)
        .where(DeliveryAttemptModel.delivery_id == delivery_id)
        .order_by(DeliveryAttemptModel.attempted_at)
    )
    log = tuple(
        AttemptRow(
            a.attempted_at, a.status_code, a.latency_ms, a.response_body, a.error
        )
        for a in attempts
    )
    return to_delivery_row(found[0], found[1], log)


def to_delivery_row(
    model: DeliveryModel, event_type: str, log: tuple[AttemptRow, ...] = ()
) -> DeliveryRow:
    """Return the plain record of a delivery model."""
    return DeliveryRow(
        id=model.id,
        subscription_id=model.subscription_id,
        event_id=model.outbound_event_id,
        event_type=event_type,
        status=model.status,
        attempts=model.attempts,
        next_attempt_at=model.next_attempt_at,
        last_status=model.last_status,
        last_error=model.last_error,
        delivered_at=model.delivered_at,
        created_at=model.created_at,
        updated_at=model.updated_at,
        attempt_log=log,
    )


# Replay


def retry_delivery(session: Session, delivery_id: str, *, now: datetime) -> bool:
    """Queue one delivery again from its first attempt; False if none or in flight.

    Delivered ones may be sent again too: that is a manual re-send.
    """
    query = (
        update(DeliveryModel)
        .where(DeliveryModel.id == delivery_id)
        .where(not_in_flight(now))
        .values(**requeued_values(now))
    )
    return bool(session.execute(query).rowcount)  # type: ignore[attr-defined]


def replay_failed(
    session: Session, subscription_id: str, since: datetime, *, now: datetime
) -> int:
    """Queue again a subscription's failed deliveries created since ``since``."""
    query = (
        update(DeliveryModel)
        .where(DeliveryModel.subscription_id == subscription_id)
        .where(DeliveryModel.status == DeliveryStatus.FAILED.value)
        .where(DeliveryModel.created_at >= since)
        .values(**requeued_values(now))
    )
    return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]


def replay_events(
    session: Session,
    subscription_id: str,
    event_type: str,
    since: datetime,
    *,
    now: datetime,
) -> tuple[int, int]:
    """Send past events of a type created since ``since`` to a subscription.

    Events never delivered to it get a new delivery; the others are queued
    again (unless in flight). Returns (created, requeued).
    """
    events = session.scalars(
        select(OutboundEventModel.id)
        .where(OutboundEventModel.type == event_type)
        .where(OutboundEventModel.created_at >= since)
    ).all()
    existing = existing_deliveries(session, subscription_id, events)

    created = 0
    for event_id in events:
        if event_id not in existing:
            add_delivery(session, event_id, subscription_id, now)
            created += 1

    requeued = 0
    if existing:
        query = (
            update(DeliveryModel)
            .where(DeliveryModel.id.in_(existing.values()))
            .where(not_in_flight(now))
            .values(**requeued_values(now))
        )
        requeued = int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]
    return created, requeued


def existing_deliveries(
    session: Session, subscription_id: str, event_ids: Iterable[str]
) -> dict[str, str]:
    """Return {event id: delivery id} of a subscription's deliveries of events."""
    ids = list(event_ids)
    if not ids:
        return {}
    query = (
        select(DeliveryModel.outbound_event_id, DeliveryModel.id)
        .where(DeliveryModel.subscription_id == subscription_id)
        .where(DeliveryModel.outbound_event_id.in_(ids))
    )
    return {event_id: delivery_id for event_id, delivery_id in session.execute(query)}


def not_in_flight(now: datetime) -> Any:
    """Return the condition of a delivery no worker is sending at ``now``."""
    return or_(
        DeliveryModel.status != DeliveryStatus.PENDING.value,
        DeliveryModel.lease_expires_at.is_(None),
        DeliveryModel.lease_expires_at < now,
    )


def requeued_values(now: datetime) -> dict[str, Any]:
    """Return the column values of a delivery starting over."""
    return {
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        "delivered_at": None,
        "updated_at": now,
    }
