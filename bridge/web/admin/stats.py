"""Admin route of the operator's figures."""

from __future__ import annotations

from typing import Any

from bridge.services import stats as service
from bridge.services.stats import StatsSchema
from bridge.web.admin.guard import admin_blueprint
from bridge.web.context import bridge_context

blueprint = admin_blueprint(
    "stats", "/stats", "Queues by state, backlog ages and subscriber success rates."
)


@blueprint.get("")
@blueprint.response(200, StatsSchema)
def get_stats() -> Any:
    """Return counts by state, oldest pending ages and per-subscription rates."""
    return service.collect_stats(bridge_context().store)
