"""Admin routes of outbound webhook subscriptions."""

from __future__ import annotations

from typing import Any

from bridge.services import subscriptions as service
from bridge.services.subscriptions import (
    RemovalSchema,
    RotationSchema,
    SubscriptionChangesSchema,
    SubscriptionCreateSchema,
    SubscriptionFiltersSchema,
    SubscriptionSchema,
)
from bridge.web.admin.guard import admin_blueprint
from bridge.web.context import bridge_context

blueprint = admin_blueprint(
    "subscriptions",
    "/subscriptions",
    "Outbound webhook subscribers. A secret is shown once: on create and rotate.",
)


@blueprint.get("")
@blueprint.arguments(SubscriptionFiltersSchema, location="query")
@blueprint.response(200, SubscriptionSchema(many=True))
def list_subscriptions(filters: dict[str, Any]) -> Any:
    """List the subscriptions, oldest first, secrets masked."""
    store = bridge_context().store
    return service.list_subscriptions(store, enabled=filters["enabled"])


@blueprint.post("")
@blueprint.arguments(SubscriptionCreateSchema)
@blueprint.response(201, SubscriptionSchema)
def create_subscription(data: dict[str, Any]) -> Any:
    """Subscribe a URL; the answer holds the secret, shown this once."""
    context = bridge_context()
    return service.create_subscription(context.store, context.settings, data)


@blueprint.get("/<subscription_id>")
@blueprint.response(200, SubscriptionSchema)
def get_subscription(subscription_id: str) -> Any:
    """Show one subscription, secrets masked."""
    return service.get_subscription(bridge_context().store, subscription_id)


@blueprint.patch("/<subscription_id>")
@blueprint.arguments(SubscriptionChangesSchema)
@blueprint.response(200, SubscriptionSchema)
def update_subscription(changes: dict[str, Any], subscription_id: str) -> Any:
    """Change the fields given; null clears an optional one."""
    context = bridge_context()
    return service.update_subscription(
        context.store, context.settings, subscription_id, changes
    )


@blueprint.delete("/<subscription_id>")
@blueprint.arguments(RemovalSchema, location="query")
@blueprint.response(204)
def remove_subscription(options: dict[str, Any], subscription_id: str) -> Any:
    """Remove a subscription; one with deliveries needs purge=true (409 without)."""
    store = bridge_context().store
    service.remove_subscription(store, subscription_id, purge=options["purge"])
    return None


@blueprint.post("/<subscription_id>/rotate-secret")
@blueprint.arguments(RotationSchema, required=False)
@blueprint.response(200, SubscriptionSchema)
def rotate_secret(data: dict[str, Any], subscription_id: str) -> Any:
    """Give a subscription a new secret; the answer shows it this once."""
    context = bridge_context()
    return service.rotate_secret(context.store, context.settings, subscription_id, data)


@blueprint.post("/<subscription_id>/enable")
@blueprint.response(200, SubscriptionSchema)
def enable_subscription(subscription_id: str) -> Any:
    """Enable a subscription, forgetting its past failures."""
    return service.set_enabled(bridge_context().store, subscription_id, True)


@blueprint.post("/<subscription_id>/disable")
@blueprint.response(200, SubscriptionSchema)
def disable_subscription(subscription_id: str) -> Any:
    """Disable a subscription; its deliveries wait until it is enabled."""
    return service.set_enabled(bridge_context().store, subscription_id, False)
