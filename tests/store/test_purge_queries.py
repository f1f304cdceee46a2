"""Housekeeping purges on SQLite and PostgreSQL: what goes, what stays, batches.

Rows are seeded through the bridge's own writers (intake, dispatch,
poll and delivery queries) with timestamps days in the past, then a
``Housekeeper`` with a fixed clock purges them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bridge.events import Kind
from bridge.jobs.housekeeping import Housekeeper, HousekeepingConfig
from bridge.store import delivery_queries as dlq
from bridge.store import dispatch_queries as dq
from bridge.store import leadership
from bridge.store import poll_queries as pq
from bridge.store import subscription_queries as sq
from bridge.store.db import Store
from bridge.store.models import (
    ElmsCallModel,
    EventModel,
    InboundRequestModel,
    WorkerStateModel,
)
from bridge.store.outbound_models import (
    DeliveryAttemptModel,
    DeliveryModel,
    OutboundEventModel,
)
from tests.store.conftest import build_event, build_request

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WORKER = "seeder"
COMPLETED = "progress.completed"
STARTED = "progress.started"
CONFIG = HousekeepingConfig(
    raw_days=7, dedupe_days=30, delivered_days=14, failed_days=90, batch=3
)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def housekeeper(store: Store, config: HousekeepingConfig = CONFIG) -> Housekeeper:
    return Housekeeper(store, holder="keeper", config=config, clock=lambda: NOW)


# Seeding through the bridge's writers


def receive(
    intake, name: str, at: datetime, kinds: tuple[Kind, ...] = (Kind.COMPLETED,)
):
    """Store one request named ``name`` with an event per kind; return outcome."""
    events = [
        build_event(f"{name}-{index}", kind=kind) for index, kind in enumerate(kinds)
    ]
    request = build_request(f'{{"request": "{name}"}}'.encode())
    return intake(events, f"key-{name}", request=request, now=at)


def settle(store: Store, event_id: str, status: str, at: datetime) -> None:
    """Claim the event as a worker would, record one call, finish it at ``at``."""
    with store.session() as session:
        claimed = dq.claim_due_events(
            session, worker=WORKER, now=at, lease_seconds=60, limit=1000
        )
        others = [row.id for row in claimed if row.id != event_id]
        assert len(others) == len(claimed) - 1, "event was not due"

        dq.record_call(
            session,
            event_id,
            method="PUT",
            path="learning/1/2",
            status=200,
            error=None,
            worker=WORKER,
            now=at,
        )
        assert dq.finish_event(session, event_id, worker=WORKER, status=status, now=at)
        dq.release_events(session, others, worker=WORKER)


def subscribe(store: Store) -> str:
    with store.session() as session:
        row = sq.add_subscription(
            session,
            url="https://hooks.example.org/in",
            event_types=[COMPLETED],
            now=days_ago(400),
        )
    return row.id


def announce(store: Store, at: datetime, event_type: str = COMPLETED) -> str:
    """Write one outbound event (and its deliveries) as the poller does."""
    with store.session() as session:
        return pq.insert_outbound_event(
            session,
            event_type=event_type,
            payload={"type": event_type},
            user_id="u1",
            learning_id="l1",
            inbound_event_id=None,
            now=at,
        )


def deliver(store: Store, outbound_id: str, outcome: str, at: datetime) -> str:
    """Claim the event's delivery, record a 500 then the outcome; return its id."""
    with store.session() as session:
        jobs = dlq.claim_due_deliveries(
            session,
            worker=WORKER,
            now=at,
            lease_seconds=60,
            limit=1000,
            per_subscription=1000,
        )
        [job] = [job for job in jobs if job.event_id == outbound_id]
        others = [other.id for other in jobs if other.id != job.id]
        for code in (500, 200 if outcome == "delivered" else 410):
            dlq.record_attempt(
                session,
                job.id,
                attempted_at=at,
                status_code=code,
                latency_ms=5.0,
                response_body=b"ok",
                error=None,
            )
        if outcome == "delivered":
            dlq.mark_delivered(session, job.id, worker=WORKER, status=200, now=at)
        else:
            dlq.mark_failed(
                session, job.id, worker=WORKER, now=at, status=410, error="gone"
            )
        dlq.release_deliveries(session, others, worker=WORKER)
    return job.id


def beat(store: Store, worker: str, at: datetime) -> None:
    with store.session() as session:
        dq.write_state(session, f"worker:{worker}", {"at": at.isoformat()}, at)


# Reading back


def ids(store: Store, column) -> set[str]:
    with store.session(write=False) as session:
        return set(session.scalars(select(column)))


def count(store: Store, model, **where) -> int:
    query = select(func.count()).select_from(model).filter_by(**where)
    with store.session(write=False) as session:
        return int(session.scalar(query) or 0)


def request_of(store: Store, request_id: str) -> InboundRequestModel:
    with store.session(write=False) as session:
        model = session.get(InboundRequestModel, request_id)
        assert model is not None
        return model


# Inbound side


def test_purge_takes_old_finished_inbound_rows_and_keeps_the_rest(store, intake):
    old_done = receive(intake, "old-done", days_ago(40))
    settle(store, old_done.event_ids[0], "dispatched", days_ago(40))
    mid_done = receive(intake, "mid-done", days_ago(10))
    settle(store, mid_done.event_ids[0], "dispatched", days_ago(10))
    new_done = receive(intake, "new-done", days_ago(2))
    settle(store, new_done.event_ids[0], "skipped", days_ago(2))
    old_failed = receive(intake, "old-failed", days_ago(40))
    settle(store, old_failed.event_ids[0], "failed", days_ago(40))
    ancient_failed = receive(intake, "ancient-failed", days_ago(100))
    settle(store, ancient_failed.event_ids[0], "failed", days_ago(100))
    ancient_unresolved = receive(intake, "ancient-unresolved", days_ago(95))
    settle(store, ancient_unresolved.event_ids[0], "unresolved", days_ago(95))
    info = receive(intake, "info", days_ago(40), (Kind.INFORMATIONAL,))
    mixed = receive(intake, "mixed", days_ago(40), (Kind.COMPLETED, Kind.STARTED))
    settle(store, mixed.event_ids[0], "dispatched", days_ago(40))
    ancient_pending = receive(intake, "ancient-pending", days_ago(100))

    report = housekeeper(store).run_once()

    assert report is not None and report.complete
    gone_events = {
        old_done.event_ids[0],
        ancient_failed.event_ids[0],
        ancient_unresolved.event_ids[0],
        info.event_ids[0],
        mixed.event_ids[0],
    }
    assert report.purged == {
        "raw_bodies": 1,
        "finished_events": 3,
        "failed_events": 2,
        "elms_calls": 4,
        "requests": 4,
    }
    kept_events = {
        mid_done.event_ids[0],
        new_done.event_ids[0],
        old_failed.event_ids[0],
        mixed.event_ids[1],
        ancient_pending.event_ids[0],
    }
    assert ids(store, EventModel.id) == kept_events
    assert not gone_events & ids(store, ElmsCallModel.event_id)
    assert ids(store, InboundRequestModel.id) == {
        mid_done.request_id,
        new_done.request_id,
        old_failed.request_id,
        mixed.request_id,
        ancient_pending.request_id,
    }
    # Only the finished request past the raw window lost its body.
    assert request_of(store, mid_done.request_id).body == b""
    assert request_of(store, mid_done.request_id).headers == {}
    for kept in (new_done, old_failed, mixed, ancient_pending):
        assert request_of(store, kept.request_id).body.startswith(b'{"request"')


def test_pending_work_is_never_touched_however_old(store, intake):
    pending = receive(intake, "pending", days_ago(3000))
    sub = subscribe(store)
    outbound = announce(store, days_ago(3000))

    report = housekeeper(store).run_once()

    assert report is not None and report.total == 0
    assert ids(store, EventModel.id) == set(pending.event_ids)
    assert request_of(store, pending.request_id).body == b'{"request": "pending"}'
    assert ids(store, OutboundEventModel.id) == {outbound}
    assert count(store, DeliveryModel, subscription_id=sub, status="pending") == 1


def test_a_kept_dedupe_row_still_answers_a_resent_request(store, intake):
    first = receive(intake, "resent", days_ago(10))
    settle(store, first.event_ids[0], "dispatched", days_ago(10))
    housekeeper(store).run_once()
    assert request_of(store, first.request_id).body == b""

    again = receive(intake, "resent", NOW)
    event_again = intake([build_event("resent-0")], "key-other", now=NOW)

    assert again.duplicate is True
    assert again.request_id == first.request_id
    assert again.response_status == first.response_status
    assert again.response_body == first.response_body
    assert event_again.new_event_ids == []
    assert event_again.event_ids == first.event_ids


def test_past_the_dedupe_window_a_resent_request_is_new(store, intake):
    first = receive(intake, "forgotten", days_ago(40))
    settle(store, first.event_ids[0], "dispatched", days_ago(40))
    housekeeper(store).run_once()

    again = receive(intake, "forgotten", NOW)

    assert again.duplicate is False
    assert again.request_id != first.request_id
    assert len(again.new_event_ids) == 1


def test_zero_days_keeps_that_kind(store, intake):
    old = receive(intake, "old", days_ago(400))
    settle(store, old.event_ids[0], "dispatched", days_ago(400))
    config = HousekeepingConfig(raw_days=0, dedupe_days=0, batch=3)

    report = housekeeper(store, config).run_once()

    assert report is not None and report.purged == {}
    assert ids(store, EventModel.id) == set(old.event_ids)
    assert request_of(store, old.request_id).body == b'{"request": "old"}'


# Outbound side


def test_purge_takes_old_deliveries_with_attempts_and_bare_outbound_events(store):
    subscribe(store)
    delivered_old = announce(store, days_ago(20))
    delivered_old_id = deliver(store, delivered_old, "delivered", days_ago(20))
    delivered_new = announce(store, days_ago(5))
    delivered_new_id = deliver(store, delivered_new, "delivered", days_ago(5))
    failed_mid = announce(store, days_ago(30))
    failed_mid_id = deliver(store, failed_mid, "failed", days_ago(30))
    failed_old = announce(store, days_ago(100))
    deliver(store, failed_old, "failed", days_ago(100))
    pending_old = announce(store, days_ago(100))
    unwanted_old = announce(store, days_ago(20), event_type=STARTED)
    unwanted_new = announce(store, days_ago(1), event_type=STARTED)

    report = housekeeper(store).run_once()

    assert report is not None and report.complete
    assert report.purged == {
        "delivered_deliveries": 1,
        "failed_deliveries": 1,
        "delivery_attempts": 4,
        "outbound_events": 3,
    }
    assert ids(store, OutboundEventModel.id) == {
        delivered_new,
        failed_mid,
        pending_old,
        unwanted_new,
    }
    assert unwanted_old not in ids(store, OutboundEventModel.id)
    kept = ids(store, DeliveryModel.id)
    assert delivered_old_id not in kept
    assert {delivered_new_id, failed_mid_id} <= kept
    assert len(kept) == 3
    assert ids(store, DeliveryAttemptModel.delivery_id) == {
        delivered_new_id,
        failed_mid_id,
    }


def test_stale_heartbeats_go_and_leases_stay(store):
    beat(store, "gone", days_ago(10))
    beat(store, "alive", days_ago(1))
    with store.session() as session:
        assert leadership.try_acquire(session, "other-job", "w9", ttl=60, now=NOW)

    report = housekeeper(store).run_once()

    assert report is not None and report.purged == {"heartbeats": 1}
    assert ids(store, WorkerStateModel.key) == {"worker:alive", "leader:other-job"}


# Batches


def seed_finished(store: Store, intake, count: int) -> list[str]:
    """Store ``count`` old requests, each with one dispatched event."""
    event_ids = []
    for index in range(count):
        outcome = receive(intake, f"bulk-{index}", days_ago(60))
        settle(store, outcome.event_ids[0], "dispatched", days_ago(60))
        event_ids.extend(outcome.event_ids)
    return event_ids


def test_batch_of_three_over_ten_rows_takes_four_batches(store, intake):
    seed_finished(store, intake, 10)

    report = housekeeper(store).run_once()

    assert report is not None and report.complete
    assert report.purged["finished_events"] == 10
    assert report.purged["requests"] == 10
    assert report.batches == {"finished_events": 4, "requests": 4}
    assert count(store, EventModel) == 0


def test_batch_cap_leaves_the_rest_for_the_next_run(store, intake):
    seed_finished(store, intake, 10)
    config = HousekeepingConfig(dedupe_days=30, batch=3, max_batches=2)

    first = housekeeper(store, config).run_once()
    remaining = count(store, EventModel)
    second = housekeeper(store, config).run_once()

    assert first is not None and first.complete is False
    assert first.purged["finished_events"] == 6
    assert remaining == 4
    assert second is not None and second.complete is True
    assert second.purged["finished_events"] == 4
    assert count(store, EventModel) == 0


def test_dry_run_counts_and_changes_nothing(store, intake):
    event_ids = seed_finished(store, intake, 4)

    due = housekeeper(store).count_due()

    assert due["finished_events"] == 4
    assert due["raw_bodies"] == 4
    assert due["failed_events"] == 0
    assert ids(store, EventModel.id) == set(event_ids)


# One node at a time


def test_a_run_waits_while_another_node_holds_the_lease(store, intake):
    event_ids = seed_finished(store, intake, 2)
    with store.session() as session:
        assert leadership.try_acquire(
            session, "housekeeping", "other-node", ttl=300, now=NOW
        )

    blocked = housekeeper(store).run_once()
    with store.session() as session:
        assert leadership.release(session, "housekeeping", "other-node")
    ran = housekeeper(store).run_once()

    assert blocked is None
    assert ran is not None and ran.purged["finished_events"] == 2
    assert not set(event_ids) & ids(store, EventModel.id)


def test_a_run_releases_the_lease_when_done(store, intake):
    seed_finished(store, intake, 1)

    keeper = housekeeper(store)
    keeper.run_once()

    assert keeper.lease.current() is None


def test_an_event_requeued_meanwhile_is_not_purged(store, intake):
    outcome = receive(intake, "requeued", days_ago(200))
    settle(store, outcome.event_ids[0], "failed", days_ago(200))
    with store.session() as session:
        dq.requeue_events(session, now=days_ago(200), event_id=outcome.event_ids[0])

    report = housekeeper(store).run_once()

    assert report is not None and report.purged == {}
    assert ids(store, EventModel.id) == set(outcome.event_ids)


def test_each_kind_is_logged_with_its_counts(store, intake, caplog):
    seed_finished(store, intake, 4)
    caplog.set_level("INFO", logger="bridge.jobs.housekeeping")

    housekeeper(store).run_once()

    assert [record.getMessage() for record in caplog.records] == [
        "housekeeping keeper: finished_events: 4 row(s) in 2 batch(es), "
        "with 4 elms_calls",
        "housekeeping keeper: requests: 4 row(s) in 2 batch(es)",
        "housekeeping keeper: 12 row(s) purged",
    ]
