"""The SQL behind readiness and metrics: queue sizes, heartbeats, contact.

Read-only, cheap queries on indexed columns, run on each ``/readyz`` and
``/metrics`` request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from bridge.store.delivery_queries import DeliveryStatus
from bridge.store.dispatch_queries import pending_summary
from bridge.store.models import WorkerStateModel
from bridge.store.outbound_models import DeliveryModel

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class QueueSummary:
    """How many items wait in a queue and when the oldest was made."""

    name: str
    depth: int
    oldest: datetime | None


def ping(session: Session) -> None:
    """Run the cheapest statement, so a dead database raises here."""
    session.execute(text("SELECT 1"))


def outbox_summaries(session: Session) -> list[QueueSummary]:
    """Return the events waiting for Open ELMS and the deliveries waiting."""
    events, oldest_event = pending_summary(session)
    query = select(func.count(), func.min(DeliveryModel.created_at)).where(
        DeliveryModel.status == DeliveryStatus.PENDING.value
    )
    deliveries, oldest_delivery = session.execute(query).one()
    return [
        QueueSummary("events", events, oldest_event),
        QueueSummary("deliveries", int(deliveries), oldest_delivery),
    ]


def state_values(session: Session, prefix: str) -> dict[str, dict[str, Any]]:
    """Return every shared state value whose key starts with ``prefix``."""
    query = select(WorkerStateModel.key, WorkerStateModel.value).where(
        WorkerStateModel.key.startswith(prefix, autoescape=True)
    )
    return {key: dict(value) for key, value in session.execute(query)}
