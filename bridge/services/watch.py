"""Watch scopes: what the progress poller tracks in Open ELMS."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, ValidationError, fields, validate

from bridge.elms import segment
from bridge.errors import NotFoundError
from bridge.services.fields import timestamp
from bridge.services.inputs import InputSchema, invalid_field, load_input
from bridge.store import poll_queries

if TYPE_CHECKING:
    from bridge.store.db import Store
    from bridge.store.poll_queries import WatchScopeRow

logger = logging.getLogger(__name__)

MAX_VALUE_LENGTH = 255


def check_elms_id(value: str) -> None:
    """Refuse what could never name an Open ELMS record, at once.

    Otherwise a scope such as ``2/1`` would be stored and only fail, with
    a warning, when the worker first tries to expand it.
    """
    try:
        segment(value)
    except ValueError:
        raise ValidationError(
            "must be an Open ELMS id: letters, digits, '.', '_', '~' or '-', "
            "not starting with a sign or dot"
        ) from None


class WatchScopeInputSchema(InputSchema):
    """A scope to watch: a user, group, learning or a user's learnings, by id."""

    kind = fields.String(
        required=True, validate=validate.OneOf(poll_queries.WATCH_KINDS)
    )
    value = fields.String(
        required=True,
        validate=[validate.Length(1, MAX_VALUE_LENGTH), check_elms_id],
        metadata={"description": "The Open ELMS id of the user, group or learning."},
    )


class WatchScopeSchema(Schema):
    """A stored watch scope."""

    id = fields.String(required=True)
    kind = fields.String(required=True)
    value = fields.String(required=True)
    created_at = timestamp(required=True)


def add_watch(store: Store, data: Mapping[str, Any]) -> dict[str, Any]:
    """Add a watch scope and return it; an existing one is returned as is.

    Raises:
        InvalidInputError: an unknown kind or an empty id.
    """
    values = load_input(WatchScopeInputSchema(), data)
    try:
        with store.session() as session:
            row = poll_queries.add_watch(
                session, values["kind"], values["value"], now=datetime.now(UTC)
            )
    except ValueError as exc:
        field = "kind" if "kind" in str(exc) else "value"
        raise invalid_field(field, str(exc)) from None

    logger.info("watch scope %s: %s %s", row.id, row.kind, row.value)
    return shown(row)


def list_watches(store: Store) -> list[dict[str, Any]]:
    """Return the watch scopes, oldest first."""
    with store.session(write=False) as session:
        rows = poll_queries.list_watches(session)
    return [shown(row) for row in rows]


def remove_watch(store: Store, watch_id: str) -> None:
    """Remove a watch scope; the pairs it added stay tracked.

    Raises:
        NotFoundError: no watch scope by that id.
    """
    with store.session() as session:
        removed = poll_queries.remove_watch(session, watch_id)
    if not removed:
        raise NotFoundError(f"no watch scope {watch_id}")
    logger.info("watch scope %s removed", watch_id)


def shown(row: WatchScopeRow) -> dict[str, Any]:
    """Return a watch scope as JSON-ready fields."""
    return {
        "id": row.id,
        "kind": row.kind,
        "value": row.value,
        "created_at": row.created_at.isoformat(),
    }


def get_watch(store: Store, watch_id: str) -> dict[str, Any]:
    """Return one watch scope.

    Raises:
        NotFoundError: no watch scope by that id.
    """
    with store.session(write=False) as session:
        rows = poll_queries.list_watches(session)
    for row in rows:
        if row.id == watch_id:
            return shown(row)
    raise NotFoundError(f"no watch scope {watch_id}")
