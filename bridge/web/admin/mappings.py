"""Admin routes of activity -> learning id mappings."""

from __future__ import annotations

from typing import Any

from bridge.services import mappings as service
from bridge.services.mappings import (
    MappingAddedSchema,
    MappingFiltersSchema,
    MappingInputSchema,
    MappingSchema,
)
from bridge.web.admin.guard import admin_blueprint
from bridge.web.context import bridge_context

blueprint = admin_blueprint(
    "mappings",
    "/mappings",
    "Activity keys mapped to Open ELMS learning ids, per source or for all (`*`).",
)


@blueprint.get("")
@blueprint.arguments(MappingFiltersSchema, location="query")
@blueprint.response(200, MappingSchema(many=True))
def list_mappings(filters: dict[str, Any]) -> Any:
    """List the mappings by source and key."""
    return service.list_mappings(bridge_context().store, filters)


@blueprint.post("")
@blueprint.arguments(MappingInputSchema)
@blueprint.response(201, MappingAddedSchema)
def add_mapping(data: dict[str, Any]) -> Any:
    """Add a mapping; the unresolved events it resolves are queued again."""
    return service.add_mapping(bridge_context().store, data)


@blueprint.get("/<mapping_id>")
@blueprint.response(200, MappingSchema)
def get_mapping(mapping_id: str) -> Any:
    """Show one mapping."""
    return service.get_mapping(bridge_context().store, mapping_id)


@blueprint.delete("/<mapping_id>")
@blueprint.response(204)
def remove_mapping(mapping_id: str) -> Any:
    """Remove a mapping by its id."""
    service.remove_mapping_by_id(bridge_context().store, mapping_id)
    return None
