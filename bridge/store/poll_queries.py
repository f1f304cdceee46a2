"""The SQL of polling: tracked pairs, watch scopes and outbound events.

A tracked pair keeps the last progress the bridge saw or announced for a
(user, learning) pair. Workers claim due pairs with a lease, as dispatch
claims events (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
writers), and no database lock is held during the Open ELMS call.

A transition is written as one outbound event per type plus one pending
delivery per matching subscription, in the caller's transaction, so an
event is never announced without its deliveries (the table is an outbox).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bridge.elms_shapes import Status
from bridge.outbound_types import EventType
from bridge.store.outbound_models import (
    DeliveryModel,
    OutboundEventModel,
    TrackedPairModel,
    WatchScopeModel,
)
from bridge.store.subscription_queries import matching_subscriptions

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bridge.elms_shapes import Progress

WATCH_KINDS = ("user", "group", "learning", "user_learning")
ORIGINS = ("inbound", "watch")
CAUSES = ("inbound", "elms")

STARTED = EventType.PROGRESS_STARTED.value
COMPLETED = EventType.PROGRESS_COMPLETED.value
SCORE_CHANGED = EventType.PROGRESS_SCORE_CHANGED.value
EVENT_FAILED = EventType.EVENT_FAILED.value


@dataclass(frozen=True)
class TrackedPairRow:
    """A tracked pair as claimed: what the bridge last saw and when."""

    user_id: str
    learning_id: str
    status: str | None
    score: float | None
    origin: str
    last_polled_at: datetime | None
    next_poll_at: datetime | None


@dataclass(frozen=True)
class WatchScopeRow:
    """An admin's watch scope: ``kind`` (user, group, ...) and the id."""

    id: str
    kind: str
    value: str
    created_at: datetime


# Tracked pairs


def track_pair(
    session: Session, user_id: str, learning_id: str, *, origin: str, now: datetime
) -> bool:
    """Start tracking a pair, due for a poll now; False if already tracked."""
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}; got {origin!r}")
    if session.get(TrackedPairModel, (user_id, learning_id)) is not None:
        return False

    pair = TrackedPairModel(
        user_id=user_id,
        learning_id=learning_id,
        origin=origin,
        next_poll_at=now,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(pair)
    except IntegrityError:
        return False  # another worker tracked it first; the row exists either way
    return True


def get_pair(
    session: Session, user_id: str, learning_id: str, *, lock: bool = False
) -> TrackedPairRow | None:
    """Return a tracked pair, or None if it is not tracked.

    ``lock`` reads the row afresh and holds it to the end of the
    transaction: a poll recording this pair meanwhile is waited for, and
    what it stored is seen, so the same change is not announced twice.
    """
    if not lock:
        model = session.get(TrackedPairModel, (user_id, learning_id))
    else:
        model = session.get(
            TrackedPairModel,
            (user_id, learning_id),
            with_for_update=True,
            populate_existing=True,
        )
    return None if model is None else to_pair_row(model)


def claim_due_pairs(
    session: Session,
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    reconcile_before: datetime | None = None,
) -> list[TrackedPairRow]:
    """Lease up to ``limit`` pairs due for a poll to ``worker``, oldest first.

    A completed pair has no ``next_poll_at``; it is due only when
    ``reconcile_before`` is given and its last poll is older than that.
    """
    due = TrackedPairModel.next_poll_at <= now
    if reconcile_before is not None:
        last = func.coalesce(
            TrackedPairModel.last_polled_at, TrackedPairModel.created_at
        )
        stale = and_(TrackedPairModel.next_poll_at.is_(None), last < reconcile_before)
        due = or_(due, stale)

    query = (
        select(TrackedPairModel)
        .where(due)
        .where(
            or_(
                TrackedPairModel.lease_expires_at.is_(None),
                TrackedPairModel.lease_expires_at < now,
            )
        )
        .order_by(
            func.coalesce(TrackedPairModel.next_poll_at, TrackedPairModel.created_at)
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    models = list(session.scalars(query))

    expires = now + timedelta(seconds=lease_seconds)
    for model in models:
        model.lease_owner = worker
        model.lease_expires_at = expires
    session.flush()
    return [to_pair_row(model) for model in models]


def record_poll(
    session: Session,
    pair: TrackedPairRow,
    progress: Progress,
    *,
    worker: str,
    now: datetime,
    next_poll_at: datetime | None,
) -> bool:
    """Store what a poll saw and end the lease.

    Returns False, storing nothing but the lease's end, when ``worker`` lost
    the lease or the stored state changed since the claim (an inbound
    update was announced meanwhile): the poll result may predate it, so the
    pair is made due again at once instead.
    """
    model = session.get(
        TrackedPairModel,
        (pair.user_id, pair.learning_id),
        with_for_update=True,
        populate_existing=True,
    )
    if model is None or model.lease_owner != worker:
        return False

    model.lease_owner, model.lease_expires_at = None, None
    if (model.status, model.score) != (pair.status, pair.score):
        model.next_poll_at = now
        return False

    model.status, model.score = progress.status.value, progress.score
    model.last_polled_at, model.next_poll_at = now, next_poll_at
    model.updated_at = now
    return True


def release_pairs(
    session: Session,
    pairs: list[TrackedPairRow],
    *,
    worker: str,
    next_poll_at: datetime | None = None,
) -> None:
    """End ``worker``'s leases, optionally moving the pairs' next poll."""
    for pair in pairs:
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
        if next_poll_at is not None:
            values["next_poll_at"] = next_poll_at
        session.execute(
            update(TrackedPairModel)
            .where(TrackedPairModel.user_id == pair.user_id)
            .where(TrackedPairModel.learning_id == pair.learning_id)
            .where(TrackedPairModel.lease_owner == worker)
            .values(**values)
        )


def to_pair_row(model: TrackedPairModel) -> TrackedPairRow:
    """Return the plain record of a tracked pair."""
    return TrackedPairRow(
        user_id=model.user_id,
        learning_id=model.learning_id,
        status=model.status,
        score=model.score,
        origin=model.origin,
        last_polled_at=model.last_polled_at,
        next_poll_at=model.next_poll_at,
    )


# Watch scopes


def add_watch(
    session: Session, kind: str, value: str, *, now: datetime | None = None
) -> WatchScopeRow:
    """Add a watch scope and return it; an existing one is returned as is."""
    if kind not in WATCH_KINDS:
        raise ValueError(f"kind must be one of {', '.join(WATCH_KINDS)}; got {kind!r}")
    value = value.strip()
    if not value:
        raise ValueError("a watch scope needs a non-empty id")

    existing = find_watch(session, kind, value)
    if existing is not None:
        return existing
    model = WatchScopeModel(
        id=str(uuid.uuid4()),
        kind=kind,
        value=value,
        created_at=now or datetime.now(UTC),
    )
    session.add(model)
    session.flush()
    return to_watch_row(model)


def find_watch(session: Session, kind: str, value: str) -> WatchScopeRow | None:
    """Return the watch scope of a kind and id, or None."""
    query = select(WatchScopeModel).where(
        WatchScopeModel.kind == kind, WatchScopeModel.value == value
    )
    model = session.scalars(query).first()
    return None if model is None else to_watch_row(model)


def list_watches(session: Session) -> list[WatchScopeRow]:
    """Return every watch scope, oldest first."""
    query = select(WatchScopeModel).order_by(
        WatchScopeModel.created_at, WatchScopeModel.id
    )
    return [to_watch_row(model) for model in session.scalars(query)]


def remove_watch(session: Session, watch_id: str) -> bool:
    """Delete a watch scope; its pairs stay tracked. False if unknown."""
    model = session.get(WatchScopeModel, watch_id)
    if model is None:
        return False
    session.delete(model)
    session.flush()
    return True


def to_watch_row(model: WatchScopeModel) -> WatchScopeRow:
    """Return the plain record of a watch scope."""
    return WatchScopeRow(model.id, model.kind, model.value, model.created_at)


# Outbound events


def transition_types(
    old_status: str | None,
    old_score: float | None,
    new_status: str,
    new_score: float | None,
) -> list[str]:
    """Return the event types a change of progress announces (maybe none).

    An unknown old status (a pair's first poll) is a baseline, not a
    change. A jump from not attempted to completed is one completion; a
    move backwards (an admin reset inside Open ELMS) announces nothing.
    """
    if old_status is None:
        return []
    if new_status == Status.COMPLETED:
        if old_status != Status.COMPLETED:
            return [COMPLETED]
        return [SCORE_CHANGED] if old_score != new_score else []
    if new_status == Status.IN_PROGRESS and old_status == Status.NOT_ATTEMPTED:
        return [STARTED]
    return []


def record_transition(
    session: Session,
    *,
    user_id: str,
    learning_id: str,
    old_status: str | None,
    old_score: float | None,
    new_status: str,
    new_score: float | None,
    cause: str,
    inbound_event_id: str | None = None,
    user: dict[str, Any] | None = None,
    learning: dict[str, Any] | None = None,
    now: datetime,
) -> list[str]:
    """Write the outbound events of a progress change and return their ids.

    Also stores the new state on the tracked pair (if tracked), so a later
    poll that sees the same state announces nothing.
    """
    if cause not in CAUSES:
        raise ValueError(f"cause must be one of {CAUSES}; got {cause!r}")
    new_status, old_status = str(new_status), _text(old_status)
    store_pair_state(session, user_id, learning_id, new_status, new_score, now)

    ids = []
    for event_type in transition_types(old_status, old_score, new_status, new_score):
        payload = {
            "type": event_type,
            "time": now.isoformat(),
            "user": describe_user(user_id, user),
            "learning": describe_learning(learning_id, learning),
            "status": new_status,
            "score": new_score,
            "previous": {"status": old_status, "score": old_score},
            "cause": cause,
            "inbound_event_id": inbound_event_id,
        }
        event_id = insert_outbound_event(
            session,
            event_type=event_type,
            payload=payload,
            user_id=user_id,
            learning_id=learning_id,
            inbound_event_id=inbound_event_id,
            now=now,
        )
        ids.append(event_id)
    return ids


def store_pair_state(
    session: Session,
    user_id: str,
    learning_id: str,
    status: str,
    score: float | None,
    now: datetime,
) -> None:
    """Set a tracked pair's known status and score, if the pair is tracked."""
    session.execute(
        update(TrackedPairModel)
        .where(TrackedPairModel.user_id == user_id)
        .where(TrackedPairModel.learning_id == learning_id)
        .values(status=status, score=score, updated_at=now)
    )


def insert_outbound_event(
    session: Session,
    *,
    event_type: str,
    payload: dict[str, Any],
    user_id: str | None,
    learning_id: str | None,
    inbound_event_id: str | None,
    now: datetime,
) -> str:
    """Insert one outbound event and a pending delivery per matching subscriber."""
    event_id = f"msg_{uuid.uuid4().hex}"
    session.add(
        OutboundEventModel(
            id=event_id,
            type=event_type,
            payload=payload,
            user_id=user_id,
            learning_id=learning_id,
            inbound_event_id=inbound_event_id,
            created_at=now,
        )
    )
    session.flush()  # the deliveries' foreign key needs the event first

    # One rule for every writer: subscription_queries decides who wants what.
    for subscription in matching_subscriptions(session, event_type, learning_id):
        session.add(
            DeliveryModel(
                id=str(uuid.uuid4()),
                outbound_event_id=event_id,
                subscription_id=subscription.id,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    return event_id


def describe_user(user_id: str, user: dict[str, Any] | None) -> dict[str, Any]:
    """Return the payload's user: the id, plus email and username if known."""
    described: dict[str, Any] = {"id": user_id}
    for key in ("email", "username"):
        if user and user.get(key):
            described[key] = user[key]
    return described


def describe_learning(
    learning_id: str, learning: dict[str, Any] | None
) -> dict[str, Any]:
    """Return the payload's learning: the id, plus the name if known."""
    described: dict[str, Any] = {"id": learning_id}
    if learning and learning.get("name"):
        described["name"] = learning["name"]
    return described


def _text(status: str | None) -> str | None:
    """Return a status (a plain string or a Status) as its plain value."""
    return None if status is None else str(status)
