"""Delivery queries on SQLite and PostgreSQL: claims, outcomes, replay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from bridge.store import delivery_queries as dq
from bridge.store import delivery_replay_queries as dr
from bridge.store import subscription_queries as sq
from bridge.store.db import Store
from bridge.store.outbound_models import DeliveryModel, OutboundEventModel

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
COMPLETED = "progress.completed"
LEASE = 60.0


def subscribe(
    store: Store, *, enabled: bool = True, types: list[str] | None = None
) -> str:
    with store.session() as session:
        row = sq.add_subscription(
            session,
            url="https://hooks.example.org/in",
            event_types=types or [COMPLETED],
            enabled=enabled,
            now=T0,
        )
    return row.id


def add_event(
    store: Store,
    *subscription_ids: str,
    at: datetime = T0,
    event_type: str = COMPLETED,
    status: str = "pending",
) -> list[str]:
    """Insert an outbound event at ``at`` and one delivery per subscription."""
    event_id = f"msg_{uuid.uuid4().hex}"
    ids = [str(uuid.uuid4()) for _ in subscription_ids]
    with store.session() as session:
        session.add(
            OutboundEventModel(
                id=event_id,
                type=event_type,
                payload={"type": event_type, "time": at.isoformat()},
                created_at=at,
            )
        )
        session.flush()
        for delivery_id, sub in zip(ids, subscription_ids, strict=True):
            session.add(
                DeliveryModel(
                    id=delivery_id,
                    outbound_event_id=event_id,
                    subscription_id=sub,
                    status=status,
                    attempts=0,
                    next_attempt_at=at if status == "pending" else None,
                    created_at=at,
                    updated_at=at,
                )
            )
    return ids


def claim(
    store: Store,
    worker: str = "w1",
    now: datetime = T0,
    limit: int = 10,
    per_subscription: int = 10,
) -> list[dq.DeliveryJob]:
    with store.session() as session:
        return dq.claim_due_deliveries(
            session,
            worker=worker,
            now=now,
            lease_seconds=LEASE,
            limit=limit,
            per_subscription=per_subscription,
        )


def get(store: Store, delivery_id: str) -> dr.DeliveryRow:
    with store.session(write=False) as session:
        row = dr.get_delivery(session, delivery_id)
    assert row is not None
    return row


# Claiming


def test_claim_takes_due_pending_deliveries_of_enabled_subscriptions(store):
    sub, off = subscribe(store), subscribe(store, enabled=False)
    [due] = add_event(store, sub, at=T0 - timedelta(minutes=1))
    add_event(store, sub, at=T0 + timedelta(minutes=1))
    add_event(store, off)
    add_event(store, sub, status="failed")
    add_event(store, sub, status="delivered")

    jobs = claim(store)

    assert [job.id for job in jobs] == [due]
    assert jobs[0].url == "https://hooks.example.org/in"
    assert jobs[0].event_type == COMPLETED
    assert jobs[0].payload["type"] == COMPLETED


def test_claim_takes_the_oldest_due_first_up_to_the_limit(store):
    sub = subscribe(store)
    ids = [add_event(store, sub, at=T0 - timedelta(seconds=n))[0] for n in range(5)]

    jobs = claim(store, limit=3)

    assert [job.id for job in jobs] == [ids[4], ids[3], ids[2]]


def test_claimed_deliveries_are_not_claimed_again_until_the_lease_ends(store):
    sub = subscribe(store)
    add_event(store, sub)

    assert len(claim(store, "w1")) == 1
    assert claim(store, "w2", now=T0 + timedelta(seconds=LEASE - 1)) == []
    [job] = claim(store, "w2", now=T0 + timedelta(seconds=LEASE + 1))
    assert get(store, job.id).attempts == 0


def test_claim_bounds_each_subscription_counting_those_in_flight(store):
    busy, quiet = subscribe(store), subscribe(store)
    for n in range(5):
        add_event(store, busy, at=T0 - timedelta(seconds=10 - n))
    add_event(store, quiet)
    add_event(store, quiet)

    first = claim(store, "w1", per_subscription=2)
    second = claim(store, "w2", per_subscription=3)

    assert sorted(job.subscription_id for job in first) == sorted(
        [busy, busy, quiet, quiet]
    )
    assert [job.subscription_id for job in second] == [busy]


def test_claim_of_nothing_due_returns_nothing(store):
    assert claim(store) == []
    assert claim(store, limit=0) == []


# Outcomes


def test_delivered_records_status_time_and_ends_the_lease(store):
    sub = subscribe(store)
    [delivery_id] = add_event(store, sub)
    claim(store)

    with store.session() as session:
        assert dq.mark_delivered(session, delivery_id, worker="w1", status=204, now=T0)

    row = get(store, delivery_id)
    assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 204)
    assert row.delivered_at == T0
    assert claim(store, now=T0 + timedelta(hours=1)) == []


def test_outcome_of_a_worker_without_the_lease_is_ignored(store):
    sub = subscribe(store)
    [delivery_id] = add_event(store, sub)
    claim(store, "w1")

    with store.session() as session:
        changed = dq.mark_delivered(
            session, delivery_id, worker="w2", status=200, now=T0
        )

    assert not changed
    assert get(store, delivery_id).status == "pending"


def test_retry_counts_the_attempt_and_waits(store):
    sub = subscribe(store)
    [delivery_id] = add_event(store, sub)
    claim(store)
    later = T0 + timedelta(seconds=5)

    with store.session() as session:
        dq.schedule_retry(
            session,
            delivery_id,
            worker="w1",
            now=T0,
            next_attempt_at=later,
            status=500,
            error="500",
        )

    row = get(store, delivery_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, later)
    assert claim(store, now=T0 + timedelta(seconds=4)) == []
    assert len(claim(store, now=later)) == 1


def test_failed_delivery_is_parked(store):
    sub = subscribe(store)
    [delivery_id] = add_event(store, sub)
    claim(store)

    with store.session() as session:
        dq.mark_failed(
            session, delivery_id, worker="w1", now=T0, status=None, error="timeout"
        )

    row = get(store, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "timeout")
    assert claim(store, now=T0 + timedelta(days=1)) == []


def test_attempts_are_kept_in_order_with_the_body_clipped_to_a_kib(store):
    sub = subscribe(store)
    [delivery_id] = add_event(store, sub)
    with store.session() as session:
        for n, body in enumerate([b"x" * 5000, None]):
            dq.record_attempt(
                session,
                delivery_id,
                attempted_at=T0 + timedelta(seconds=n),
                status_code=500 if body else None,
                latency_ms=12.5,
                response_body=body,
                error=None if body else "timeout after 15s",
            )

    first, second = get(store, delivery_id).attempt_log
    assert first.response_body == "x" * 1024
    assert first.status_code == 500
    assert (second.response_body, second.error) == (None, "timeout after 15s")


def test_failing_since_starts_once_and_clears_on_success(store):
    sub = subscribe(store)
    later = T0 + timedelta(hours=1)

    with store.session() as session:
        assert dq.note_failure(session, sub, T0) == T0
        assert dq.note_failure(session, sub, later) == T0
        dq.note_success(session, sub, later)
        assert dq.note_failure(session, sub, later) == later


def test_disable_fails_pending_deliveries_and_tells_watchers(store):
    sub = subscribe(store)
    watcher = subscribe(store, types=[dq.DISABLED_EVENT_TYPE])
    subscribe(store)  # wants progress events only
    [pending] = add_event(store, sub)
    [delivered] = add_event(store, sub, status="delivered")

    with store.session() as session:
        event_id = dq.disable_and_announce(session, sub, reason="gone", now=T0)
        again = dq.disable_and_announce(session, sub, reason="gone", now=T0)

    assert event_id is not None and again is None
    with store.session(write=False) as session:
        notices = dr.list_deliveries(session, status="pending")
        disabled = sq.get_subscription(session, sub)
    assert [(n.subscription_id, n.event_id) for n in notices] == [(watcher, event_id)]
    assert disabled is not None and not disabled.enabled
    assert (get(store, pending).status, get(store, pending).last_error) == (
        "failed",
        "gone",
    )
    assert get(store, delivered).status == "delivered"


# Listing


def test_list_filters_by_subscription_status_and_time(store):
    one, two = subscribe(store), subscribe(store)
    [old] = add_event(store, one, at=T0 - timedelta(days=2), status="failed")
    [new] = add_event(store, one, status="failed")
    add_event(store, two, status="failed")
    add_event(store, one)

    with store.session(write=False) as session:
        rows = dr.list_deliveries(
            session, subscription_id=one, status="failed", limit=10
        )
        recent = dr.list_deliveries(
            session,
            subscription_id=one,
            status="failed",
            since=T0 - timedelta(days=1),
            limit=10,
        )

    assert [row.id for row in rows] == [new, old]
    assert [row.id for row in recent] == [new]


def test_get_of_an_unknown_delivery_is_none(store):
    with store.session(write=False) as session:
        assert dr.get_delivery(session, "nope") is None


# Replay


def test_retry_queues_one_delivery_from_the_start(store):
    sub = subscribe(store)
    [delivery_id] = add_event(store, sub)
    claim(store)
    with store.session() as session:
        dq.mark_failed(session, delivery_id, worker="w1", now=T0, status=500, error="e")

    later = T0 + timedelta(hours=1)
    with store.session() as session:
        assert dr.retry_delivery(session, delivery_id, now=later)
        assert not dr.retry_delivery(session, "nope", now=later)

    row = get(store, delivery_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, later)


def test_retry_leaves_a_delivery_in_flight_alone(store):
    sub = subscribe(store)
    [delivery_id] = add_event(store, sub)
    claim(store)

    with store.session() as session:
        assert not dr.retry_delivery(session, delivery_id, now=T0)


def test_replay_failed_requeues_only_that_subscriptions_recent_failures(store):
    one, two = subscribe(store), subscribe(store)
    [old] = add_event(store, one, at=T0 - timedelta(days=2), status="failed")
    [recent] = add_event(store, one, status="failed")
    [other] = add_event(store, two, status="failed")
    [done] = add_event(store, one, status="delivered")

    with store.session() as session:
        count = dr.replay_failed(session, one, T0 - timedelta(days=1), now=T0)

    assert count == 1
    assert get(store, recent).status == "pending"
    assert [get(store, i).status for i in (old, other, done)] == [
        "failed",
        "failed",
        "delivered",
    ]


def test_replay_events_creates_missing_deliveries_and_requeues_the_rest(store):
    sub, other = subscribe(store), subscribe(store)
    [had] = add_event(store, sub, status="delivered")
    add_event(store, other)  # an event this subscription never had
    add_event(store, other, at=T0 - timedelta(days=3))  # too old
    add_event(store, other, event_type="progress.started")  # another type

    with store.session() as session:
        created, requeued = dr.replay_events(
            session, sub, COMPLETED, T0 - timedelta(days=1), now=T0
        )

    assert (created, requeued) == (1, 1)
    assert get(store, had).status == "pending"
    with store.session(write=False) as session:
        rows = dr.list_deliveries(session, subscription_id=sub, status="pending")
    assert len(rows) == 2


@pytest.mark.parametrize("body", [b"\xff\xfe broken", "plain text"])
def test_clip_body_returns_text(body):
    assert isinstance(dq.clip_body(body), str)
