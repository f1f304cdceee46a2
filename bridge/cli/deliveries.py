"""``python -m bridge deliveries ...``: outbound deliveries, their attempts, replay."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from bridge.cli import fail, print_json
from bridge.cli.common import fail_with, open_store
from bridge.errors import AdminError
from bridge.services import deliveries as service
from bridge.services.deliveries import STATUSES

if TYPE_CHECKING:
    from bridge.store.db import Store


class IsoTime(click.ParamType):
    """An ISO 8601 time; one without an offset is taken as UTC."""

    name = "ISO-TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        """Return the value as an aware datetime, or fail with a usage error."""
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


ISO_TIME = IsoTime()


@contextmanager
def store_of(ctx: click.Context) -> Iterator[Store]:
    """Yield the configured store and close its connections afterwards."""
    store = open_store(ctx)
    try:
        yield store
    finally:
        store.dispose()


@click.group()
def deliveries() -> None:
    """List, show, retry and replay outbound deliveries."""


@deliveries.command("list")
@click.option("--subscription", help="Only deliveries to this subscription id.")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option("--since", type=ISO_TIME, help="Only deliveries created since then.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.pass_context
def deliveries_list(
    ctx: click.Context,
    subscription: str | None,
    status: str | None,
    since: datetime | None,
    limit: int,
) -> None:
    """List deliveries, newest first."""
    filters = {
        "subscription_id": subscription,
        "status": status,
        "since": since,
        "limit": limit,
    }
    with store_of(ctx) as store:
        try:
            page = service.list_deliveries(store, filters)
        except AdminError as exc:
            fail_with(exc)
    print_json(page.items)


@deliveries.command("show")
@click.argument("delivery_id")
@click.pass_context
def deliveries_show(ctx: click.Context, delivery_id: str) -> None:
    """Show one delivery with every attempt, oldest first."""
    with store_of(ctx) as store:
        try:
            shown = service.show_delivery(store, delivery_id)
        except AdminError as exc:
            fail_with(exc)
    print_json(shown)


@deliveries.command("retry")
@click.argument("delivery_id")
@click.pass_context
def deliveries_retry(ctx: click.Context, delivery_id: str) -> None:
    """Queue one delivery again from its first attempt (also a delivered one)."""
    with store_of(ctx) as store:
        try:
            count = service.retry_delivery(store, delivery_id)
        except AdminError:
            fail(f"no delivery {delivery_id}, or it is being sent right now")
    print_json({"requeued": count})


@deliveries.command("replay")
@click.option("--subscription", required=True, help="The subscription id.")
@click.option(
    "--failed-since",
    type=ISO_TIME,
    help="Queue again its failed deliveries created since then.",
)
@click.option("--type", "event_type", help="Send it past events of this type ...")
@click.option("--since", type=ISO_TIME, help="... created since then.")
@click.pass_context
def deliveries_replay(
    ctx: click.Context,
    subscription: str,
    failed_since: datetime | None,
    event_type: str | None,
    since: datetime | None,
) -> None:
    """Replay to a subscription: its failed deliveries, or past events of a type.

    Give either --failed-since, or --type with --since. Past events it
    already had are queued again; the others get a new delivery.
    """
    by_type = event_type is not None or since is not None
    if failed_since is not None and by_type:
        fail("give --failed-since, or --type with --since, not both", code=2)
    if failed_since is None and not (event_type and since):
        fail("give --failed-since, or --type with --since", code=2)

    request = {
        "subscription_id": subscription,
        "failed_since": failed_since,
        "event_type": event_type,
        "since": since,
    }
    with store_of(ctx) as store:
        try:
            counts = service.replay(store, request)
        except AdminError as exc:
            fail_with(exc)
    if failed_since is not None:
        counts = {"requeued": counts["requeued"]}
    print_json(counts)
