"""Inbound events: what arrived, what it became, and retrying it."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields, validate

from bridge.errors import NotFoundError, StateConflictError
from bridge.services.fields import (
    nullable_timestamp,
    page_cursor,
    page_limit,
    timestamp,
)
from bridge.services.inputs import InputSchema, load_input
from bridge.services.pages import Page, decode_cursor, page_of
from bridge.store import dispatch_queries, queries, report_queries
from bridge.store.models import EventStatus

if TYPE_CHECKING:
    from bridge.store.db import Store
    from bridge.store.models import EventRow

logger = logging.getLogger(__name__)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

CURSOR_KIND = "events"
STATUSES = [status.value for status in EventStatus]


class EventFiltersSchema(InputSchema):
    """Filters and paging of the event listing."""

    source = fields.String(
        load_default=None,
        validate=validate.Length(1, 64),
        metadata={"description": "Only events of this source."},
    )
    status = fields.String(
        load_default=None,
        validate=validate.OneOf(STATUSES),
        metadata={"description": "Only events in this status."},
    )
    limit = page_limit()
    cursor = page_cursor()


class EventSummarySchema(Schema):
    """An event as a listing shows it."""

    id = fields.String(required=True)
    source = fields.String(required=True)
    source_event_id = fields.String(allow_none=True)
    kind = fields.String(required=True)
    score = fields.Float(allow_none=True)
    status = fields.String(required=True)
    status_reason = fields.String(allow_none=True)
    occurred_at = timestamp(required=True)
    created_at = timestamp(required=True)
    note = fields.String(allow_none=True)
    elms_call = fields.String(allow_none=True)


class ElmsCallSchema(Schema):
    """One Open ELMS call made for an event."""

    method = fields.String(required=True)
    path = fields.String(required=True)
    status = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    at = timestamp(required=True)


class EventDeliverySchema(Schema):
    """An outbound delivery caused by an event."""

    id = fields.String(required=True)
    subscription_id = fields.String(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    last_status = fields.Integer(allow_none=True)
    delivered_at = nullable_timestamp()


class RequestSchema(Schema):
    """The stored inbound request an event came in."""

    id = fields.String(required=True)
    received_at = timestamp(required=True)
    method = fields.String(required=True)
    path = fields.String(required=True)
    content_type = fields.String(allow_none=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String())
    body = fields.String(
        allow_none=True,
        metadata={
            "description": "UTF-8 text, or base64: then base64; null once "
            "housekeeping cleared it (see body_cleared)."
        },
    )
    body_cleared = fields.Boolean(
        metadata={"description": "True when retention removed the raw body."}
    )


class EventSchema(EventSummarySchema):
    """One event in full: normalised form, request, calls and deliveries."""

    learner = fields.Dict(allow_none=True)
    activity = fields.Dict(allow_none=True)
    extra = fields.Dict(allow_none=True)
    registration = fields.String(allow_none=True)
    content_hash = fields.String(allow_none=True)
    user_id = fields.String(allow_none=True)
    learning_id = fields.String(allow_none=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = nullable_timestamp()
    last_error = fields.String(allow_none=True)
    elms_calls = fields.List(fields.Nested(ElmsCallSchema), required=True)
    request = fields.Nested(RequestSchema)
    deliveries = fields.List(fields.Nested(EventDeliverySchema))


class EventPageSchema(Schema):
    """A page of events, newest first."""

    items = fields.List(fields.Nested(EventSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class RetriedSchema(Schema):
    """How many events or deliveries were queued again."""

    requeued = fields.Integer(required=True)


def list_events(store: Store, filters: Mapping[str, Any]) -> Page:
    """Return one page of events, newest first, filtered by source and status.

    Raises:
        InvalidInputError: a filter or the cursor is wrong.
    """
    values = load_input(EventFiltersSchema(), filters)
    before = values["cursor"] and decode_cursor(CURSOR_KIND, values["cursor"])
    limit = values["limit"]

    with store.session(write=False) as session:
        rows = queries.list_events(
            session,
            source=values["source"],
            status=values["status"],
            limit=limit + 1,
            before=before or None,
        )
    return page_of(CURSOR_KIND, rows, limit, summary)


def show_event(
    store: Store, event_id: str, *, with_deliveries: bool = True
) -> dict[str, Any]:
    """Return one event with its request, Open ELMS calls and deliveries.

    Raises:
        NotFoundError: no event by that id.
    """
    with store.session(write=False) as session:
        row = queries.get_event(session, event_id)
        calls = dispatch_queries.list_calls(session, event_id)
        deliveries = report_queries.deliveries_of_inbound_event(session, event_id)
    if row is None:
        raise NotFoundError(f"no event {event_id}")

    shown = summary(row)
    shown.update(details(row))
    shown["elms_calls"] = [
        {
            "method": call.method,
            "path": call.path,
            "status": call.status,
            "error": call.error,
            "at": call.called_at.isoformat(),
        }
        for call in calls
    ]
    if row.request is not None:
        shown["request"] = request_of(row)
    if with_deliveries:
        shown["deliveries"] = deliveries
    return shown


def retry_event(store: Store, event_id: str) -> int:
    """Queue a failed or unresolved event again; return 1.

    Raises:
        NotFoundError: no event by that id.
        StateConflictError: the event is in a status that is not retried.
    """
    with store.session() as session:
        count = dispatch_queries.requeue_events(
            session, now=datetime.now(UTC), event_id=event_id
        )
        status = None if count else current_status(session, event_id)
    if count:
        logger.info("event %s queued again by an operator", event_id)
        return count
    if status is None:
        raise NotFoundError(f"no event {event_id}")
    raise StateConflictError(
        f"event {event_id} is {status}; only failed or unresolved events are retried"
    )


def retry_failed_events(store: Store) -> int:
    """Queue every failed event again; return how many."""
    with store.session() as session:
        count = dispatch_queries.requeue_events(session, now=datetime.now(UTC))
    logger.info("%d failed events queued again by an operator", count)
    return count


def current_status(session: Any, event_id: str) -> str | None:
    """Return the status of an event, or None if there is none by that id."""
    row = queries.get_event(session, event_id)
    return None if row is None else row.status


def summary(row: EventRow) -> dict[str, Any]:
    """Return the fields of an event that a listing shows."""
    return {
        "id": row.id,
        "source": row.source,
        "source_event_id": row.source_event_id,
        "kind": row.kind,
        "score": row.score,
        "status": row.status,
        "status_reason": row.status_reason,
        "occurred_at": row.occurred_at.isoformat(),
        "created_at": row.created_at.isoformat(),
        "note": row.note,
        "elms_call": row.elms_call,
    }


def details(row: EventRow) -> dict[str, Any]:
    """Return the fields of an event that only its own page shows."""
    return {
        "learner": row.learner,
        "activity": row.activity,
        "extra": row.extra,
        "registration": row.registration,
        "content_hash": row.content_hash,
        "user_id": row.user_id,
        "learning_id": row.learning_id,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at and row.next_attempt_at.isoformat(),
        "last_error": row.last_error,
    }


def request_of(row: EventRow) -> dict[str, Any]:
    """Return the stored request of an event, its body readable."""
    request = row.request
    assert request is not None  # noqa: S101 - checked by the caller
    # Housekeeping empties the body but keeps its hash: an empty body whose
    # hash is not the empty one was cleared, not sent empty.
    cleared = not request.body and request.body_sha256 != EMPTY_SHA256
    return {
        "id": request.id,
        "received_at": request.received_at.isoformat(),
        "method": request.method,
        "path": request.path,
        "content_type": request.content_type,
        "headers": request.headers,
        "body": None if cleared else readable_body(request.body),
        "body_cleared": cleared,
    }


def readable_body(body: bytes) -> str:
    """Return a body as text, or as base64 when it is not UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode("ascii")
