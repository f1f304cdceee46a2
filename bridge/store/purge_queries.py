"""The SQL of housekeeping: which old rows may go, and taking them in batches.

Each kind of purge names a table, the condition that makes a row old and
finished, the child rows that go with it, and whether the row is deleted
or only has its raw parts cleared. Work still pending is never matched.

A batch selects at most ``limit`` ids (locked with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so a row being requeued or claimed is left for a
later run), then deletes their children and the rows by id, in the
caller's short transaction. Every function runs in the caller's
transaction and none commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, delete, exists, func, select, update

from bridge.store.models import (
    ElmsCallModel,
    EventModel,
    EventStatus,
    InboundRequestModel,
    WorkerStateModel,
)
from bridge.store.outbound_models import (
    DeliveryAttemptModel,
    DeliveryModel,
    OutboundEventModel,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import InstrumentedAttribute, Session

# Done with for good: nothing will send these again unless an operator asks.
FINISHED_EVENT_STATUSES = (
    EventStatus.DISPATCHED.value,
    EventStatus.SKIPPED.value,
    EventStatus.INFORMATIONAL.value,
    EventStatus.VOIDED_REPORTED.value,
)
# Kept longer, for an operator to look into and requeue.
FAILED_EVENT_STATUSES = (EventStatus.FAILED.value, EventStatus.UNRESOLVED.value)
# A request keeps its raw body while any of its events is one of these.
UNFINISHED_EVENT_STATUSES = (EventStatus.PENDING.value, *FAILED_EVENT_STATUSES)

HEARTBEAT_PATTERN = "worker:%"

Condition = Callable[[datetime], ColumnElement[bool]]


@dataclass(frozen=True)
class Child:
    """Rows of another table that go with the purged rows."""

    name: str
    key: InstrumentedAttribute[str]


@dataclass(frozen=True)
class PurgeKind:
    """One kind of old row: where it lives, when it may go, what goes with it.

    ``retention`` names the field of the housekeeping config (a number of
    days) that sets the cutoff.
    With ``clear`` set, rows stay and those columns are overwritten.
    """

    name: str
    retention: str
    key: InstrumentedAttribute[str]
    condition: Condition
    children: tuple[Child, ...] = ()
    clear: dict[str, Any] = field(default_factory=dict)


def _raw_body_kept(cutoff: datetime) -> ColumnElement[bool]:
    """Match requests past the cutoff, body still kept, every event finished."""
    unfinished = exists().where(
        EventModel.request_id == InboundRequestModel.id,
        EventModel.status.in_(UNFINISHED_EVENT_STATUSES),
    )
    return (
        (InboundRequestModel.received_at < cutoff)
        & (func.length(InboundRequestModel.body) > 0)
        & ~unfinished
    )


def _finished_event(cutoff: datetime) -> ColumnElement[bool]:
    """Match events finished before the cutoff."""
    return EventModel.status.in_(FINISHED_EVENT_STATUSES) & (
        EventModel.updated_at < cutoff
    )


def _failed_event(cutoff: datetime) -> ColumnElement[bool]:
    """Match events failed or left unresolved before the cutoff."""
    return EventModel.status.in_(FAILED_EVENT_STATUSES) & (
        EventModel.updated_at < cutoff
    )


def _request_without_events(cutoff: datetime) -> ColumnElement[bool]:
    """Match requests received before the cutoff whose events are all gone."""
    has_events = exists().where(EventModel.request_id == InboundRequestModel.id)
    return (InboundRequestModel.received_at < cutoff) & ~has_events


def _delivered(cutoff: datetime) -> ColumnElement[bool]:
    """Match deliveries accepted before the cutoff."""
    return (DeliveryModel.status == "delivered") & (DeliveryModel.updated_at < cutoff)


def _failed_delivery(cutoff: datetime) -> ColumnElement[bool]:
    """Match deliveries parked as failed before the cutoff."""
    return (DeliveryModel.status == "failed") & (DeliveryModel.updated_at < cutoff)


def _outbound_without_deliveries(cutoff: datetime) -> ColumnElement[bool]:
    """Match outbound events created before the cutoff with no delivery left."""
    has_deliveries = exists().where(
        DeliveryModel.outbound_event_id == OutboundEventModel.id
    )
    return (OutboundEventModel.created_at < cutoff) & ~has_deliveries


def _stale_heartbeat(cutoff: datetime) -> ColumnElement[bool]:
    """Match heartbeats of workers silent since before the cutoff."""
    return WorkerStateModel.key.like(HEARTBEAT_PATTERN) & (
        WorkerStateModel.updated_at < cutoff
    )


ELMS_CALLS = Child("elms_calls", ElmsCallModel.event_id)
ATTEMPTS = Child("delivery_attempts", DeliveryAttemptModel.delivery_id)

# In this order: events go before the requests they point at, deliveries
# before the outbound events they point at; a request about to be deleted
# is not cleared first.
PURGE_KINDS: tuple[PurgeKind, ...] = (
    PurgeKind(
        "finished_events",
        "dedupe_days",
        EventModel.id,
        _finished_event,
        (ELMS_CALLS,),
    ),
    PurgeKind(
        "failed_events",
        "failed_days",
        EventModel.id,
        _failed_event,
        (ELMS_CALLS,),
    ),
    PurgeKind(
        "requests",
        "dedupe_days",
        InboundRequestModel.id,
        _request_without_events,
    ),
    PurgeKind(
        "raw_bodies",
        "raw_days",
        InboundRequestModel.id,
        _raw_body_kept,
        clear={"body": b"", "headers": {}},
    ),
    PurgeKind(
        "delivered_deliveries",
        "delivered_days",
        DeliveryModel.id,
        _delivered,
        (ATTEMPTS,),
    ),
    PurgeKind(
        "failed_deliveries",
        "failed_days",
        DeliveryModel.id,
        _failed_delivery,
        (ATTEMPTS,),
    ),
    PurgeKind(
        "outbound_events",
        "delivered_days",
        OutboundEventModel.id,
        _outbound_without_deliveries,
    ),
    PurgeKind(
        "heartbeats",
        "heartbeat_days",
        WorkerStateModel.key,
        _stale_heartbeat,
    ),
)


def select_batch(
    session: Session, kind: PurgeKind, cutoff: datetime, limit: int
) -> list[str]:
    """Return and lock up to ``limit`` ids of ``kind`` that may go."""
    query = (
        select(kind.key)
        .where(kind.condition(cutoff))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def purge_batch(session: Session, kind: PurgeKind, ids: list[str]) -> dict[str, int]:
    """Delete (or clear) the rows of ``ids`` and their children; return counts.

    Only ids from :func:`select_batch` in this same transaction belong
    here: their lock is what keeps them old and finished until the end.
    """
    counts: dict[str, int] = {}
    if not ids:
        return counts

    for child in kind.children:
        result = session.execute(delete(child.key.class_).where(child.key.in_(ids)))
        counts[child.name] = _rowcount(result)

    table = kind.key.class_
    if kind.clear:
        statement: Any = update(table).where(kind.key.in_(ids)).values(**kind.clear)
    else:
        statement = delete(table).where(kind.key.in_(ids))
    counts[kind.name] = _rowcount(session.execute(statement))
    return counts


def count_due(session: Session, kind: PurgeKind, cutoff: datetime) -> int:
    """Return how many rows of ``kind`` may go now (for a dry run)."""
    query = select(func.count()).select_from(kind.key.class_)
    return int(session.scalar(query.where(kind.condition(cutoff))) or 0)


def _rowcount(result: Any) -> int:
    """Return the number of rows a DML statement touched."""
    return int(result.rowcount or 0)
