"""Inbound sources: list and show all of them, add and remove stored ones.

Sources of the sources file are read-only here; sources added here live in
the database and running web processes pick them up within seconds.
Secrets are stored, never returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields, validate

from bridge.adapters import FORMATS, build_adapter
from bridge.errors import (
    ConfigError,
    InvalidInputError,
    NotFoundError,
    StateConflictError,
)
from bridge.services.inputs import InputSchema, load_input
from bridge.sources import Source, validate_source
from bridge.store import queries

if TYPE_CHECKING:
    from bridge.registry import SourceRegistry

FILE = "file"
DATABASE = "database"


class SourceInputSchema(InputSchema):
    """A new source; auth and options are checked by the source rules."""

    name = fields.String(
        required=True, metadata={"description": "1 to 64 of a-z, 0-9, _ and -."}
    )
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))
    auth = fields.Dict(
        keys=fields.String(),
        required=True,
        metadata={"description": "`type` plus its parameters, e.g. username."},
    )
    options = fields.Dict(keys=fields.String(), load_default=dict)
    max_body_bytes = fields.Integer(load_default=None, allow_none=True)


class SourceSummarySchema(Schema):
    """A source as the listing shows it."""

    name = fields.String(required=True)
    format = fields.String(required=True)
    auth = fields.String(required=True, metadata={"description": "The auth type."})
    defined_in = fields.String(required=True, validate=validate.OneOf([FILE, DATABASE]))


class SourceSchema(Schema):
    """One source with its secrets masked."""

    name = fields.String(required=True)
    format = fields.String(required=True)
    auth = fields.Dict(required=True)
    options = fields.Dict(required=True)
    max_body_bytes = fields.Integer(allow_none=True)
    defined_in = fields.String(validate=validate.OneOf([FILE, DATABASE]))


def all_sources(registry: SourceRegistry) -> dict[str, tuple[Source, str]]:
    """Return {name: (source, where defined)}, read afresh from the store."""
    found = {
        name: (registry.get(name).source, FILE) for name in registry.file_source_names()
    }
    stored = registry.load_stored() if registry.store is not None else {}
    for name in sorted(stored):
        found.setdefault(name, (stored[name].source, DATABASE))
    return found


def list_sources(registry: SourceRegistry) -> list[dict[str, Any]]:
    """Return every source: name, format, auth type and where it is defined."""
    return [
        {
            "name": name,
            "format": source.format,
            "auth": source.auth.type,
            "defined_in": origin,
        }
        for name, (source, origin) in all_sources(registry).items()
    ]


def get_source(registry: SourceRegistry, name: str) -> dict[str, Any]:
    """Return one source with its secrets masked.

    Raises:
        NotFoundError: no source of that name.
    """
    found = all_sources(registry).get(name)
    if found is None:
        raise NotFoundError(f"no source named {name!r}")
    return {**found[0].public_dict(), "defined_in": found[1]}


def add_source(registry: SourceRegistry, data: Mapping[str, Any]) -> dict[str, Any]:
    """Add a source to the database and return it, secrets masked.

    Raises:
        InvalidInputError: a field breaks the source rules; each is named.
        StateConflictError: the name is taken by the file or the database.
    """
    values = load_input(SourceInputSchema(), data)
    name = values["name"]
    if name in registry.file_source_names():
        raise StateConflictError(
            f"source {name!r} is defined in the sources file; edit it there"
        )
    if values["max_body_bytes"] is None:
        del values["max_body_bytes"]
    source = checked_source(values)

    stored = source.to_storage()
    with store_of(registry).session() as session:
        try:
            queries.add_source(
                session,
                name,
                source.format,
                stored["auth"],
                stored["options"],
                max_body_bytes=stored["max_body_bytes"],
            )
        except ValueError as exc:
            raise StateConflictError(str(exc)) from None
    return source.public_dict()


def remove_source(registry: SourceRegistry, name: str) -> None:
    """Remove a source that was added to the database.

    Raises:
        StateConflictError: the source is defined in the sources file.
        NotFoundError: no stored source of that name.
    """
    if name in registry.file_source_names():
        raise StateConflictError(
            f"source {name!r} is defined in the sources file; edit it there"
        )
    with store_of(registry).session() as session:
        removed = queries.remove_source(session, name)
    if not removed:
        raise NotFoundError(f"no source named {name!r} in the database")


def checked_source(values: dict[str, Any]) -> Source:
    """Return the validated source, or raise with each problem by field.

    Raises:
        InvalidInputError: the source rules' problems, keyed by field path.
    """
    name = values["name"]
    try:
        return validate_source(values, where=name, adapter_factory=build_adapter)
    except ConfigError as exc:
        errors: dict[str, list[str]] = {}
        for problem in exc.problems:
            place, _, message = problem.partition(": ")
            field = place.removeprefix(f"{name}.") if message else ""
            if not message or field == place:
                field, message = "input", problem
            errors.setdefault(field, []).append(message)
        raise InvalidInputError(exc.problems[0], errors=errors) from exc


def store_of(registry: SourceRegistry) -> Any:
    """Return the registry's store; the services always build it with one."""
    if registry.store is None:
        raise StateConflictError("sources cannot be stored: the bridge has no store")
    return registry.store
