"""``python -m bridge events ...``: what arrived and what it became."""

from __future__ import annotations

import base64
from typing import Any

import click

from bridge.cli import fail, print_json
from bridge.cli.common import open_store
from bridge.store import queries


@click.group()
def events() -> None:
    """List and show inbound events."""


@events.command("list")
@click.option("--source", help="Only events of this source.")
@click.option("--status", help="Only events in this status (pending, ...).")
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
    store = open_store(ctx)
    with store.session() as session:
        rows = queries.list_events(
            session, source=source, status=status, limit=limit, before=before
        )
    print_json([summary(row) for row in rows])


@events.command("show")
@click.argument("event_id")
@click.pass_context
def events_show(ctx: click.Context, event_id: str) -> None:
    """Show one event, its normalised form and the request it came in."""
    store = open_store(ctx)
    with store.session() as session:
        row = queries.get_event(session, event_id)
    if row is None:
        fail(f"no event {event_id}")
    shown = summary(row)
    shown.update(
        learner=row.learner,
        activity=row.activity,
        extra=row.extra,
        registration=row.registration,
        content_hash=row.content_hash,
    )
    if row.request is not None:
        shown["request"] = {
            "id": row.request.id,
            "received_at": row.request.received_at.isoformat(),
            "method": row.request.method,
            "path": row.request.path,
            "content_type": row.request.content_type,
            "headers": row.request.headers,
            "body": readable_body(row.request.body),
        }
    print_json(shown)


def summary(row: Any) -> dict[str, Any]:
    """Return the fields of an event that a listing shows."""
    return {
        "id": row.id,
        "source": row.source,
        "source_event_id": row.source_event_id,
        "kind": row.kind,
        "score": row.score,
        "status": row.status,
        "status_reason": row.status_reason,
        "occurred_at": row.occurred_at.isoformat(),
        "created_at": row.created_at.isoformat(),
        "note": row.note,
    }


def readable_body(body: bytes) -> str:
    """Return a body as text, or as base64 when it is not UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode("ascii")
