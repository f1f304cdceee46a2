"""The leader lease on SQLite and PostgreSQL: one holder, renewal, hand-over."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from bridge.store import leadership
from bridge.store.db import Store
from bridge.store.leadership import LeaderLease, LeaseHolder

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TTL = 60.0


def acquire(store: Store, holder: str, now: datetime, name: str = "job") -> bool:
    with store.session() as session:
        return leadership.try_acquire(session, name, holder, ttl=TTL, now=now)


def holder_at(store: Store, now: datetime, name: str = "job") -> LeaseHolder | None:
    with store.session(write=False) as session:
        return leadership.read_lease(session, name, now=now)


def test_of_two_holders_only_the_first_gets_the_lease(store):
    first = acquire(store, "node-a", T0)
    second = acquire(store, "node-b", T0 + timedelta(seconds=1))

    assert (first, second) == (True, False)
    assert holder_at(store, T0) == LeaseHolder("node-a", T0 + timedelta(seconds=TTL))


def test_the_holder_renews_and_keeps_the_other_out(store):
    acquire(store, "node-a", T0)
    renewed = acquire(store, "node-a", T0 + timedelta(seconds=50))
    refused = acquire(store, "node-b", T0 + timedelta(seconds=70))

    assert renewed is True
    assert refused is False
    holder = holder_at(store, T0 + timedelta(seconds=70))
    assert holder == LeaseHolder("node-a", T0 + timedelta(seconds=50 + TTL))


def test_an_expired_lease_passes_to_the_next_holder(store):
    acquire(store, "node-a", T0)
    late = T0 + timedelta(seconds=TTL + 1)

    taken = acquire(store, "node-b", late)
    back = acquire(store, "node-a", late + timedelta(seconds=1))

    assert taken is True
    assert back is False
    assert holder_at(store, late) == LeaseHolder(
        "node-b", late + timedelta(seconds=TTL)
    )
    assert holder_at(store, late + timedelta(seconds=TTL)) is None


def test_release_frees_the_lease_only_for_its_holder(store):
    acquire(store, "node-a", T0)

    with store.session() as session:
        by_other = leadership.release(session, "job", "node-b")
    with store.session() as session:
        by_holder = leadership.release(session, "job", "node-a")
    taken = acquire(store, "node-b", T0 + timedelta(seconds=1))

    assert (by_other, by_holder, taken) == (False, True, True)


def test_leases_of_different_names_are_independent(store):
    assert acquire(store, "node-a", T0, name="purge")
    assert acquire(store, "node-b", T0, name="report")
    assert not acquire(store, "node-b", T0, name="purge")


def test_racing_processes_on_a_fresh_lease_get_exactly_one_winner(store):
    # Each thread uses its own session, as separate processes would; on
    # PostgreSQL they race on the row's first insert.
    holders = [f"node-{index}" for index in range(6)]
    start = threading.Barrier(len(holders))
    results: dict[str, bool] = {}

    def contend(holder: str) -> None:
        start.wait()
        results[holder] = acquire(store, holder, T0)

    threads = [threading.Thread(target=contend, args=(h,)) for h in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    winners = [holder for holder, won in results.items() if won]
    assert len(results) == len(holders)
    assert len(winners) == 1
    assert holder_at(store, T0) == LeaseHolder(winners[0], T0 + timedelta(seconds=TTL))


def test_leader_lease_object_takes_renews_and_gives_back(store):
    now = [T0]
    first = LeaderLease(store, "job", "node-a", ttl=TTL, clock=lambda: now[0])
    second = LeaderLease(store, "job", "node-b", ttl=TTL, clock=lambda: now[0])

    assert first.acquire() is True
    assert second.acquire() is False
    now[0] = T0 + timedelta(seconds=TTL - 1)
    assert first.acquire() is True
    now[0] = T0 + timedelta(seconds=TTL + 1)
    assert second.acquire() is False
    assert first.release() is True
    assert second.acquire() is True
    assert second.current() == LeaseHolder("node-b", now[0] + timedelta(seconds=TTL))
