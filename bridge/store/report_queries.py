"""Read-only SQL of the operator's views: event deliveries, stats.

Like the other query modules, every function runs inside the caller's
transaction and none commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from bridge.store.models import EventModel, EventStatus
from bridge.store.outbound_models import (
    DeliveryModel,
    OutboundEventModel,
    SubscriptionModel,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DELIVERED = "delivered"
FAILED = "failed"


def deliveries_of_inbound_event(
    session: Session, event_id: str
) -> list[dict[str, Any]]:
    """Return the deliveries of the outbound events an inbound event caused."""
    query = (
        select(DeliveryModel, OutboundEventModel.type)
        .join(OutboundEventModel)
        .where(OutboundEventModel.inbound_event_id == event_id)
        .order_by(DeliveryModel.created_at, DeliveryModel.id)
    )
    return [
        {
            "id": model.id,
            "subscription_id": model.subscription_id,
            "event_id": model.outbound_event_id,
            "event_type": event_type,
            "status": model.status,
            "attempts": model.attempts,
            "last_status": model.last_status,
            "delivered_at": _iso(model.delivered_at),
        }
        for model, event_type in session.execute(query)
    ]


def count_deliveries_by_status(session: Session) -> dict[str, int]:
    """Return how many deliveries are in each status that has any."""
    query = select(DeliveryModel.status, func.count()).group_by(DeliveryModel.status)
    return {status: int(count) for status, count in session.execute(query)}


def oldest_pending_event(session: Session) -> datetime | None:
    """Return when the oldest event still waiting for dispatch was stored."""
    query = select(func.min(EventModel.created_at)).where(
        EventModel.status == EventStatus.PENDING.value
    )
    return session.scalar(query)


def oldest_pending_delivery(session: Session) -> datetime | None:
    """Return when the oldest delivery still waiting to be accepted was made."""
    query = select(func.min(DeliveryModel.created_at)).where(
        DeliveryModel.status == "pending"
    )
    return session.scalar(query)


def subscription_outcomes(session: Session) -> list[dict[str, Any]]:
    """Return each subscription's delivered, failed and pending counts.

    Subscriptions without deliveries are listed too, with zeros, oldest
    subscription first.
    """

    def counted(status: str) -> Any:
        return func.coalesce(
            func.sum(case((DeliveryModel.status == status, 1), else_=0)), 0
        )

    query = (
        select(
            SubscriptionModel.id,
            SubscriptionModel.enabled,
            counted(DELIVERED),
            counted(FAILED),
            counted("pending"),
        )
        .outerjoin(DeliveryModel, DeliveryModel.subscription_id == SubscriptionModel.id)
        .group_by(
            SubscriptionModel.id,
            SubscriptionModel.enabled,
            SubscriptionModel.created_at,
        )
        .order_by(SubscriptionModel.created_at, SubscriptionModel.id)
    )
    return [
        {
            "subscription_id": sub_id,
            "enabled": bool(enabled),
            "delivered": int(delivered),
            "failed": int(failed),
            "pending": int(pending),
        }
        for sub_id, enabled, delivered, failed, pending in session.execute(query)
    ]


def _iso(moment: datetime | None) -> str | None:
    """Return a datetime in ISO 8601, or None."""
    return None if moment is None else moment.isoformat()
