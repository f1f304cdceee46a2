"""Mappings of activity keys to Open ELMS learning ids.

Adding a mapping puts the unresolved events it resolves back in the
queue, so the worker delivers them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, ValidationError, fields, validate

from bridge.errors import NotFoundError, StateConflictError
from bridge.services.fields import timestamp
from bridge.services.inputs import InputSchema, invalid_field, load_input
from bridge.sources import NAME_PATTERN
from bridge.store import mapping_queries
from bridge.store.mapping_queries import ANY_SOURCE

if TYPE_CHECKING:
    from bridge.store.db import Store

# As long as the column that keeps it: a longer key could not be stored.
MAX_KEY_LENGTH = 1024
SOURCE_HELP = "Source the mapping applies to; `*` (the default) means every source."


def check_source(source: str) -> None:
    """Refuse a source that is neither a source name nor ``*``."""
    if source != ANY_SOURCE and not re.fullmatch(NAME_PATTERN, source):
        raise ValidationError(f"must be a source name or `*`; got {source!r}")


def source_field(**kwargs: Any) -> fields.String:
    """Return the field naming the source of a mapping."""
    return fields.String(
        validate=check_source, metadata={"description": SOURCE_HELP}, **kwargs
    )


class MappingInputSchema(InputSchema):
    """A new mapping of an activity key to a learning id."""

    activity_key = fields.String(
        required=True,
        validate=validate.Length(1, MAX_KEY_LENGTH),
        metadata={"description": "An IRI, course id or content id; any case."},
    )
    learning_id = fields.String(required=True, validate=validate.Length(1, 64))
    source = source_field(load_default=ANY_SOURCE)


class MappingFiltersSchema(InputSchema):
    """Filter of the mapping listing."""

    source = source_field(load_default=None)


class MappingSchema(Schema):
    """A stored mapping."""

    id = fields.String(required=True)
    source = fields.String(required=True)
    activity_key = fields.String(required=True)
    learning_id = fields.String(required=True)
    created_at = timestamp(required=True)


class MappingAddedSchema(Schema):
    """A new mapping and how many waiting events it put back in the queue."""

    mapping = fields.Nested(MappingSchema, required=True)
    requeued = fields.Integer(required=True)


def add_mapping(store: Store, data: Mapping[str, Any]) -> dict[str, Any]:
    """Add a mapping and requeue the unresolved events it resolves.

    Raises:
        InvalidInputError: a field is wrong.
        StateConflictError: the key is already mapped for that source.
    """
    values = load_input(MappingInputSchema(), data)
    with store.session() as session:
        try:
            row = mapping_queries.add_mapping(
                session,
                activity_key=values["activity_key"],
                learning_id=values["learning_id"],
                source=values["source"],
            )
        except ValueError as exc:
            if "already mapped" in str(exc):
                raise StateConflictError(str(exc)) from None
            field = "learning_id" if "learning id" in str(exc) else "activity_key"
            raise invalid_field(field, str(exc)) from None
        requeued = mapping_queries.requeue_unresolved(
            session, values["activity_key"], values["source"]
        )
    return {"mapping": row.to_dict(), "requeued": requeued}


def list_mappings(store: Store, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the mappings by source and key, optionally of one source."""
    values = load_input(MappingFiltersSchema(), filters)
    with store.session(write=False) as session:
        rows = mapping_queries.list_mappings(session, values["source"])
    return [row.to_dict() for row in rows]


def get_mapping(store: Store, mapping_id: str) -> dict[str, Any]:
    """Return one mapping by its id.

    Raises:
        NotFoundError: no mapping by that id.
    """
    with store.session(write=False) as session:
        rows = mapping_queries.list_mappings(session)
    for row in rows:
        if row.id == mapping_id:
            return row.to_dict()
    raise NotFoundError(f"no mapping {mapping_id!r}")


def remove_mapping(store: Store, id_or_key: str, source: str = ANY_SOURCE) -> None:
    """Remove a mapping by its id, or by its key and source.

    Raises:
        NotFoundError: no such mapping.
    """
    with store.session() as session:
        removed = mapping_queries.remove_mapping(session, id_or_key, source)
    if not removed:
        raise NotFoundError(f"no mapping {id_or_key!r} for source {source!r}")


def remove_mapping_by_id(store: Store, mapping_id: str) -> None:
    """Remove a mapping by its id only, never by a key that looks like one.

    Raises:
        NotFoundError: no mapping by that id.
    """
    get_mapping(store, mapping_id)
    remove_mapping(store, mapping_id)
