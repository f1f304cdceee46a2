"""The SQL of dispatch: claiming events, holding pairs, recording outcomes.

The events table is its own outbox. A worker claims due events by setting a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers never take the
same rows; SQLite serialises writers). A pair (user, learning) is held by a
lease of its own while its Open ELMS call is in flight, and no database
lock is held during the call. A lease whose worker died simply expires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bridge.elms_shapes import Status
from bridge.rules import PairState
from bridge.store.models import (
    ElmsCallModel,
    EventModel,
    EventStatus,
    ProgressModel,
    WorkerStateModel,
)
from bridge.store.queries import to_event_row

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bridge.store.models import EventRow

PAUSE_KEY = "dispatch_pause"
RETRYABLE_STATUSES = (EventStatus.FAILED.value, EventStatus.UNRESOLVED.value)


@dataclass(frozen=True)
class CallRow:
    """One recorded Open ELMS call of an event."""

    method: str
    path: str
    status: int | None
    error: str | None
    worker: str | None
    called_at: datetime


def claim_due_events(
    session: Session, *, worker: str, now: datetime, lease_seconds: float, limit: int
) -> list[EventRow]:
    """Lease up to ``limit`` due events to ``worker``, oldest occurrence first."""
    due = (
        select(EventModel)
        .where(EventModel.status == EventStatus.PENDING.value)
        .where(EventModel.next_attempt_at <= now)
        .where(
            or_(
                EventModel.lease_expires_at.is_(None),
                EventModel.lease_expires_at < now,
            )
        )
        .order_by(EventModel.occurred_at, EventModel.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    models = list(session.scalars(due))

    expires = now + timedelta(seconds=lease_seconds)
    for model in models:
        model.lease_owner = worker
        model.lease_expires_at = expires
    session.flush()
    return [to_event_row(model) for model in models]


def release_events(session: Session, event_ids: list[str], *, worker: str) -> int:
    """Give back claims a worker will not process (it is stopping)."""
    if not event_ids:
        return 0
    result = session.execute(
        update(EventModel)
        .where(EventModel.id.in_(event_ids), EventModel.lease_owner == worker)
        .values(lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def hold_pair(
    session: Session,
    user_id: str,
    learning_id: str,
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
) -> PairState | None:
    """Lease a pair to ``worker`` and return its state; None if held elsewhere."""
    expires = now + timedelta(seconds=lease_seconds)
    ensure_pair(session, user_id, learning_id, now)

    result = session.execute(
        update(ProgressModel)
        .where(ProgressModel.user_id == user_id)
        .where(ProgressModel.learning_id == learning_id)
        .where(
            or_(
                ProgressModel.lease_owner.is_(None),
                ProgressModel.lease_owner == worker,
                ProgressModel.lease_expires_at < now,
            )
        )
        .values(lease_owner=worker, lease_expires_at=expires)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None

    model = session.get(ProgressModel, (user_id, learning_id))
    assert model is not None  # noqa: S101 - ensured above
    session.refresh(model)
    return PairState(Status(model.status), model.score, model.completed_event_at)


def ensure_pair(
    session: Session, user_id: str, learning_id: str, now: datetime
) -> None:
    """Create the pair's row, not attempted, if it does not exist yet."""
    if session.get(ProgressModel, (user_id, learning_id)) is not None:
        return
    try:
        with session.begin_nested():
            session.add(
                ProgressModel(
                    user_id=user_id,
                    learning_id=learning_id,
                    status=Status.NOT_ATTEMPTED.value,
                    updated_at=now,
                )
            )
    except IntegrityError:
        pass  # another worker created it first; the row exists either way


def release_pair(
    session: Session,
    user_id: str,
    learning_id: str,
    *,
    worker: str,
    state: PairState | None,
    event_id: str | None,
    now: datetime,
) -> None:
    """Store the pair's new state (if any) and end ``worker``'s lease on it."""
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if state is not None:
        values.update(
            status=state.status.value,
            score=state.score,
            completed_event_at=state.completed_event_at,
            last_event_id=event_id,
            updated_at=now,
        )
    session.execute(
        update(ProgressModel)
        .where(ProgressModel.user_id == user_id)
        .where(ProgressModel.learning_id == learning_id)
        .where(ProgressModel.lease_owner == worker)
        .values(**values)
    )


def finish_event(
    session: Session,
    event_id: str,
    *,
    worker: str,
    status: str,
    now: datetime,
    reason: str | None = None,
    elms_call: str | None = None,
    user_id: str | None = None,
    learning_id: str | None = None,
    error: str | None = None,
    count_attempt: bool = False,
) -> bool:
    """Record an event's final status; False if the worker lost its lease.

    ``count_attempt`` adds the Open ELMS call that ended the event (accepted
    or refused for good) to its attempts; a skip or unresolved makes none.
    """
    values: dict[str, Any] = {
        "status": status,
        "status_reason": reason,
        "lease_owner": None,
        "lease_expires_at": None,
        "next_attempt_at": None,
        "updated_at": now,
        "user_id": user_id,
        "learning_id": learning_id,
        "elms_call": elms_call,
    }
    if error is not None:
        values["last_error"] = error
    if status == EventStatus.DISPATCHED.value:
        values["dispatched_at"] = now
    if count_attempt:
        values["attempts"] = EventModel.attempts + 1
    return owned_update(session, event_id, worker, values)


def schedule_retry(
    session: Session,
    event_id: str,
    *,
    worker: str,
    now: datetime,
    next_attempt_at: datetime,
    error: str,
    count_attempt: bool = True,
) -> bool:
    """Put an event back in the queue for a later attempt."""
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "next_attempt_at": next_attempt_at,
        "last_error": error,
        "updated_at": now,
    }
    if count_attempt:
        values["attempts"] = EventModel.attempts + 1
    return owned_update(session, event_id, worker, values)


def owned_update(
    session: Session, event_id: str, worker: str, values: dict[str, Any]
) -> bool:
    """Update an event only while ``worker`` holds its lease."""
    result = session.execute(
        update(EventModel)
        .where(EventModel.id == event_id, EventModel.lease_owner == worker)
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_call(
    session: Session,
    event_id: str,
    *,
    method: str,
    path: str,
    status: int | None,
    error: str | None,
    worker: str,
    now: datetime,
) -> None:
    """Keep one Open ELMS call made for an event."""
    session.add(
        ElmsCallModel(
            id=str(uuid.uuid4()),
            event_id=event_id,
            method=method,
            path=path,
            status=status,
            error=error,
            worker=worker,
            called_at=now,
        )
    )


def list_calls(session: Session, event_id: str) -> list[CallRow]:
    """Return the Open ELMS calls made for an event, oldest first."""
    query = (
        select(ElmsCallModel)
        .where(ElmsCallModel.event_id == event_id)
        .order_by(ElmsCallModel.called_at)
    )
    return [
        CallRow(m.method, m.path, m.status, m.error, m.worker, m.called_at)
        for m in session.scalars(query)
    ]


def registration_events(
    session: Session, source: str, registration: str
) -> list[EventRow]:
    """Return the stored events of one registration (a cmi5 attempt)."""
    query = (
        select(EventModel)
        .where(EventModel.source == source, EventModel.registration == registration)
        .order_by(EventModel.occurred_at)
    )
    return [to_event_row(model) for model in session.scalars(query)]


def requeue_events(
    session: Session, *, now: datetime, event_id: str | None = None
) -> int:
    """Queue failed or unresolved events again: one by id, or all failed."""
    query = update(EventModel).values(
        status=EventStatus.PENDING.value,
        status_reason=None,
        attempts=0,
        next_attempt_at=now,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=now,
    )
    if event_id is None:
        query = query.where(EventModel.status == EventStatus.FAILED.value)
    else:
        query = query.where(
            EventModel.id == event_id, EventModel.status.in_(RETRYABLE_STATUSES)
        )
    return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]


def pending_summary(session: Session) -> tuple[int, datetime | None]:
    """Return how many events wait for dispatch and the oldest one's time."""
    query = select(func.count(), func.min(EventModel.created_at)).where(
        EventModel.status == EventStatus.PENDING.value
    )
    count, oldest = session.execute(query).one()
    return int(count), oldest


def read_state(session: Session, key: str) -> dict[str, Any] | None:
    """Return a shared worker state value, or None."""
    model = session.get(WorkerStateModel, key)
    return None if model is None else dict(model.value)


def write_state(
    session: Session, key: str, value: dict[str, Any] | None, now: datetime
) -> bool:
    """Set (or with None, delete) a shared state value; True if it changed."""
    model = session.get(WorkerStateModel, key)
    if value is None:
        if model is None:
            return False
        session.delete(model)
        return True
    if model is None:
        try:
            with session.begin_nested():
                session.add(WorkerStateModel(key=key, value=value, updated_at=now))
            return True
        except IntegrityError:
            model = session.get(WorkerStateModel, key)
            assert model is not None  # noqa: S101 - the other writer made it
    changed = model.value != value
    model.value, model.updated_at = value, now
    return changed
