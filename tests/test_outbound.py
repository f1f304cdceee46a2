"""Announcing what the bridge did, against a tracked pair's state, on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bridge.elms_shapes import Status
from bridge.outbound import announce_inbound
from bridge.rules import PairState
from bridge.store import poll_queries as pq
from bridge.store.db import Store, create_store
from bridge.store.migrate import upgrade
from bridge.store.outbound_models import OutboundEventModel

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Yield a migrated store on a fresh SQLite file."""
    url = f"sqlite:///{tmp_path}/bridge.db"
    upgrade(url)
    made = create_store(url)
    yield made
    made.dispose()


def poll_saw(store: Store, status: str, score: float | None) -> None:
    """Track pair 3/3 and record what a poll saw, as the poller does."""
    with store.session() as session:
        pq.track_pair(session, "3", "3", origin="watch", now=T0)
        pq.record_transition(
            session,
            user_id="3",
            learning_id="3",
            old_status="not attempted",
            old_score=None,
            new_status=status,
            new_score=score,
            cause="elms",
            now=T0,
        )


def announce(store: Store, old: PairState, new: PairState, minute: int) -> list[str]:
    """Announce a change the dispatcher made to pair 3/3."""
    with store.session() as session:
        return announce_inbound(
            session,
            user_id="3",
            learning_id="3",
            old=old,
            new=new,
            inbound_event_id=f"event-{minute}",
            now=T0 + timedelta(minutes=minute),
        )


def announced(store: Store) -> list[tuple[str, str]]:
    """Return (type, cause) of every outbound event, oldest first."""
    query = select(OutboundEventModel).order_by(OutboundEventModel.created_at)
    with store.session(write=False) as session:
        return [(e.type, e.payload["cause"]) for e in session.scalars(query)]


def test_start_after_a_completion_seen_in_open_elms_keeps_the_pair_completed(store):
    poll_saw(store, "completed", 64)

    started = announce(store, PairState(), PairState(Status.IN_PROGRESS), 1)
    completed = announce(
        store, PairState(Status.IN_PROGRESS), PairState(Status.COMPLETED, 90.0), 2
    )

    with store.session(write=False) as session:
        pair = pq.get_pair(session, "3", "3")
    assert started == []
    assert len(completed) == 1
    assert announced(store) == [
        ("progress.completed", "elms"),
        ("progress.score_changed", "inbound"),
    ]
    assert pair is not None
    assert (pair.status, pair.score) == ("completed", 90)


def test_start_of_a_pair_seen_not_attempted_is_announced_and_stored(store):
    poll_saw(store, "not attempted", None)

    started = announce(store, PairState(), PairState(Status.IN_PROGRESS), 1)

    with store.session(write=False) as session:
        pair = pq.get_pair(session, "3", "3")
    assert len(started) == 1
    assert announced(store) == [("progress.started", "inbound")]
    assert pair is not None
    assert pair.status == "in progress"
