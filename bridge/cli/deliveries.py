"""``python -m bridge deliveries ...``: outbound deliveries, their attempts, replay."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from bridge.cli import fail, print_json
from bridge.cli.common import open_store
from bridge.outbound_types import check_event_type
from bridge.store import delivery_queries as dq
from bridge.store.subscription_queries import get_subscription

if TYPE_CHECKING:
    from bridge.store.db import Store

STATUSES = [status.value for status in dq.DeliveryStatus]


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
    with store_of(ctx) as store, store.session(write=False) as session:
        rows = dq.list_deliveries(
            session,
            subscription_id=subscription,
            status=status,
            since=since,
            limit=limit,
        )
    print_json([summary(row) for row in rows])


@deliveries.command("show")
@click.argument("delivery_id")
@click.pass_context
def deliveries_show(ctx: click.Context, delivery_id: str) -> None:
    """Show one delivery with every attempt, oldest first."""
    with store_of(ctx) as store, store.session(write=False) as session:
        row = dq.get_delivery(session, delivery_id)
    if row is None:
        fail(f"no delivery {delivery_id}")
    shown = summary(row)
    shown["attempt_log"] = [
        jsonable(dataclasses.asdict(attempt)) for attempt in row.attempt_log
    ]
    print_json(shown)


@deliveries.command("retry")
@click.argument("delivery_id")
@click.pass_context
def deliveries_retry(ctx: click.Context, delivery_id: str) -> None:
    """Queue one delivery again from its first attempt (also a delivered one)."""
    with store_of(ctx) as store, store.session() as session:
        done = dq.retry_delivery(session, delivery_id, now=datetime.now(UTC))
    if not done:
        fail(f"no delivery {delivery_id}, or it is being sent right now")
    print_json({"requeued": 1})


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
    if event_type is not None:
        try:
            check_event_type(event_type)
        except ValueError as exc:
            fail(str(exc), code=2)

    now = datetime.now(UTC)
    with store_of(ctx) as store, store.session() as session:
        if get_subscription(session, subscription) is None:
            fail(f"no subscription {subscription}")
        if failed_since is not None:
            count = dq.replay_failed(session, subscription, failed_since, now=now)
            answer = {"requeued": count}
        else:
            assert event_type is not None and since is not None  # noqa: S101
            created, requeued = dq.replay_events(
                session, subscription, event_type, since, now=now
            )
            answer = {"created": created, "requeued": requeued}
    print_json(answer)


def summary(row: dq.DeliveryRow) -> dict[str, Any]:
    """Return the fields of a delivery that a listing shows."""
    shown = dataclasses.asdict(row)
    shown.pop("attempt_log")
    return jsonable(shown)


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Return a dict with its datetimes in ISO 8601."""
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in values.items()
    }
