"""Read and write the intake side of the store; all of its SQL lives here.

Every function takes the caller's :class:`~sqlalchemy.orm.Session` first and
runs inside the caller's transaction (see ``Store.session``); none commits.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Table, func, or_, select
from sqlalchemy.exc import IntegrityError

from bridge.store.intake_queries import Responder as Responder
from bridge.store.intake_queries import event_content_hash as event_content_hash
from bridge.store.intake_queries import record_intake as record_intake
from bridge.store.models import (
    EventModel,
    EventRow,
    InboundRequestModel,
    RequestRow,
    SourceModel,
    SourceRow,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
_REQUESTS = cast(Table, InboundRequestModel.__table__)
_EVENTS = cast(Table, EventModel.__table__)


def list_events(
    session: Session,
    *,
    source: str | None = None,
    status: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    before: str | None = None,
) -> list[EventRow]:
    """Return events newest first, optionally filtered, one page at a time.

    Args:
        session: The session to read with.
        source: Only events of this source.
        status: Only events in this status.
        limit: The page size.
        before: The id of the last event of the previous page; the page
            starts after it. An unknown id gives an empty page.
    """
    query = select(EventModel)
    if source is not None:
        query = query.where(EventModel.source == source)
    if status is not None:
        query = query.where(EventModel.status == status)

    if before is not None:
        cursor = session.get(EventModel, before)
        if cursor is None:
            return []
        query = query.where(_older_than(cursor))

    query = query.order_by(EventModel.created_at.desc(), EventModel.id.desc())
    models = session.scalars(query.limit(max(limit, 0)))
    return [to_event_row(model) for model in models]


def _older_than(cursor: EventModel) -> ColumnElement[bool]:
    """Return the condition for events that sort after ``cursor``."""
    same_time = EventModel.created_at == cursor.created_at
    return or_(
        EventModel.created_at < cursor.created_at,
        same_time & (EventModel.id < cursor.id),
    )


def get_event(session: Session, event_id: str) -> EventRow | None:
    """Return the event with that id and its request, or None."""
    query = (
        select(EventModel, InboundRequestModel)
        .join(InboundRequestModel, EventModel.request_id == InboundRequestModel.id)
        .where(EventModel.id == event_id)
    )
    found = session.execute(query).one_or_none()
    if found is None:
        return None

    event, request = found
    return to_event_row(event, _request_row(request))


def count_events_by_status(session: Session) -> dict[str, int]:
    """Return how many events are in each status that has any."""
    query = select(EventModel.status, func.count()).group_by(EventModel.status)
    return {status: count for status, count in session.execute(query)}


def to_event_row(model: EventModel, request: RequestRow | None = None) -> EventRow:
    """Return the plain record of an event row."""
    return EventRow(
        id=model.id,
        request_id=model.request_id,
        source=model.source,
        source_event_id=model.source_event_id,
        content_hash=model.content_hash,
        kind=model.kind,
        score=model.score,
        learner=model.learner,
        activity=model.activity,
        registration=model.registration,
        occurred_at=model.occurred_at,
        note=model.note,
        extra=model.extra,
        status=model.status,
        status_reason=model.status_reason,
        created_at=model.created_at,
        updated_at=model.updated_at,
        request=request,
        attempts=model.attempts or 0,
        next_attempt_at=model.next_attempt_at,
        user_id=model.user_id,
        learning_id=model.learning_id,
        elms_call=model.elms_call,
        last_error=model.last_error,
        dispatched_at=model.dispatched_at,
        correlation_id=model.correlation_id,
    )


def _request_row(model: InboundRequestModel) -> RequestRow:
    """Return the plain record of a request row."""
    return RequestRow(
        id=model.id,
        source=model.source,
        received_at=model.received_at,
        method=model.method,
        path=model.path,
        content_type=model.content_type,
        headers=model.headers,
        body=model.body,
        body_sha256=model.body_sha256,
        dedupe_key=model.dedupe_key,
        event_ids=model.event_ids,
        response_status=model.response_status,
        response_body=model.response_body,
    )


def add_source(
    session: Session,
    name: str,
    format: str,
    auth: dict[str, Any],
    options: dict[str, Any],
    *,
    max_body_bytes: int | None = None,
    now: datetime | None = None,
) -> SourceRow:
    """Add a runtime-managed source and return it.

    ``max_body_bytes`` None means the bridge's default body limit applies.

    Raises:
        ValueError: a source of that name is stored already.
    """
    now = now or datetime.now(UTC)
    model = SourceModel(
        name=name,
        format=format,
        auth=auth,
        options=options,
        max_body_bytes=max_body_bytes,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(model)
    except IntegrityError as exc:
        raise ValueError(f"source {name!r} exists already") from exc

    logger.info("source %s added (format %s)", name, format)
    return _source_row(model)


def list_sources(session: Session) -> list[SourceRow]:
    """Return the runtime-managed sources by name."""
    query = select(SourceModel).order_by(SourceModel.name)
    return [_source_row(model) for model in session.scalars(query)]


def get_source(session: Session, name: str) -> SourceRow | None:
    """Return the runtime-managed source of that name, or None."""
    model = session.get(SourceModel, name)
    return None if model is None else _source_row(model)


def remove_source(session: Session, name: str) -> bool:
    """Remove the runtime-managed source of that name; say whether it existed."""
    model = session.get(SourceModel, name)
    if model is None:
        return False

    session.delete(model)
    session.flush()
    logger.info("source %s removed", name)
    return True


def _source_row(model: SourceModel) -> SourceRow:
    """Return the plain record of a source row."""
    return SourceRow(
        name=model.name,
        format=model.format,
        auth=model.auth,
        options=model.options,
        max_body_bytes=model.max_body_bytes,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def _new_id() -> str:
    """Return a new random uuid as text."""
    return str(uuid.uuid4())
