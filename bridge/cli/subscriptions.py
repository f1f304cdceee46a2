"""``python -m bridge subscriptions ...``: manage outbound webhook subscribers.

A subscription's secret is printed once, by ``add`` and ``rotate-secret``,
for the operator to hand to the subscriber; ``list`` and ``show`` mask it.
URLs pass the SSRF guard before they are stored; networks in
``BRIDGE_ALLOW_PRIVATE_TARGETS`` are let through.
"""

from __future__ import annotations

import json
from typing import Any

import click

from bridge.cli import fail, get_settings, print_json
from bridge.cli.common import fail_with, open_store
from bridge.errors import AdminError
from bridge.outbound_types import EVENT_TYPES
from bridge.services import subscriptions as service

TYPE_HELP = f"Event type to receive, repeatable: {', '.join(EVENT_TYPES)} or `*`."
LEARNING_HELP = "Only events about this Open ELMS learning id; repeatable."
GROUP_HELP = "Only events about users of this Open ELMS user group."
ONCE_NOTE = "Give this secret to the subscriber now; it is not shown again."


@click.group()
def subscriptions() -> None:
    """Add, list, change, remove and re-key outbound webhook subscriptions."""


@subscriptions.command("add")
@click.argument("url")
@click.option("--type", "event_types", multiple=True, help=TYPE_HELP)
@click.option("--learning-id", "learning_ids", multiple=True, help=LEARNING_HELP)
@click.option("--group", default=None, help=GROUP_HELP)
@click.option("--description", default=None, help="A note for operators.")
@click.option("--secret", default=None, help="A whsec_ secret; default: a new one.")
@click.option("--disabled", is_flag=True, help="Add it disabled.")
@click.pass_context
def subscriptions_add(
    ctx: click.Context,
    url: str,
    event_types: tuple[str, ...],
    learning_ids: tuple[str, ...],
    group: str | None,
    description: str | None,
    secret: str | None,
    disabled: bool,
) -> None:
    """Subscribe URL to the event types given (every type if none is)."""
    settings = get_settings(ctx)
    data: dict[str, Any] = {
        "url": url,
        "description": description,
        "learning_ids": list(learning_ids) or None,
        "user_group_id": group,
        "secret": secret,
        "enabled": not disabled,
    }
    if event_types:
        data["event_types"] = list(event_types)
    try:
        added = service.create_subscription(open_store(ctx), settings, data)
    except AdminError as exc:
        fail_with(exc)
    print_json({"subscription": added, "note": ONCE_NOTE})


@subscriptions.command("list")
@click.option(
    "--enabled/--disabled", default=None, help="Only enabled or disabled ones."
)
@click.pass_context
def subscriptions_list(ctx: click.Context, enabled: bool | None) -> None:
    """List the subscriptions, oldest first, secrets masked."""
    print_json(service.list_subscriptions(open_store(ctx), enabled=enabled))


@subscriptions.command("show")
@click.argument("subscription_id")
@click.pass_context
def subscriptions_show(ctx: click.Context, subscription_id: str) -> None:
    """Show one subscription, secrets masked."""
    try:
        print_json(service.get_subscription(open_store(ctx), subscription_id))
    except AdminError as exc:
        fail_with(exc)


@subscriptions.command("update")
@click.argument("subscription_id")
@click.option("--url", default=None, help="A new target URL.")
@click.option("--type", "event_types", multiple=True, help=TYPE_HELP)
@click.option("--learning-id", "learning_ids", multiple=True, help=LEARNING_HELP)
@click.option("--all-learnings", is_flag=True, help="Drop the learning filter.")
@click.option("--group", default=None, help=GROUP_HELP)
@click.option("--no-group", is_flag=True, help="Drop the user group filter.")
@click.option("--description", default=None, help="A new note; empty clears it.")
@click.option(
    "--enable/--disable",
    "enabled",
    default=None,
    help="Enable (forgetting past failures) or disable it.",
)
@click.pass_context
def subscriptions_update(
    ctx: click.Context, subscription_id: str, **given: Any
) -> None:
    """Change the fields given; the others stay as they are."""
    changes = collect_changes(**given)
    if not changes:
        fail("nothing to change; see --help", code=2)
    settings = get_settings(ctx)
    try:
        updated = service.update_subscription(
            open_store(ctx), settings, subscription_id, changes
        )
    except AdminError as exc:
        fail_with(exc)
    print_json(updated)


@subscriptions.command("remove")
@click.argument("subscription_id")
@click.option("--purge", is_flag=True, help="Delete its delivery history too.")
@click.pass_context
def subscriptions_remove(ctx: click.Context, subscription_id: str, purge: bool) -> None:
    """Remove a subscription; one with deliveries needs --purge (or disable it)."""
    try:
        service.remove_subscription(open_store(ctx), subscription_id, purge=purge)
    except AdminError as exc:
        fail_with(exc)
    click.echo(json.dumps({"removed": subscription_id}))


@subscriptions.command("rotate-secret")
@click.argument("subscription_id")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds the old secret keeps signing; default BRIDGE_ROTATION_GRACE.",
)
@click.option("--secret", default=None, help="The new whsec_ secret; default: new.")
@click.pass_context
def subscriptions_rotate_secret(
    ctx: click.Context, subscription_id: str, grace: float | None, secret: str | None
) -> None:
    """Give a subscription a new secret and print it once."""
    settings = get_settings(ctx)
    data = {"grace_seconds": grace, "secret": secret}
    try:
        rotated = service.rotate_secret(
            open_store(ctx), settings, subscription_id, data
        )
    except AdminError as exc:
        fail_with(exc)
    print_json({"subscription": rotated, "note": ONCE_NOTE})


def collect_changes(
    *,
    url: str | None,
    event_types: tuple[str, ...],
    learning_ids: tuple[str, ...],
    all_learnings: bool,
    group: str | None,
    no_group: bool,
    description: str | None,
    enabled: bool | None,
) -> dict[str, Any]:
    """Return the update's changes from the options that were given."""
    if learning_ids and all_learnings:
        fail("give --learning-id or --all-learnings, not both", code=2)
    if group is not None and no_group:
        fail("give --group or --no-group, not both", code=2)

    candidates: dict[str, Any] = {
        "url": url,
        "event_types": event_types or None,
        "learning_ids": learning_ids or None,
        "user_group_id": group,
        "description": description,
        "enabled": enabled,
    }
    changes = {name: value for name, value in candidates.items() if value is not None}
    if all_learnings:
        changes["learning_ids"] = None
    if no_group:
        changes["user_group_id"] = None
    return changes
