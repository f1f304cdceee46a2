"""``python -m bridge events ...``: what arrived and what it became."""

from __future__ import annotations

import click

from bridge.cli import fail, print_json
from bridge.cli.common import fail_with, open_store
from bridge.errors import AdminError
from bridge.services import events as service
from bridge.services.pages import encode_cursor
from bridge.store.models import EventStatus


@click.group()
def events() -> None:
    """List and show inbound events."""


@events.command("list")
@click.option("--source", help="Only events of this source.")
@click.option(
    "--status",
    type=click.Choice([status.value for status in EventStatus]),
    help="Only events in this status.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--before", metavar="EVENT_ID", help="Page after this event id.")
@click.pass_context
def events_list(
    ctx: click.Context,
    source: str | None,
    status: str | None,
    limit: int,
    before: str | None,
) -> None:
    """List events, newest first."""
    filters = {"source": source, "status": status, "limit": limit}
    if before:
        filters["cursor"] = encode_cursor(service.CURSOR_KIND, before)
    try:
        page = service.list_events(open_store(ctx), filters)
    except AdminError as exc:
        fail_with(exc)
    print_json(page.items)


@events.command("show")
@click.argument("event_id")
@click.pass_context
def events_show(ctx: click.Context, event_id: str) -> None:
    """Show one event, its normalised form and the request it came in."""
    try:
        shown = service.show_event(open_store(ctx), event_id, with_deliveries=False)
    except AdminError as exc:
        fail(exc.message)
    print_json(shown)


@events.command("retry")
@click.argument("event_id", required=False)
@click.option("--all-failed", is_flag=True, help="Re-queue every failed event.")
@click.pass_context
def events_retry(ctx: click.Context, event_id: str | None, all_failed: bool) -> None:
    """Queue a failed or unresolved event again, or all failed ones."""
    if bool(event_id) == all_failed:
        fail("give an EVENT_ID or --all-failed", code=2)
    store = open_store(ctx)
    if not event_id:
        print_json({"requeued": service.retry_failed_events(store)})
        return
    try:
        count = service.retry_event(store, event_id)
    except AdminError:
        fail(f"no failed or unresolved event {event_id}")
    print_json({"requeued": count})
