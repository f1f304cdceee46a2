"""Admin routes of the poller's watch scopes."""

from __future__ import annotations

from typing import Any

from bridge.services import watch as service
from bridge.services.watch import WatchScopeInputSchema, WatchScopeSchema
from bridge.web.admin.guard import admin_blueprint
from bridge.web.context import bridge_context

blueprint = admin_blueprint(
    "watch-scopes",
    "/watch-scopes",
    "Users, groups and learnings whose progress in Open ELMS the poller tracks.",
)


@blueprint.get("")
@blueprint.response(200, WatchScopeSchema(many=True))
def list_watches() -> Any:
    """List the watch scopes, oldest first."""
    return service.list_watches(bridge_context().store)


@blueprint.post("")
@blueprint.arguments(WatchScopeInputSchema)
@blueprint.response(201, WatchScopeSchema)
def add_watch(data: dict[str, Any]) -> Any:
    """Watch a scope; one already watched is answered as it is."""
    return service.add_watch(bridge_context().store, data)


@blueprint.get("/<watch_id>")
@blueprint.response(200, WatchScopeSchema)
def get_watch(watch_id: str) -> Any:
    """Show one watch scope."""
    return service.get_watch(bridge_context().store, watch_id)


@blueprint.delete("/<watch_id>")
@blueprint.response(204)
def remove_watch(watch_id: str) -> Any:
    """Stop watching a scope; the pairs it added stay tracked."""
    service.remove_watch(bridge_context().store, watch_id)
    return None
