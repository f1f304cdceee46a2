"""``python -m bridge watch ...``: what the poller tracks in Open ELMS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from bridge.cli import fail, print_json
from bridge.cli.common import open_store
from bridge.store import poll_queries as pq

if TYPE_CHECKING:
    from bridge.store.poll_queries import WatchScopeRow


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
    store = open_store(ctx)
    try:
        with store.session() as session:
            row = pq.add_watch(session, kind, value, now=datetime.now(UTC))
    except ValueError as exc:
        fail(str(exc), code=2)
    print_json(shown(row))


@watch.command("list")
@click.pass_context
def watch_list(ctx: click.Context) -> None:
    """List the watch scopes, oldest first."""
    store = open_store(ctx)
    with store.session(write=False) as session:
        rows = pq.list_watches(session)
    print_json([shown(row) for row in rows])


@watch.command("remove")
@click.argument("watch_id")
@click.pass_context
def watch_remove(ctx: click.Context, watch_id: str) -> None:
    """Remove a watch scope; the pairs it added stay tracked."""
    store = open_store(ctx)
    with store.session() as session:
        removed = pq.remove_watch(session, watch_id)
    if not removed:
        fail(f"no watch scope {watch_id}")
    print_json({"removed": watch_id})


def shown(row: WatchScopeRow) -> dict[str, Any]:
    """Return a watch scope as JSON-ready fields."""
    return {
        "id": row.id,
        "kind": row.kind,
        "value": row.value,
        "created_at": row.created_at.isoformat(),
    }
