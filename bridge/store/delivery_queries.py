"""The SQL of outbound delivery: claiming and recording attempts.

Reading deliveries back and replaying them lives in
``delivery_replay_queries``.

A delivery is one outbound event for one subscription. Workers claim due
deliveries by setting a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
SQLite serialises writers), post them with no database lock held, and
record the outcome only while they still hold the lease. A claim takes at
most ``per_subscription`` deliveries of one subscription, counting those
already in flight anywhere, so a slow subscriber cannot fill every slot.

Every function runs in the caller's transaction and none commits.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update

from bridge.outbound_types import EventType
from bridge.store.outbound_models import (
    DeliveryAttemptModel,
    DeliveryModel,
    OutboundEventModel,
    SubscriptionModel,
)
from bridge.store.poll_queries import insert_outbound_event
from bridge.store.subscription_queries import disable_subscription, get_subscription

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

RESPONSE_BODY_LIMIT = 1024  # bytes of a subscriber's answer kept per attempt
DISABLED_EVENT_TYPE = EventType.SUBSCRIPTION_DISABLED.value


class DeliveryStatus(enum.StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    FILTERED = "filtered"  # the subscription's user group does not hold the user


@dataclass(frozen=True)
class DeliveryJob:
    """A claimed delivery with what is needed to send it (no secrets)."""

    id: str
    subscription_id: str
    url: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    attempts: int


# Claiming


def claim_due_deliveries(
    session: Session,
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    per_subscription: int,
) -> list[DeliveryJob]:
    """Lease up to ``limit`` due deliveries to ``worker``, oldest due first.

    Only enabled subscriptions are served, and no subscription gets more
    than ``per_subscription`` deliveries in flight, this claim included.
    """
    if limit <= 0:
        return []
    in_flight = count_in_flight(session, now)
    candidates = rank_due_deliveries(session, now, per_subscription)

    chosen: list[str] = []
    for delivery_id, subscription_id, rank in candidates:
        if rank + in_flight.get(subscription_id, 0) <= per_subscription:
            chosen.append(delivery_id)
        if len(chosen) == limit:
            break

    models = lock_claimable(session, chosen, now)
    expires = now + timedelta(seconds=lease_seconds)
    for model in models:
        model.lease_owner = worker
        model.lease_expires_at = expires
    session.flush()
    return load_jobs(session, models)


def claimable(now: datetime) -> Any:
    """Return the condition of a delivery that may be claimed at ``now``."""
    return (
        (DeliveryModel.status == DeliveryStatus.PENDING.value)
        & (DeliveryModel.next_attempt_at <= now)
        & or_(
            DeliveryModel.lease_expires_at.is_(None),
            DeliveryModel.lease_expires_at < now,
        )
    )


def count_in_flight(session: Session, now: datetime) -> dict[str, int]:
    """Return how many deliveries each subscription has under a live lease."""
    query = (
        select(DeliveryModel.subscription_id, func.count())
        .where(DeliveryModel.status == DeliveryStatus.PENDING.value)
        .where(DeliveryModel.lease_expires_at >= now)
        .group_by(DeliveryModel.subscription_id)
    )
    return {sub: int(count) for sub, count in session.execute(query)}


def rank_due_deliveries(
    session: Session, now: datetime, per_subscription: int
) -> list[tuple[str, str, int]]:
    """Return (id, subscription, rank) of the first due ones per subscription."""
    rank = (
        func.row_number()
        .over(
            partition_by=DeliveryModel.subscription_id,
            order_by=(DeliveryModel.next_attempt_at, DeliveryModel.created_at),
        )
        .label("rank")
    )
    ranked = (
        select(
            DeliveryModel.id,
            DeliveryModel.subscription_id,
            DeliveryModel.next_attempt_at,
            rank,
        )
        .join(SubscriptionModel, SubscriptionModel.id == DeliveryModel.subscription_id)
        .where(claimable(now), SubscriptionModel.enabled.is_(True))
        .subquery()
    )
    query = (
        select(ranked.c.id, ranked.c.subscription_id, ranked.c.rank)
        .where(ranked.c.rank <= per_subscription)
        .order_by(ranked.c.next_attempt_at, ranked.c.rank)
    )
    return [(row[0], row[1], int(row[2])) for row in session.execute(query)]


def lock_claimable(
    session: Session, delivery_ids: list[str], now: datetime
) -> list[DeliveryModel]:
    """Lock the rows still claimable; rows another worker holds are skipped."""
    if not delivery_ids:
        return []
    query = (
        select(DeliveryModel)
        .where(DeliveryModel.id.in_(delivery_ids), claimable(now))
        .order_by(DeliveryModel.next_attempt_at)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def load_jobs(session: Session, models: list[DeliveryModel]) -> list[DeliveryJob]:
    """Return the jobs of claimed deliveries, with event and target URL."""
    if not models:
        return []
    event_ids = {model.outbound_event_id for model in models}
    sub_ids = {model.subscription_id for model in models}
    events = {
        event.id: event
        for event in session.scalars(
            select(OutboundEventModel).where(OutboundEventModel.id.in_(event_ids))
        )
    }
    url_query = select(SubscriptionModel.id, SubscriptionModel.url).where(
        SubscriptionModel.id.in_(sub_ids)
    )
    urls = {sub_id: url for sub_id, url in session.execute(url_query)}
    return [
        DeliveryJob(
            id=model.id,
            subscription_id=model.subscription_id,
            url=urls[model.subscription_id],
            event_id=model.outbound_event_id,
            event_type=events[model.outbound_event_id].type,
            payload=dict(events[model.outbound_event_id].payload),
            attempts=model.attempts,
        )
        for model in models
    ]


def release_deliveries(
    session: Session, delivery_ids: list[str], *, worker: str
) -> int:
    """Give back claims a worker will not send (it is stopping)."""
    if not delivery_ids:
        return 0
    result = session.execute(
        update(DeliveryModel)
        .where(DeliveryModel.id.in_(delivery_ids))
        .where(DeliveryModel.lease_owner == worker)
        .values(lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# Outcomes


def record_attempt(
    session: Session,
    delivery_id: str,
    *,
    attempted_at: datetime,
    status_code: int | None,
    latency_ms: float | None,
    response_body: bytes | str | None,
    error: str | None,
) -> None:
    """Keep one HTTP attempt, the subscriber's answer clipped to 1 KiB."""
    session.add(
        DeliveryAttemptModel(
            id=str(uuid.uuid4()),
            delivery_id=delivery_id,
            attempted_at=attempted_at,
            status_code=status_code,
            latency_ms=latency_ms,
            response_body=clip_body(response_body),
            error=error,
        )
    )


def clip_body(body: bytes | str | None) -> str | None:
    """Return at most the first KiB of a body, as text."""
    if body is None:
        return None
    if isinstance(body, str):
        body = body.encode("utf-8")
    return body[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace")


def mark_delivered(
    session: Session, delivery_id: str, *, worker: str, status: int, now: datetime
) -> bool:
    """Record a delivery as accepted; False if the worker lost its lease."""
    values = {
        "status": DeliveryStatus.DELIVERED.value,
        "attempts": DeliveryModel.attempts + 1,
        "last_status": status,
        "last_error": None,
        "delivered_at": now,
        "next_attempt_at": None,
    }
    return owned_update(session, delivery_id, worker, now, values)


def schedule_retry(
    session: Session,
    delivery_id: str,
    *,
    worker: str,
    now: datetime,
    next_attempt_at: datetime,
    status: int | None,
    error: str,
) -> bool:
    """Count a failed attempt and queue the delivery for ``next_attempt_at``."""
    values = {
        "attempts": DeliveryModel.attempts + 1,
        "next_attempt_at": next_attempt_at,
        "last_status": status,
        "last_error": error,
    }
    return owned_update(session, delivery_id, worker, now, values)


def mark_failed(
    session: Session,
    delivery_id: str,
    *,
    worker: str,
    now: datetime,
    status: int | None,
    error: str,
    count_attempt: bool = True,
) -> bool:
    """Park a delivery as failed (a dead letter) until someone replays it."""
    values: dict[str, Any] = {
        "status": DeliveryStatus.FAILED.value,
        "next_attempt_at": None,
        "last_status": status,
        "last_error": error,
    }
    if count_attempt:
        values["attempts"] = DeliveryModel.attempts + 1
    return owned_update(session, delivery_id, worker, now, values)


def mark_filtered(
    session: Session, delivery_id: str, *, worker: str, now: datetime, reason: str
) -> bool:
    """Settle a delivery its subscription's group filter keeps out; no attempt."""
    values = {
        "status": DeliveryStatus.FILTERED.value,
        "next_attempt_at": None,
        "last_error": reason,
    }
    return owned_update(session, delivery_id, worker, now, values)


def postpone(
    session: Session,
    delivery_id: str,
    *,
    worker: str,
    now: datetime,
    until: datetime,
    reason: str,
) -> bool:
    """Try a delivery again later without counting an attempt (nothing was sent)."""
    values = {"next_attempt_at": until, "last_error": reason}
    return owned_update(session, delivery_id, worker, now, values)


def owned_update(
    session: Session,
    delivery_id: str,
    worker: str,
    now: datetime,
    values: dict[str, Any],
) -> bool:
    """Update a delivery and end the lease, only while ``worker`` holds it."""
    values = {
        **values,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
    result = session.execute(
        update(DeliveryModel)
        .where(DeliveryModel.id == delivery_id)
        .where(DeliveryModel.lease_owner == worker)
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def fail_pending_deliveries(
    session: Session, subscription_id: str, *, reason: str, now: datetime
) -> int:
    """Fail every pending delivery of a subscription, leased or not."""
    result = session.execute(
        update(DeliveryModel)
        .where(DeliveryModel.subscription_id == subscription_id)
        .where(DeliveryModel.status == DeliveryStatus.PENDING.value)
        .values(
            status=DeliveryStatus.FAILED.value,
            next_attempt_at=None,
            last_error=reason,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# Subscription failure bookkeeping


def note_success(session: Session, subscription_id: str, now: datetime) -> None:
    """Forget a subscription's run of failures."""
    session.execute(
        update(SubscriptionModel)
        .where(SubscriptionModel.id == subscription_id)
        .where(SubscriptionModel.failing_since.is_not(None))
        .values(failing_since=None, updated_at=now)
    )


def note_failure(
    session: Session, subscription_id: str, now: datetime
) -> datetime | None:
    """Start a subscription's run of failures if none runs; return its start."""
    session.execute(
        update(SubscriptionModel)
        .where(SubscriptionModel.id == subscription_id)
        .where(SubscriptionModel.failing_since.is_(None))
        .values(failing_since=now, updated_at=now)
    )
    query = select(SubscriptionModel.failing_since).where(
        SubscriptionModel.id == subscription_id
    )
    return session.scalar(query)


def disable_and_announce(
    session: Session, subscription_id: str, *, reason: str, now: datetime
) -> str | None:
    """Disable a subscription, fail its pending deliveries and announce it.

    The ``bridge.subscription_disabled`` event goes to the other enabled
    subscriptions that ask for the type. Returns its id, or None when the
    subscription was already disabled (it was announced then).
    """
    subscription = get_subscription(session, subscription_id)
    if subscription is None or not subscription.enabled:
        return None

    disable_subscription(session, subscription_id, reason, now)
    fail_pending_deliveries(session, subscription_id, reason=reason, now=now)
    payload = {
        "type": DISABLED_EVENT_TYPE,
        "time": now.isoformat(),
        "subscription": {"id": subscription.id, "url": subscription.url},
        "reason": reason,
    }
    return insert_outbound_event(
        session,
        event_type=DISABLED_EVENT_TYPE,
        payload=payload,
        user_id=None,
        learning_id=None,
        inbound_event_id=None,
        now=now,
    )


def add_delivery(
    session: Session, event_id: str, subscription_id: str, now: datetime
) -> None:
    """Queue a new delivery of an event to a subscription, due now."""
    session.add(
        DeliveryModel(
            id=str(uuid.uuid4()),
            outbound_event_id=event_id,
            subscription_id=subscription_id,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )
