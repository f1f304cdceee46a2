"""``python -m bridge events ...``: what arrived and what it became."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import click

from bridge.cli import fail, print_json
from bridge.cli.common import open_store
from bridge.store import dispatch_queries as dq
from bridge.store import queries
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
    with store.session(write=False) as session:
        row = queries.get_event(session, event_id)
        calls = dq.list_calls(session, event_id)
    if row is None:
        fail(f"no event {event_id}")
    shown = summary(row)
    shown.update(
        learner=row.learner,
        activity=row.activity,
        extra=row.extra,
        registration=row.registration,
        content_hash=row.content_hash,
        user_id=row.user_id,
        learning_id=row.learning_id,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at and row.next_attempt_at.isoformat(),
        last_error=row.last_error,
        elms_calls=[
            {
                "method": call.method,
                "path": call.path,
                "status": call.status,
                "error": call.error,
                "at": call.called_at.isoformat(),
            }
            for call in calls
        ],
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
        "elms_call": row.elms_call,
    }


def readable_body(body: bytes) -> str:
    """Return a body as text, or as base64 when it is not UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode("ascii")


@events.command("retry")
@click.argument("event_id", required=False)
@click.option("--all-failed", is_flag=True, help="Re-queue every failed event.")
@click.pass_context
def events_retry(ctx: click.Context, event_id: str | None, all_failed: bool) -> None:
    """Queue a failed or unresolved event again, or all failed ones."""
    if bool(event_id) == all_failed:
        fail("give an EVENT_ID or --all-failed", code=2)
    store = open_store(ctx)
    with store.session() as session:
        count = dq.requeue_events(session, now=datetime.now(UTC), event_id=event_id)
    if event_id and not count:
        fail(f"no failed or unresolved event {event_id}")
    print_json({"requeued": count})
