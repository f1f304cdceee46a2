"""Admin routes of inbound events."""

from __future__ import annotations

from typing import Any

from bridge.services import events as service
from bridge.services.events import (
    EventFiltersSchema,
    EventPageSchema,
    EventSchema,
    RetriedSchema,
)
from bridge.web.admin.guard import admin_blueprint
from bridge.web.context import bridge_context

blueprint = admin_blueprint(
    "events",
    "/events",
    "Inbound events: what arrived, what it became in Open ELMS, retries.",
)


@blueprint.get("")
@blueprint.arguments(EventFiltersSchema, location="query")
@blueprint.response(200, EventPageSchema)
def list_events(filters: dict[str, Any]) -> Any:
    """List events newest first; follow `next_cursor` for the next page."""
    return service.list_events(bridge_context().store, filters).to_dict()


@blueprint.get("/<event_id>")
@blueprint.response(200, EventSchema)
def show_event(event_id: str) -> Any:
    """Show one event with its request, Open ELMS calls and deliveries."""
    return service.show_event(bridge_context().store, event_id)


@blueprint.post("/<event_id>/retry")
@blueprint.response(200, RetriedSchema)
def retry_event(event_id: str) -> Any:
    """Queue a failed or unresolved event again (409 in another status)."""
    return {"requeued": service.retry_event(bridge_context().store, event_id)}
