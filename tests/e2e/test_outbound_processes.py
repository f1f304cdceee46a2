"""The outbound side end to end, through running processes.

``python -m bridge sandbox``, ``serve`` and ``worker`` run as children; a
real receiver on loopback verifies every Standard Webhooks signature. A
change made inside Open ELMS reaches subscribers with cause ``elms``; one
made through the bridge arrives once, with cause ``inbound``; and a worker
killed mid-delivery loses nothing.

Delivery is at least once. A worker records an attempt only after the
subscriber answers, so an attempt cut short by SIGKILL leaves no trace but
the delivery's lease; once the lease ends (``DeliveryConfig.lease_seconds``:
at least 60 s) another worker sends it again. So each delivery in flight
at the kill reaches the subscriber exactly twice, and every other exactly
once.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from bridge.jobs.deliver import DEFAULT_PER_SUBSCRIPTION as PER_SUBSCRIPTION
from bridge.jobs.deliver import DeliveryConfig
from bridge.store import delivery_replay_queries as dr
from bridge.store import poll_queries as pq
from bridge.store import queries
from bridge.store.outbound_models import DeliveryModel, OutboundEventModel
from tests.jobs.conftest import statement
from tests.receiver import Reply

if TYPE_CHECKING:
    from bridge.store.poll_queries import TrackedPairRow
    from tests.e2e.conftest import Bridge

COMPLETED = "progress.completed"
STARTED = "progress.started"
FIRE_SAFETY = "Fire Safety Awareness"  # sandbox learning 1
DATA_PROTECTION = "Data Protection Essentials"  # sandbox learning 2

# Users 1 to 6, none of whom has completed Data Protection Essentials.
LEARNERS = [
    "xapi-test@example.com",
    "learner1@example.com",
    "user@example.com",
    "player-1@example.com",
    "guest@example.com",
    "admin@example.com",
]
HANG_SECONDS = 20.0  # longer than it takes to see the requests and kill


def tracked(parts: Bridge, user_id: str, learning_id: str) -> TrackedPairRow | None:
    """Return a tracked pair as the bridge stores it, or None."""
    with parts.store.session(write=False) as session:
        return pq.get_pair(session, user_id, learning_id)


def polled(parts: Bridge, user_id: str, learning_id: str) -> bool:
    """Tell whether the poller has read a pair's progress at least once."""
    pair = tracked(parts, user_id, learning_id)
    return pair is not None and pair.last_polled_at is not None


def event_status(parts: Bridge, event_id: str) -> str | None:
    """Return an inbound event's status, or None if it is not stored."""
    with parts.store.session(write=False) as session:
        event = queries.get_event(session, event_id)
    return None if event is None else str(event.status)


def outbound_events(parts: Bridge, user_id: str, learning_id: str) -> list[str]:
    """Return the types of the outbound events written about a pair."""
    query = select(OutboundEventModel.type).where(
        OutboundEventModel.user_id == user_id,
        OutboundEventModel.learning_id == learning_id,
    )
    with parts.store.session(write=False) as session:
        return list(session.scalars(query))


def of_type(parts: Bridge, event_type: str) -> list[dict[str, Any]]:
    """Return the received payloads of one type, in order of answer."""
    return [p for p in parts.hooks.payloads() if p["type"] == event_type]


def by_pair(payloads: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Return payloads keyed by (user id, learning id)."""
    return {(p["user"]["id"], p["learning"]["id"]): p for p in payloads}


def gets_since(parts: Bridge, index: int, path: str) -> int:
    """Return how many GETs of ``path`` the sandbox answered from ``index`` on."""
    calls = parts.calls()[index:]
    return sum(c["method"] == "GET" and c["path"] == path for c in calls)


def call_index(parts: Bridge, method: str, path: str) -> int:
    """Return the position of the first call of ``method path`` in the log."""
    calls = parts.calls()
    return next(
        i for i, c in enumerate(calls) if c["method"] == method and c["path"] == path
    )


def assert_all_verified(parts: Bridge) -> None:
    """Check every request the receiver answered carried a valid signature."""
    hits = parts.hooks.snapshot()
    assert hits
    assert all(hit.verified for hit in hits), [h.webhook_id for h in hits]


def test_completions_inside_open_elms_reach_the_subscriber_with_cause_elms(
    running: Bridge,
) -> None:
    parts = running
    parts.subscribe()  # every event type
    parts.cli("watch", "add", "user", "3")  # user@example.com: learning 3
    start = statement("attempted", email="player-1@example.com", course=FIRE_SAFETY)
    started_event = parts.post_statement(start)  # tracks pair user 4, learning 1

    parts.start_worker()
    parts.eventually(lambda: of_type(parts, STARTED), "the start announced")
    parts.eventually(lambda: polled(parts, "3", "3"), "watched pair's baseline")
    parts.eventually(lambda: polled(parts, "4", "1"), "inbound pair polled")
    parts.set_progress("3", "3", "completed", 64)
    parts.set_progress("1", "4", "completed", 77)
    parts.eventually(
        lambda: len(of_type(parts, COMPLETED)) == 2, "both completions delivered"
    )

    completed = by_pair(of_type(parts, COMPLETED))
    watched, inbound_tracked = completed[("3", "3")], completed[("4", "1")]
    assert watched["cause"] == "elms"
    assert (watched["status"], watched["score"]) == ("completed", 64)
    assert watched["previous"] == {"status": "not attempted", "score": None}
    assert watched["inbound_event_id"] is None
    assert watched["user"]["email"] == "user@example.com"
    assert inbound_tracked["cause"] == "elms"
    assert (inbound_tracked["status"], inbound_tracked["score"]) == ("completed", 77)
    assert inbound_tracked["previous"] == {"status": "in progress", "score": None}
    assert inbound_tracked["inbound_event_id"] is None

    [started] = of_type(parts, STARTED)
    assert (started["cause"], started["inbound_event_id"]) == ("inbound", started_event)
    assert sorted(p["type"] for p in parts.hooks.payloads()) == [
        COMPLETED,
        COMPLETED,
        STARTED,
    ]
    assert len(set(parts.hooks.ids())) == 3
    assert_all_verified(parts)
    puts = [c["path"] for c in parts.calls() if c["method"] == "PUT"]
    assert puts == ["learning/1/4/start"]  # the completions did not pass the bridge


def test_completion_through_the_bridge_arrives_once_with_cause_inbound(
    running: Bridge,
) -> None:
    parts = running
    parts.subscribe(COMPLETED, STARTED)
    parts.cli("watch", "add", "user", "2")  # learner1: learning 1, 4 and 7
    parts.start_worker()
    parts.eventually(lambda: polled(parts, "2", "1"), "baseline of learning 1")
    parts.eventually(lambda: polled(parts, "2", "7"), "baseline of learning 7")

    done = statement(
        "completed", email="learner1@example.com", course=FIRE_SAFETY, scaled=0.9
    )
    event_id = parts.post_statement(done)
    parts.eventually(lambda: of_type(parts, COMPLETED), "the completion delivered")
    put_at = call_index(parts, "PUT", "learning/1/2/complete/90")
    # Learning 7 is not attempted, so every poll pass reads it: two reads
    # after the completion mean two passes, the first of which read learning 1.
    parts.eventually(
        lambda: (
            gets_since(parts, put_at, "learning/7/2") >= 2
            and gets_since(parts, put_at, "learning/1/2") >= 1
        ),
        "two poll passes after the completion",
        timeout=30,
    )

    [completed] = parts.hooks.payloads()
    assert completed["type"] == COMPLETED
    assert (completed["cause"], completed["inbound_event_id"]) == ("inbound", event_id)
    assert (completed["user"]["id"], completed["learning"]["id"]) == ("2", "1")
    assert (completed["status"], completed["score"]) == ("completed", 90)
    assert completed["previous"] == {"status": "in progress", "score": None}
    assert outbound_events(parts, "2", "1") == [COMPLETED]
    pair = tracked(parts, "2", "1")
    assert pair is not None
    assert (pair.status, pair.score, pair.next_poll_at) == ("completed", 90, None)
    assert_all_verified(parts)


def test_start_after_completion_inside_open_elms_keeps_the_pair_completed(
    running: Bridge,
) -> None:
    parts = running
    parts.subscribe()
    parts.cli("watch", "add", "user", "3")  # user@example.com: learning 3
    parts.start_worker()
    parts.eventually(lambda: polled(parts, "3", "3"), "watched pair's baseline")
    parts.set_progress("3", "3", "completed", 64)
    parts.eventually(lambda: of_type(parts, COMPLETED), "the completion delivered")

    # Open ELMS keeps a completed pair completed when asked to start it.
    learner, course = "user@example.com", "Manual Handling in Practice"
    start = parts.post_statement(statement("attempted", email=learner, course=course))
    parts.eventually(lambda: event_status(parts, start) == "dispatched", "the start")
    after_start = tracked(parts, "3", "3")
    assert after_start is not None
    done = statement("completed", email=learner, course=course, scaled=0.9)
    parts.post_statement(done)
    parts.eventually(lambda: len(parts.hooks.payloads()) == 2, "a second delivery")

    first, second = parts.hooks.payloads()
    assert (first["type"], first["cause"]) == (COMPLETED, "elms")
    assert (second["type"], second["cause"]) == ("progress.score_changed", "inbound")
    assert second["previous"] == {"status": "completed", "score": 64}
    assert (second["status"], second["score"]) == ("completed", 90)
    assert (after_start.status, after_start.score) == ("completed", 64)
    assert_all_verified(parts)


# SQLite only: a minute of waiting for a lease to end is long enough once;
# the scale-out test kills a worker on PostgreSQL.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_worker_killed_mid_delivery_resends_only_what_was_in_flight(
    running: Bridge,
) -> None:
    parts = running
    timeout = float(parts.env["BRIDGE_DELIVERY_TIMEOUT"])
    lease = DeliveryConfig(timeout=timeout).lease_seconds
    parts.subscribe(COMPLETED)
    parts.hooks.answer(*[Reply(delay=HANG_SECONDS)] * PER_SUBSCRIPTION)
    for email in LEARNERS:
        parts.post_statement(
            statement("completed", email=email, course=DATA_PROTECTION, scaled=0.8)
        )

    first = parts.start_worker()
    parts.eventually(
        lambda: len(parts.hooks.arrived()) == PER_SUBSCRIPTION,
        "the subscription's in-flight limit reached",
    )
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    in_flight = {a.webhook_id for a in parts.hooks.arrived()}
    leases = lease_ends(parts, first_owner(parts))
    parts.start_worker()
    parts.eventually(
        lambda: delivered(parts) == len(LEARNERS),
        "every delivery delivered",
        timeout=lease + 30,
    )

    assert first.process.returncode == -signal.SIGKILL
    assert lease == 60.0
    assert len(in_flight) == PER_SUBSCRIPTION
    assert set(leases) == in_flight  # the killed worker held exactly these
    arrivals = parts.hooks.arrived()
    counts = Counter(a.webhook_id for a in arrivals)
    assert len(counts) == len(LEARNERS)
    assert {i for i, n in counts.items() if n == 2} == in_flight
    assert {i for i, n in counts.items() if n == 1} == set(counts) - in_flight
    for webhook_id, ends in leases.items():
        again = [a.at for a in arrivals if a.webhook_id == webhook_id][1]
        assert again >= ends - timedelta(seconds=1), (webhook_id, again, ends)
    assert_all_verified(parts)
    for row in deliveries(parts):
        assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)
    users = sorted(p["user"]["id"] for p in of_type(parts, COMPLETED))
    assert len(users) == len(LEARNERS) + PER_SUBSCRIPTION
    assert sorted(set(users)) == ["1", "2", "3", "4", "5", "6"]


def first_owner(parts: Bridge) -> str:
    """Return the worker that holds the live delivery leases."""
    query = select(DeliveryModel.lease_owner).where(
        DeliveryModel.lease_owner.is_not(None)
    )
    with parts.store.session(write=False) as session:
        owners = set(session.scalars(query))
    assert len(owners) == 1, owners
    return str(owners.pop())


def lease_ends(parts: Bridge, owner: str) -> dict[str, datetime]:
    """Return, by outbound event id, when each of ``owner``'s leases ends."""
    query = select(
        DeliveryModel.outbound_event_id, DeliveryModel.lease_expires_at
    ).where(DeliveryModel.lease_owner == owner)
    with parts.store.session(write=False) as session:
        rows = session.execute(query).all()
    return {event_id: ends for event_id, ends in rows if ends is not None}


def deliveries(parts: Bridge) -> list[dr.DeliveryRow]:
    """Return every delivery of the test's database."""
    with parts.store.session(write=False) as session:
        return dr.list_deliveries(session, limit=100)


def delivered(parts: Bridge) -> int:
    """Return how many deliveries are delivered."""
    return sum(row.status == "delivered" for row in deliveries(parts))
