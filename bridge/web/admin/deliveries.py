"""Admin routes of outbound deliveries."""

from __future__ import annotations

from typing import Any

from bridge.services import deliveries as service
from bridge.services.deliveries import (
    DeliveryFiltersSchema,
    DeliveryPageSchema,
    DeliverySchema,
    ReplayedSchema,
    ReplaySchema,
)
from bridge.services.events import RetriedSchema
from bridge.web.admin.guard import admin_blueprint
from bridge.web.context import bridge_context

blueprint = admin_blueprint(
    "deliveries",
    "/deliveries",
    "Outbound deliveries: one event to one subscription, with every attempt.",
)


@blueprint.get("")
@blueprint.arguments(DeliveryFiltersSchema, location="query")
@blueprint.response(200, DeliveryPageSchema)
def list_deliveries(filters: dict[str, Any]) -> Any:
    """List deliveries newest first; follow `next_cursor` for the next page."""
    return service.list_deliveries(bridge_context().store, filters).to_dict()


@blueprint.get("/<delivery_id>")
@blueprint.response(200, DeliverySchema)
def show_delivery(delivery_id: str) -> Any:
    """Show one delivery with every attempt, oldest first."""
    return service.show_delivery(bridge_context().store, delivery_id)


@blueprint.post("/<delivery_id>/retry")
@blueprint.response(200, RetriedSchema)
def retry_delivery(delivery_id: str) -> Any:
    """Queue a delivery again from its first attempt (409 while being sent)."""
    return {"requeued": service.retry_delivery(bridge_context().store, delivery_id)}


@blueprint.post("/replay")
@blueprint.arguments(ReplaySchema)
@blueprint.response(200, ReplayedSchema)
def replay(data: dict[str, Any]) -> Any:
    """Replay to a subscription: failed deliveries, or past events of a type."""
    return service.replay(bridge_context().store, data)
