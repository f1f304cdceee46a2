"""``python -m bridge watch ...``: what the poller tracks in Open ELMS."""

from __future__ import annotations

import click

from bridge.cli import fail, print_json
from bridge.cli.common import fail_with, open_store
from bridge.errors import AdminError
from bridge.services import watch as service
from bridge.store import poll_queries as pq


@click.group()
def watch() -> None:
    """Add, list and remove watch scopes of the progress poller.

    A scope names a user, a group or a learning resource in Open ELMS; the
    worker tracks every (user, learning) pair it covers and announces
    their progress changes to subscribers.
    """


@watch.command("add")
@click.argument("kind", type=click.Choice(pq.WATCH_KINDS))
@click.argument("value")
@click.pass_context
def watch_add(ctx: click.Context, kind: str, value: str) -> None:
    """Watch a user, group, learning (or user_learning) by its Open ELMS id."""
    try:
        added = service.add_watch(open_store(ctx), {"kind": kind, "value": value})
    except AdminError as exc:
        fail_with(exc)
    print_json(added)


@watch.command("list")
@click.pass_context
def watch_list(ctx: click.Context) -> None:
    """List the watch scopes, oldest first."""
    print_json(service.list_watches(open_store(ctx)))


@watch.command("remove")
@click.argument("watch_id")
@click.pass_context
def watch_remove(ctx: click.Context, watch_id: str) -> None:
    """Remove a watch scope; the pairs it added stay tracked."""
    try:
        service.remove_watch(open_store(ctx), watch_id)
    except AdminError as exc:
        fail(exc.message)
    print_json({"removed": watch_id})
