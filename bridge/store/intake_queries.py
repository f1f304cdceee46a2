"""Write inbound requests and their events: one request, or a batch at once.

A batch is what the intake writer thread of a web process gathered from
its request threads (``store/group_commit.py``). It costs two lookups and
two inserts however many requests it holds, instead of four statements a
request: on SQLite the writer holds the database's only write lock while
it runs them, so fewer statements make a shorter turn for every process.
Each request keeps its own answer: a repeat gets the stored answer, an
event id reused with other content gets a 409 for that request alone, and
a request repeated within the batch is answered as its first copy was.

Every function runs in the caller's transaction and none commits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from bridge.errors import ConflictError
from bridge.events import Kind, ProgressEvent
from bridge.store.models import (
    EventModel,
    EventStatus,
    InboundRequestModel,
    IntakeOutcome,
    IntakeRequest,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

_REQUESTS = cast(Table, InboundRequestModel.__table__)
_EVENTS = cast(Table, EventModel.__table__)

Responder = Callable[[str, list[str]], tuple[int, dict[str, Any]]]
"""Build the answer to a request from its id and its event ids, in order.

It may be called a second time, with a new request id, when a concurrent
insert forces ``record_intake`` to check again; only the answer stored is
the one to send.
"""

INSERT_RACE_RETRIES = 5  # rounds lost to concurrent inserts before giving up
EventKey = tuple[str, str]  # (source, the source's event id)
StoredEvent = tuple[str, str]  # (our event id, content hash)


@dataclass(frozen=True)
class IntakeWrite:
    """One request to store: what came in, its events, and how to answer."""

    source: str
    request: IntakeRequest
    events: list[ProgressEvent]
    dedupe_key: str
    respond: Responder


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
    write = IntakeWrite(source, request, events, dedupe_key, respond)
    now = now or datetime.now(UTC)
    if session.get_bind().dialect.name == "sqlite":
        # SQLite write transactions begin IMMEDIATE: no other writer can get
        # between the checks and the inserts, so no savepoint is needed.
        return _raised(record_intakes(session.connection(), [write], now=now)[0])
    for _ in range(INSERT_RACE_RETRIES):
        try:
            with session.begin_nested():
                outcome = record_intakes(session.connection(), [write], now=now)[0]
            return _raised(outcome)
        except IntegrityError:
            # Another process inserted the same request or event id after our
            # checks; its row is committed now, so checking again sees it. A
            # third one may win the next round, so there are a few rounds.
            logger.warning("intake from %s lost an insert race; checking again", source)

    with session.begin_nested():
        return _raised(record_intakes(session.connection(), [write], now=now)[0])


def record_intakes(
    connection: Connection,
    writes: list[IntakeWrite],
    *,
    now: datetime | None = None,
) -> list[IntakeOutcome | ConflictError]:
    """Store several requests in the connection's transaction; one outcome each.

    Each outcome is what ``record_intake`` would give for that request had
    the ones before it been stored first; a ``ConflictError`` stands for
    that request's 409, and nothing of it is written.
    """
    now = now or datetime.now(UTC)
    answers = _stored_answers(connection, [(w.source, w.dedupe_key) for w in writes])
    known = _stored_events(
        connection, [(w.source, e.event_id) for w in writes for e in w.events]
    )

    outcomes: list[IntakeOutcome | ConflictError] = []
    request_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    for write in writes:
        key = (write.source, write.dedupe_key)
        if key in answers:
            outcomes.append(answers[key])
            continue
        try:
            event_ids, new_events = _assign_event_ids(write.source, write.events, known)
        except ConflictError as exc:
            outcomes.append(exc)
            continue

        outcome, request_row, rows = _new_request(write, event_ids, new_events, now)
        for new_id, event, content_hash in new_events:
            known[(write.source, event.event_id)] = (new_id, content_hash)
        answers[key] = replace(outcome, duplicate=True, new_event_ids=[])
        request_rows.append(request_row)
        event_rows.extend(rows)
        outcomes.append(outcome)

    # Core inserts: the ORM's unit of work and execution layer cost more
    # than the write itself on this hot path.
    if request_rows:
        connection.execute(_INSERT_REQUEST, request_rows)
    if event_rows:
        connection.execute(_INSERT_EVENTS, event_rows)
    logger.debug(
        "stored %d request(s) with %d new event(s) of %d",
        len(request_rows),
        len(event_rows),
        len(writes),
    )
    return outcomes


def _raised(outcome: IntakeOutcome | ConflictError) -> IntakeOutcome:
    """Return an outcome, or raise the conflict that stands for it."""
    if isinstance(outcome, ConflictError):
        raise outcome
    return outcome


def _new_request(
    write: IntakeWrite,
    event_ids: list[str],
    new_events: list[tuple[str, ProgressEvent, str]],
    now: datetime,
) -> tuple[IntakeOutcome, dict[str, Any], list[dict[str, Any]]]:
    """Return a new request's outcome, its row, and its new events' rows."""
    request_id = _new_id()
    status, body = write.respond(request_id, list(event_ids))

    row = _request_values(request_id, write, now)
    row.update(event_ids=event_ids, response_status=status, response_body=body)
    correlation = write.request.correlation_id
    rows = [_event_values(*item, request_id, now, correlation) for item in new_events]
    outcome = IntakeOutcome(
        duplicate=False,
        request_id=request_id,
        response_status=status,
        response_body=body,
        event_ids=event_ids,
        new_event_ids=[values["id"] for values in rows],
    )
    return outcome, row, rows


# The lookups and inserts of every intake, built once: building a statement
# per request cost more than running it. A lookup runs once per source in
# the batch (nearly always one): the unique keys, and so their indexes,
# begin with the source.
_STORED_ANSWERS = select(
    InboundRequestModel.source,
    InboundRequestModel.dedupe_key,
    InboundRequestModel.id,
    InboundRequestModel.response_status,
    InboundRequestModel.response_body,
    InboundRequestModel.event_ids,
).where(
    InboundRequestModel.source == bindparam("source"),
    InboundRequestModel.dedupe_key.in_(bindparam("keys", expanding=True)),
)
_STORED_HASHES = select(
    EventModel.source,
    EventModel.source_event_id,
    EventModel.id,
    EventModel.content_hash,
).where(
    EventModel.source == bindparam("source"),
    EventModel.source_event_id.in_(bindparam("ids", expanding=True)),
)
_INSERT_REQUEST = insert(_REQUESTS)
_INSERT_EVENTS = insert(_EVENTS)


def _stored_answers(
    connection: Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], IntakeOutcome]:
    """Return the stored answers of these (source, dedupe key) pairs."""
    found: dict[tuple[str, str], IntakeOutcome] = {}
    for source, dedupe_keys in _by_source(keys).items():
        parameters = {"source": source, "keys": dedupe_keys}
        for row in connection.execute(_STORED_ANSWERS, parameters):
            found[(row.source, row.dedupe_key)] = IntakeOutcome(
                duplicate=True,
                request_id=row.id,
                response_status=row.response_status,
                response_body=row.response_body,
                event_ids=list(row.event_ids),
            )
    return found


def _stored_events(
    connection: Connection, keys: list[EventKey]
) -> dict[EventKey, StoredEvent]:
    """Return (id, content hash) of the stored events among these keys."""
    found: dict[EventKey, StoredEvent] = {}
    for source, event_ids in _by_source(keys).items():
        parameters = {"source": source, "ids": event_ids}
        for row in connection.execute(_STORED_HASHES, parameters):
            found[(row[0], row[1])] = (row[2], row[3])
    return found


def _by_source(keys: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Group (source, key) pairs by source, each group's keys sorted and unique."""
    grouped: dict[str, set[str]] = {}
    for source, key in keys:
        grouped.setdefault(source, set()).add(key)
    return {source: sorted(found) for source, found in grouped.items()}


def _assign_event_ids(
    source: str, events: list[ProgressEvent], known: dict[EventKey, StoredEvent]
) -> tuple[list[str], list[tuple[str, ProgressEvent, str]]]:
    """Return each event's stored or new id, and the new events to insert.

    ``known`` is not changed: a request refused half-way adds nothing.

    Raises:
        ConflictError: an event id is known with other content, either in
            the store or earlier in the same request.
    """
    mine: dict[EventKey, StoredEvent] = {}
    event_ids: list[str] = []
    new_events: list[tuple[str, ProgressEvent, str]] = []

    for event in events:
        if event.source != source:
            raise ValueError(f"event {event.event_id} is from {event.source}")

        key = (source, event.event_id)
        content_hash = event_content_hash(event)
        stored = mine.get(key) or known.get(key)
        if stored is None:
            stored = mine[key] = (_new_id(), content_hash)
            new_events.append((stored[0], event, content_hash))

        if stored[1] != content_hash:
            raise _conflict(source, event.event_id)
        event_ids.append(stored[0])

    return event_ids, new_events


def _conflict(source: str, source_event_id: str) -> ConflictError:
    """Return the error for an event id reused with other content."""
    message = f"event {source_event_id} was received before with different content"
    detail = {"source": source, "event_id": source_event_id}
    return ConflictError(message, errors=[detail])


def _request_values(
    request_id: str, write: IntakeWrite, now: datetime
) -> dict[str, Any]:
    """Return a new request row's values, still without its answer."""
    request = write.request
    return dict(
        id=request_id,
        source=write.source,
        received_at=now,
        method=request.method,
        path=request.path,
        content_type=request.content_type,
        headers=dict(request.headers),
        body=request.body,
        body_sha256=hashlib.sha256(request.body).hexdigest(),
        dedupe_key=write.dedupe_key,
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


def _new_id() -> str:
    """Return a new random uuid as text."""
    return str(uuid.uuid4())
