"""Outbound deliveries: list, show with attempts, retry, replay."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bridge.errors import NotFoundError, StateConflictError
from bridge.outbound_types import EVENT_TYPES, check_event_type
from bridge.services.fields import (
    aware_time,
    nullable_timestamp,
    page_cursor,
    page_limit,
    short_text,
    timestamp,
)
from bridge.services.inputs import InputSchema, load_input
from bridge.services.pages import Page, decode_cursor, page_of
from bridge.store import delivery_queries as queries
from bridge.store import delivery_replay_queries as replay_queries
from bridge.store.subscription_queries import get_subscription

if TYPE_CHECKING:
    from bridge.store.db import Store

logger = logging.getLogger(__name__)

CURSOR_KIND = "deliveries"
STATUSES = [status.value for status in queries.DeliveryStatus]


class DeliveryFiltersSchema(InputSchema):
    """Filters and paging of the delivery listing."""

    subscription_id = short_text(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    since = aware_time(
        load_default=None, metadata={"description": "Only deliveries created since."}
    )
    limit = page_limit()
    cursor = page_cursor()


def check_type(event_type: str) -> None:
    """Refuse an unknown outbound event type, in the words the CLI has used."""
    try:
        check_event_type(event_type)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class ReplaySchema(InputSchema):
    """What to replay: failed deliveries since a time, or past events of a type."""

    subscription_id = short_text(required=True)
    failed_since = aware_time(load_default=None)
    event_type = fields.String(
        load_default=None,
        validate=check_type,
        metadata={"enum": list(EVENT_TYPES)},
    )
    since = aware_time(load_default=None)

    @validates_schema
    def check_one_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Require failed_since, or event_type with since, not both."""
        by_type = data.get("event_type") is not None or data.get("since") is not None
        if data.get("failed_since") is not None and by_type:
            raise ValidationError(
                "give failed_since, or event_type with since, not both"
            )
        if data.get("failed_since") is None and not (
            data.get("event_type") and data.get("since")
        ):
            raise ValidationError("give failed_since, or event_type with since")


class AttemptSchema(Schema):
    """One HTTP attempt of a delivery."""

    attempted_at = timestamp(required=True)
    status_code = fields.Integer(allow_none=True)
    latency_ms = fields.Float(allow_none=True)
    response_body = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


class DeliverySummarySchema(Schema):
    """A delivery as a listing shows it."""

    id = fields.String(required=True)
    subscription_id = fields.String(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = nullable_timestamp()
    last_status = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = nullable_timestamp()
    created_at = timestamp(required=True)
    updated_at = timestamp(required=True)


class DeliverySchema(DeliverySummarySchema):
    """A delivery with every attempt, oldest first."""

    attempt_log = fields.List(fields.Nested(AttemptSchema), required=True)


class DeliveryPageSchema(Schema):
    """A page of deliveries, newest first."""

    items = fields.List(fields.Nested(DeliverySummarySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class ReplayedSchema(Schema):
    """How many deliveries a replay made and queued again."""

    created = fields.Integer(required=True)
    requeued = fields.Integer(required=True)


def list_deliveries(store: Store, filters: Mapping[str, Any]) -> Page:
    """Return one page of deliveries, newest first.

    Raises:
        InvalidInputError: a filter or the cursor is wrong.
    """
    values = load_input(DeliveryFiltersSchema(), filters)
    after = values["cursor"] and decode_cursor(CURSOR_KIND, values["cursor"])
    limit = values["limit"]

    with store.session(write=False) as session:
        rows = replay_queries.list_deliveries(
            session,
            subscription_id=values["subscription_id"],
            status=values["status"],
            since=values["since"],
            limit=limit + 1,
            after=after or None,
        )
    return page_of(CURSOR_KIND, rows, limit, summary)


def show_delivery(store: Store, delivery_id: str) -> dict[str, Any]:
    """Return one delivery with every attempt, oldest first.

    Raises:
        NotFoundError: no delivery by that id.
    """
    with store.session(write=False) as session:
        row = replay_queries.get_delivery(session, delivery_id)
    if row is None:
        raise NotFoundError(f"no delivery {delivery_id}")

    shown = summary(row)
    shown["attempt_log"] = [
        jsonable(dataclasses.asdict(attempt)) for attempt in row.attempt_log
    ]
    return shown


def retry_delivery(store: Store, delivery_id: str) -> int:
    """Queue one delivery again from its first attempt (a delivered one too).

    Raises:
        NotFoundError: no delivery by that id.
        StateConflictError: a worker is sending it right now.
    """
    now = datetime.now(UTC)
    with store.session() as session:
        done = replay_queries.retry_delivery(session, delivery_id, now=now)
        exists = done or replay_queries.get_delivery(session, delivery_id) is not None
    if not exists:
        raise NotFoundError(f"no delivery {delivery_id}")
    if not done:
        raise StateConflictError(f"delivery {delivery_id} is being sent right now")

    logger.info("delivery %s queued again by an operator", delivery_id)
    return 1


def replay(store: Store, data: Mapping[str, Any]) -> dict[str, int]:
    """Replay to a subscription: its failed deliveries, or past events of a type.

    Past events it already had are queued again; the others get a new
    delivery.

    Raises:
        InvalidInputError: the request names neither or both kinds.
        NotFoundError: no subscription by that id.
    """
    values = load_input(ReplaySchema(), data)
    subscription_id = values["subscription_id"]
    now = datetime.now(UTC)

    with store.session() as session:
        if get_subscription(session, subscription_id) is None:
            raise NotFoundError(f"no subscription {subscription_id}")
        if values["failed_since"] is not None:
            requeued = replay_queries.replay_failed(
                session, subscription_id, values["failed_since"], now=now
            )
            created = 0
        else:
            created, requeued = replay_queries.replay_events(
                session, subscription_id, values["event_type"], values["since"], now=now
            )

    logger.info(
        "subscription %s replay: %d created, %d requeued",
        subscription_id,
        created,
        requeued,
    )
    return {"created": created, "requeued": requeued}


def summary(row: replay_queries.DeliveryRow) -> dict[str, Any]:
    """Return the fields of a delivery that a listing shows."""
    shown = dataclasses.asdict(row)
    shown.pop("attempt_log")
    return jsonable(shown)


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Return a dict with its datetimes in ISO 8601."""
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in values.items()
    }
