"""Admin routes of inbound sources."""

from __future__ import annotations

from typing import Any

from bridge.services import sources as service
from bridge.services.sources import SourceInputSchema, SourceSchema, SourceSummarySchema
from bridge.web.admin.guard import admin_blueprint
from bridge.web.context import bridge_context

blueprint = admin_blueprint(
    "sources",
    "/sources",
    "Inbound sources. Those of the sources file are read-only; secrets are masked.",
)


@blueprint.get("")
@blueprint.response(200, SourceSummarySchema(many=True))
def list_sources() -> Any:
    """List every source: name, format, auth type and where it is defined."""
    return service.list_sources(bridge_context().registry)


@blueprint.post("")
@blueprint.arguments(SourceInputSchema)
@blueprint.response(201, SourceSchema)
def add_source(data: dict[str, Any]) -> Any:
    """Add a source to the database; web processes pick it up within seconds."""
    return service.add_source(bridge_context().registry, data)


@blueprint.get("/<name>")
@blueprint.response(200, SourceSchema)
def get_source(name: str) -> Any:
    """Show one source with its secrets masked."""
    return service.get_source(bridge_context().registry, name)


@blueprint.delete("/<name>")
@blueprint.response(204)
def remove_source(name: str) -> Any:
    """Remove a source added to the database (409 for a file source)."""
    service.remove_source(bridge_context().registry, name)
    return None
