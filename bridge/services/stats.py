"""Figures an operator watches: queues by state, backlog age, subscriber health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields

from bridge.store import queries, report_queries

if TYPE_CHECKING:
    from bridge.store.db import Store


class SubscriptionStatsSchema(Schema):
    """One subscription's delivery outcomes."""

    subscription_id = fields.String(required=True)
    enabled = fields.Boolean(required=True)
    delivered = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    success_rate = fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "delivered / (delivered + failed); null if none."},
    )


class StatsSchema(Schema):
    """The figures of :func:`collect_stats`."""

    events_by_status = fields.Dict(
        keys=fields.String(), values=fields.Integer(), required=True
    )
    oldest_pending_event_age_seconds = fields.Float(allow_none=True, required=True)
    deliveries_by_status = fields.Dict(
        keys=fields.String(), values=fields.Integer(), required=True
    )
    oldest_pending_delivery_age_seconds = fields.Float(allow_none=True, required=True)
    subscriptions = fields.List(fields.Nested(SubscriptionStatsSchema), required=True)


def collect_stats(store: Store, now: datetime | None = None) -> dict[str, Any]:
    """Return counts by state, the oldest pending ages and success rates.

    A success rate counts finished deliveries only: pending ones have not
    succeeded or failed yet.
    """
    now = now or datetime.now(UTC)
    with store.session(write=False) as session:
        events = queries.count_events_by_status(session)
        oldest_event = report_queries.oldest_pending_event(session)
        deliveries = report_queries.count_deliveries_by_status(session)
        oldest_delivery = report_queries.oldest_pending_delivery(session)
        outcomes = report_queries.subscription_outcomes(session)

    for outcome in outcomes:
        finished = outcome["delivered"] + outcome["failed"]
        outcome["success_rate"] = outcome["delivered"] / finished if finished else None
    return {
        "events_by_status": events,
        "oldest_pending_event_age_seconds": age(oldest_event, now),
        "deliveries_by_status": deliveries,
        "oldest_pending_delivery_age_seconds": age(oldest_delivery, now),
        "subscriptions": outcomes,
    }


def age(moment: datetime | None, now: datetime) -> float | None:
    """Return the seconds since ``moment`` (never negative), or None."""
    if moment is None:
        return None
    return max(0.0, (now - moment).total_seconds())
