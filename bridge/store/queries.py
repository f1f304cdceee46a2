"""Read and write the intake side of the store; all of its SQL lives here.

Every function takes the caller's :class:`~sqlalchemy.orm.Session` first and
runs inside the caller's transaction (see ``Store.session``); none commits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from bridge.errors import ConflictError
from bridge.events import Kind, ProgressEvent
from bridge.store.models import (
    EventModel,
    EventRow,
    EventStatus,
    InboundRequestModel,
    IntakeOutcome,
    IntakeRequest,
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

Responder = Callable[[str, list[str]], tuple[int, dict[str, Any]]]
"""Build the answer to a request from its id and its event ids, in order.

It may be called a second time, with a new request id, when a concurrent
insert forces ``record_intake`` to check again; only the answer stored is
the one to send.
"""


def record_intake(
    session: Session,
    *,
    source: str,
    request: IntakeRequest,
    events: list[ProgressEvent],
    dedupe_key: str,
    respond: Responder,
    now: datetime | None = None,
) -> IntakeOutcome:
    """Store a request, its answer and its new events, or find them stored.

    A request whose (source, dedupe_key) is stored already gets its stored
    answer back and nothing is written. An event id stored before with the
    same content is reused; with other content it raises ``ConflictError``
    and nothing of the request is written. ``respond`` builds the answer,
    which is stored in the same transaction, so a retried request gets the
    very answer the first one got.

    Raises:
        ConflictError: an event id was stored before with other content.
    """
    now = now or datetime.now(UTC)
    if session.get_bind().dialect.name == "sqlite":
        # SQLite write transactions begin IMMEDIATE: no other writer can get
        # between the checks and the inserts, so no savepoint is needed.
        return _record_intake_once(
            session, source, request, events, dedupe_key, respond, now
        )
    try:
        with session.begin_nested():
            return _record_intake_once(
                session, source, request, events, dedupe_key, respond, now
            )
    except IntegrityError:
        # Another process inserted the same request or event id after our
        # checks; its row is committed now, so checking again sees it.
        logger.warning("intake from %s lost an insert race; checking again", source)

    with session.begin_nested():
        return _record_intake_once(
            session, source, request, events, dedupe_key, respond, now
        )


def _record_intake_once(
    session: Session,
    source: str,
    request: IntakeRequest,
    events: list[ProgressEvent],
    dedupe_key: str,
    respond: Responder,
    now: datetime,
) -> IntakeOutcome:
    """Run the checks and inserts of ``record_intake`` once."""
    stored = _find_request(session, source, dedupe_key)
    if stored is not None:
        return _duplicate_outcome(stored)

    event_ids, new_events = _assign_event_ids(session, source, events)
    request_id = _new_id()
    status, body = respond(request_id, list(event_ids))

    # Core inserts on the session's connection: the ORM's unit of work and
    # execution layer cost more than the write itself on this hot path.
    connection = session.connection()
    row = _request_values(request_id, source, request, dedupe_key, now)
    row.update(event_ids=event_ids, response_status=status, response_body=body)
    connection.execute(_INSERT_REQUEST, [row])
    rows = [
        _event_values(*item, request_id, now, request.correlation_id)
        for item in new_events
    ]
    if rows:
        connection.execute(_INSERT_EVENTS, rows)

    logger.debug(
        "request %s from %s stored with %d new of %d events",
        request_id,
        source,
        len(rows),
        len(event_ids),
    )
    return IntakeOutcome(
        duplicate=False,
        request_id=request_id,
        response_status=status,
        response_body=body,
        event_ids=event_ids,
        new_event_ids=[values["id"] for values in rows],
    )


# The two lookups of every intake, built once: building a statement per
# request cost more than running it.
_STORED_ANSWER = select(
    InboundRequestModel.id,
    InboundRequestModel.response_status,
    InboundRequestModel.response_body,
    InboundRequestModel.event_ids,
).where(
    InboundRequestModel.source == bindparam("source"),
    InboundRequestModel.dedupe_key == bindparam("dedupe_key"),
)
_INSERT_REQUEST = insert(_REQUESTS)
_INSERT_EVENTS = insert(_EVENTS)
_STORED_HASHES = select(
    EventModel.source_event_id, EventModel.id, EventModel.content_hash
).where(
    EventModel.source == bindparam("source"),
    EventModel.source_event_id.in_(bindparam("ids", expanding=True)),
)


def _find_request(session: Session, source: str, dedupe_key: str) -> Any:
    """Return the stored answer of that source and dedupe key, if any."""
    parameters = {"source": source, "dedupe_key": dedupe_key}
    return session.connection().execute(_STORED_ANSWER, parameters).one_or_none()


def _duplicate_outcome(stored: Any) -> IntakeOutcome:
    """Return the outcome that replays a stored request's answer."""
    return IntakeOutcome(
        duplicate=True,
        request_id=stored.id,
        response_status=stored.response_status,
        response_body=stored.response_body,
        event_ids=list(stored.event_ids),
    )


def _assign_event_ids(
    session: Session, source: str, events: list[ProgressEvent]
) -> tuple[list[str], list[tuple[str, ProgressEvent, str]]]:
    """Return each event's stored or new id, and the new events to insert.

    Raises:
        ConflictError: an event id is known with other content, either in
            the store or earlier in the same request.
    """
    known = _find_event_hashes(session, source, [e.event_id for e in events])
    event_ids: list[str] = []
    new_events: list[tuple[str, ProgressEvent, str]] = []

    for event in events:
        if event.source != source:
            raise ValueError(f"event {event.event_id} is from {event.source}")

        content_hash = event_content_hash(event)
        if event.event_id not in known:
            new_id = _new_id()
            known[event.event_id] = (new_id, content_hash)
            new_events.append((new_id, event, content_hash))

        stored_id, stored_hash = known[event.event_id]
        if stored_hash != content_hash:
            raise _conflict(source, event.event_id)
        event_ids.append(stored_id)

    return event_ids, new_events


def _find_event_hashes(
    session: Session, source: str, source_event_ids: list[str]
) -> dict[str, tuple[str, str]]:
    """Return (id, content hash) of the stored events among those ids."""
    if not source_event_ids:
        return {}

    parameters = {"source": source, "ids": sorted(set(source_event_ids))}
    rows = session.connection().execute(_STORED_HASHES, parameters)
    return {row[0]: (row[1], row[2]) for row in rows}


def _conflict(source: str, source_event_id: str) -> ConflictError:
    """Return the error for an event id reused with other content."""
    message = f"event {source_event_id} was received before with different content"
    detail = {"source": source, "event_id": source_event_id}
    return ConflictError(message, errors=[detail])


def _request_values(
    request_id: str,
    source: str,
    request: IntakeRequest,
    dedupe_key: str,
    now: datetime,
) -> dict[str, Any]:
    """Return a new request row's values, still without its answer."""
    return dict(
        id=request_id,
        source=source,
        received_at=now,
        method=request.method,
        path=request.path,
        content_type=request.content_type,
        headers=dict(request.headers),
        body=request.body,
        body_sha256=hashlib.sha256(request.body).hexdigest(),
        dedupe_key=dedupe_key,
    )


def _event_values(
    event_id: str,
    event: ProgressEvent,
    content_hash: str,
    request_id: str,
    now: datetime,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Return a new event row's values, in its first status."""
    informational = event.kind == Kind.INFORMATIONAL
    status = EventStatus.INFORMATIONAL if informational else EventStatus.PENDING
    return dict(
        id=event_id,
        request_id=request_id,
        source=event.source,
        source_event_id=event.event_id,
        content_hash=content_hash,
        kind=event.kind.value,
        score=event.score,
        learner=event.learner.to_dict(),
        activity=event.activity.to_dict(),
        registration=event.registration,
        occurred_at=event.occurred_at,
        note=event.note,
        extra=dict(event.extra),
        status=status.value,
        status_reason=None,
        created_at=now,
        updated_at=now,
        attempts=0,
        next_attempt_at=None if informational else now,
        correlation_id=correlation_id,
    )


def event_content_hash(event: ProgressEvent) -> str:
    """Return the sha256 hex digest of the event's raw payload.

    JSON payloads are hashed in canonical form (sorted keys, no spaces), so
    the same statement sent with its keys in another order is still the
    same content; a payload kept as bytes is hashed as it is.
    """
    raw = event.raw
    if isinstance(raw, bytes | bytearray):
        return hashlib.sha256(raw).hexdigest()

    canonical = json.dumps(
        raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    # surrogatepass: a hash must never be the thing that fails on odd text.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


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
