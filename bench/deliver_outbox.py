"""Fill and read the outbox of one ``bench/deliver.py`` scenario.

Writing goes through the bridge's store functions: subscriptions through
``add_subscription``, events through ``record_transition``, the call the
poller makes when Open ELMS reports a completion. Reading counts the
deliveries per subscription and status, which no product query does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import requests
from sqlalchemy import func, select

from bridge.elms_shapes import Status
from bridge.jobs.deliver import encode_body
from bridge.outbound_types import EventType
from bridge.store import poll_queries as pq
from bridge.store import subscription_queries as sq
from bridge.store.db import Store, create_store
from bridge.store.delivery_queries import DeliveryStatus
from bridge.store.migrate import upgrade
from bridge.store.outbound_models import DeliveryModel, OutboundEventModel

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

COMPLETED = EventType.PROGRESS_COMPLETED.value
LEARNING_ID = "7"
LEARNING = {"id": LEARNING_ID, "name": "Fire Safety Awareness"}


@dataclass(frozen=True)
class Outbox:
    """A scenario's database: its store, sink paths and subscriptions."""

    name: str
    store: Store
    sink: str
    fast: dict[str, str]  # subscription id -> sink path
    slow: dict[str, str]

    def sink_counts(self) -> dict[str, int]:
        """Return how many POSTs the sink got on each fast path of this outbox."""
        response = requests.get(f"{self.sink}/counts", timeout=10)
        response.raise_for_status()
        counts = response.json()
        return {path: int(counts.get(path, 0)) for path in self.fast.values()}


@dataclass(frozen=True)
class Tally:
    """Deliveries of an outbox by kind of subscriber and status."""

    fast_total: int
    fast_delivered: int
    fast_failed: int
    fast_retried: int
    fast_seconds: float
    slow_total: int
    slow_delivered: int

    @property
    def fast_pending(self) -> int:
        """Return the fast deliveries neither delivered nor failed."""
        return self.fast_total - self.fast_delivered - self.fast_failed

    def describe_problems(self, sink_received: int) -> str:
        """Return what went wrong with the fast deliveries, or an empty string."""
        problems = []
        if self.fast_failed:
            problems.append(f"{self.fast_failed} failed")
        if self.fast_retried:
            problems.append(f"{self.fast_retried} extra attempts")
        if sink_received != self.fast_delivered:
            problems.append(
                f"the sink got {sink_received} posts for "
                f"{self.fast_delivered} recorded deliveries"
            )
        return "; ".join(problems)


def prepare_outbox(
    path: Path, name: str, sink: str, *, fast: int, slow: int, events: int
) -> Outbox:
    """Migrate a fresh database, subscribe the sink, and write the events."""
    url = f"sqlite:///{path}"
    upgrade(url)
    store = create_store(url)

    fast_paths = [f"/fast/{name}-{index}" for index in range(fast)]
    slow_paths = [f"/slow/{name}-{index}" for index in range(slow)]
    with store.session() as session:
        fast_ids = {subscribe(session, sink + p): p for p in fast_paths}
        slow_ids = {subscribe(session, sink + p): p for p in slow_paths}

    write_completions(store, events)
    return Outbox(name, store, sink, fast_ids, slow_ids)


def subscribe(session: Session, url: str) -> str:
    """Subscribe ``url`` to completions; return the subscription id."""
    return sq.add_subscription(session, url=url, event_types=[COMPLETED]).id


def write_completions(store: Store, events: int) -> None:
    """Write ``events`` completions of distinct learners, one transaction."""
    now = datetime.now(UTC)
    with store.session() as session:
        for index in range(events):
            pq.record_transition(
                session,
                user_id=str(1000 + index),
                learning_id=LEARNING_ID,
                old_status=Status.IN_PROGRESS.value,
                old_score=None,
                new_status=Status.COMPLETED.value,
                new_score=80.0 + index % 20,
                cause="elms",
                user={"email": f"learner{index}@example.org"},
                learning=LEARNING,
                now=now,
            )


def delivery_bodies(outbox: Outbox) -> list[tuple[str, str, bytes]]:
    """Return (event id, secret, body) for every fast delivery of the outbox."""
    with outbox.store.session(write=False) as session:
        events = session.execute(
            select(OutboundEventModel.id, OutboundEventModel.payload).order_by(
                OutboundEventModel.created_at, OutboundEventModel.id
            )
        ).all()
        secrets = [
            row.secret
            for sub_id in outbox.fast
            if (row := sq.get_subscription(session, sub_id)) is not None
        ]

    return [
        (event_id, secret, encode_body(payload))
        for event_id, payload in events
        for secret in secrets
    ]


def tally(outbox: Outbox, started_at: datetime) -> Tally:
    """Count the outbox's deliveries; time the fast ones from ``started_at``."""
    query = select(
        DeliveryModel.subscription_id,
        DeliveryModel.status,
        func.count(),
        func.sum(DeliveryModel.attempts),
        func.max(DeliveryModel.delivered_at),
    ).group_by(DeliveryModel.subscription_id, DeliveryModel.status)
    with outbox.store.session(write=False) as session:
        rows = session.execute(query).all()

    fast = [row for row in rows if row[0] in outbox.fast]
    slow = [row for row in rows if row[0] in outbox.slow]
    delivered = DeliveryStatus.DELIVERED.value
    fast_done = [row for row in fast if row[1] == delivered]
    last = max((row[4] for row in fast_done if row[4] is not None), default=None)

    return Tally(
        fast_total=sum(row[2] for row in fast),
        fast_delivered=sum(row[2] for row in fast_done),
        fast_failed=sum(row[2] for row in fast if row[1] == DeliveryStatus.FAILED),
        fast_retried=sum(int(row[3] or 0) - row[2] for row in fast_done),
        fast_seconds=(last - started_at).total_seconds() if last else 0.0,
        slow_total=sum(row[2] for row in slow),
        slow_delivered=sum(row[2] for row in slow if row[1] == delivered),
    )
