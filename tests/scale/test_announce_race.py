"""A poll and the dispatcher recording the same change at the same moment.

With two workers on PostgreSQL, one worker's dispatcher can complete a
pair in Open ELMS while the other's poller, having read the completion,
records it. The dispatcher used to read the tracked pair without a lock
while the poll's transaction was still open, so both announced
``progress.completed``. The dispatcher must wait for the poll and then
see the completion already announced.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from bridge.elms_shapes import Progress, Status
from bridge.outbound import announce_inbound
from bridge.rules import PairState
from bridge.store import poll_queries as pq
from bridge.store import subscription_queries as sq
from bridge.store.db import Store, create_store
from bridge.store.migrate import upgrade
from tests.pg import create_pg_database, drop_pg_database

USER, LEARNING = "41", "7"
INBOUND_EVENT = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
def store():
    url = create_pg_database()
    upgrade(url)
    store = create_store(url)
    try:
        yield store
    finally:
        store.dispose()
        drop_pg_database(url)


@pytest.mark.postgres
def test_completion_seen_by_a_poll_meanwhile_is_announced_once(store):
    now = datetime.now(UTC)
    pair = track_in_progress(store, now)

    poll = Session(store.engine)
    assert pq.record_poll(
        poll,
        pair,
        Progress(Status.COMPLETED, 80.0),
        worker="poller",
        now=now,
        next_poll_at=None,
    )
    pq.record_transition(
        poll,
        user_id=USER,
        learning_id=LEARNING,
        old_status=pair.status,
        old_score=pair.score,
        new_status=Status.COMPLETED.value,
        new_score=80.0,
        cause="elms",
        now=now,
    )
    dispatcher = threading.Thread(target=record_completion, args=(store, now))
    dispatcher.start()
    wait_for_lock_wait(store)
    poll.commit()
    poll.close()
    dispatcher.join(30)

    with store.session(write=False) as session:
        rows = session.execute(
            text("SELECT type, payload FROM outbound_events ORDER BY created_at")
        ).all()
    assert [(row.type, row.payload["cause"]) for row in rows] == [
        ("progress.completed", "elms")
    ]


def track_in_progress(store: Store, now: datetime) -> pq.TrackedPairRow:
    """Subscribe to everything, track a pair in progress and claim it to poll."""
    with store.session() as session:
        sq.add_subscription(session, url="http://127.0.0.1:9/hook", event_types=["*"])
        pq.track_pair(session, USER, LEARNING, origin="inbound", now=now)
        pq.store_pair_state(session, USER, LEARNING, "in progress", None, now)
    with store.session() as session:
        (pair,) = pq.claim_due_pairs(
            session, worker="poller", now=now, lease_seconds=60, limit=1
        )
    return pair


def record_completion(store: Store, now: datetime) -> None:
    """Announce, as the dispatcher does, a completion Open ELMS accepted."""
    with store.session() as session:
        announce_inbound(
            session,
            user_id=USER,
            learning_id=LEARNING,
            old=PairState(Status.IN_PROGRESS),
            new=PairState(Status.COMPLETED, 80.0, now),
            inbound_event_id=INBOUND_EVENT,
            now=now,
        )


def wait_for_lock_wait(store: Store, timeout: float = 30) -> None:
    """Return once some session waits for a row lock held by the poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.engine.connect() as connection:
            waiting = connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the dispatcher never waited for the poll's lock")
