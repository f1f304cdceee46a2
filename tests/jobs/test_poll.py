"""Poll over real HTTP: a store on SQLite, the poller, the sandbox on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bridge.elms import OpenElmsClient
from bridge.elms_shapes import Status
from bridge.jobs.poll import Pacer, PollConfig, Poller
from bridge.outbound import announce_inbound
from bridge.rules import PairState
from bridge.store import poll_queries as pq
from bridge.store.db import Store, create_store
from bridge.store.migrate import upgrade
from bridge.store.outbound_models import OutboundEventModel, TrackedPairModel

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class FixedClock:
    """A clock that moves only when told."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    """The parts of one poll test."""

    store: Store
    poller: Poller
    clock: FixedClock
    admin: str

    def track(self, *pairs: tuple[str, str]) -> None:
        with self.store.session() as session:
            for user_id, learning_id in pairs:
                pq.track_pair(session, user_id, learning_id, origin="watch", now=T0)

    def set_progress(self, user_id: str, learning_id: str, **body: Any) -> None:
        url = f"{self.admin}/progress/{learning_id}/{user_id}"
        requests.put(url, json=body, timeout=5).raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.admin}/calls", timeout=5).json()["calls"]

    def clear_calls(self) -> None:
        requests.delete(f"{self.admin}/calls", timeout=5).raise_for_status()

    def faults(self, **faults: Any) -> None:
        requests.put(f"{self.admin}/faults", json=faults, timeout=5).raise_for_status()

    def events(self) -> list[OutboundEventModel]:
        with self.store.session(write=False) as session:
            query = select(OutboundEventModel).order_by(OutboundEventModel.created_at)
            return list(session.scalars(query))

    def pairs(self) -> dict[tuple[str, str], TrackedPairModel]:
        with self.store.session(write=False) as session:
            models = session.scalars(select(TrackedPairModel))
            return {(m.user_id, m.learning_id): m for m in models}


@pytest.fixture
def rig(tmp_path, sandbox) -> Iterator[Rig]:
    """Yield a poller over a fresh SQLite store and a fresh sandbox."""
    url = f"sqlite:///{tmp_path}/bridge.db"
    upgrade(url)
    store = create_store(url)
    client = OpenElmsClient(sandbox.base_url, sandbox.token, retries=0)
    clock = FixedClock(T0)
    config = PollConfig(rate=1000.0)
    poller = Poller(store, client, worker="w1", intervals=config, clock=clock)
    requests.delete(f"{sandbox.admin_url}/calls", timeout=5)
    yield Rig(store, poller, clock, sandbox.admin_url)
    client.close()
    store.dispose()


def test_completion_made_inside_open_elms_is_announced_once_with_cause_elms(rig):
    rig.track(("2", "1"))  # learner1 on Fire Safety Awareness: in progress
    baseline = rig.poller.run_once()
    rig.set_progress("2", "1", status="completed", score=90)
    rig.clock.advance(61)

    found = rig.poller.run_once()
    rig.clock.advance(86400 + 1)  # only the reconciliation looks at it again
    rig.clear_calls()
    again = rig.poller.run_once()

    (event,) = rig.events()
    assert (baseline, found, again) == (0, 1, 0)
    assert event.type == "progress.completed"
    assert event.payload["cause"] == "elms"
    assert (event.payload["status"], event.payload["score"]) == ("completed", 90.0)
    assert event.payload["previous"] == {"status": "in progress", "score": None}
    assert [c["path"] for c in rig.calls()] == ["learning/1/2"]


def test_completed_pair_is_not_polled_before_the_reconciliation(rig):
    rig.track(("1", "1"))  # seeded completed, 85
    rig.poller.run_once()
    rig.clear_calls()
    rig.clock.advance(3600)

    rig.poller.run_once()

    assert rig.calls() == []
    assert rig.pairs()[("1", "1")].next_poll_at is None


@pytest.mark.parametrize("polled_before", [False, True])
def test_inbound_announce_followed_by_a_poll_announces_once(rig, polled_before):
    if polled_before:
        rig.track(("2", "1"))
        rig.poller.run_once()  # baseline: in progress, due again in a minute
        rig.clear_calls()
        rig.clock.advance(60)
    rig.poller.client.complete("1", "2", 80)  # the dispatcher's call
    with rig.store.session() as session:
        ids = announce_inbound(
            session,
            user_id="2",
            learning_id="1",
            old=PairState(Status.IN_PROGRESS),
            new=PairState(Status.COMPLETED, 80.0),
            inbound_event_id="event-7",
            now=rig.clock(),
        )

    polled = rig.poller.run_once()

    (event,) = rig.events()
    assert polled == 0
    assert [event.id] == ids
    assert event.payload["previous"] == {"status": "in progress", "score": None}
    assert event.payload["cause"] == "inbound"
    assert event.inbound_event_id == event.payload["inbound_event_id"] == "event-7"
    assert [c["path"] for c in rig.calls()] == [
        "learning/1/2/complete/80",
        "learning/1/2",
    ]


def test_in_progress_pair_is_polled_sooner_than_a_not_attempted_one(rig):
    rig.track(("2", "1"), ("1", "5"))  # in progress; assigned, no record

    rig.poller.run_once()

    pairs = rig.pairs()
    assert pairs[("2", "1")].status == "in progress"
    assert pairs[("2", "1")].next_poll_at == T0 + timedelta(seconds=60)
    assert pairs[("1", "5")].status == "not attempted"
    assert pairs[("1", "5")].next_poll_at == T0 + timedelta(seconds=300)


def test_watch_scopes_expand_into_tracked_pairs(rig):
    with rig.store.session() as session:
        pq.add_watch(session, "user", "1", now=T0)
        pq.add_watch(session, "group", "3", now=T0)  # Managers: users 6 and 7
        pq.add_watch(session, "learning", "8", now=T0)

    rig.poller.run_once()
    rig.clear_calls()
    rig.clock.advance(60)
    rig.poller.run_once()

    assert set(rig.pairs()) == {
        ("1", "1"),
        ("1", "2"),
        ("1", "5"),
        ("6", "5"),
        ("6", "6"),
        ("7", "2"),
        ("7", "6"),
        ("11", "8"),
        ("15", "8"),
    }
    assert {p.origin for p in rig.pairs().values()} == {"watch"}
    # Scopes are not expanded again within the hour; in progress pairs are due.
    assert sorted(c["path"] for c in rig.calls()) == [
        "learning/2/1",
        "learning/2/7",
        "learning/8/15",
    ]


def test_unknown_user_scope_is_skipped_and_the_others_expand(rig, caplog):
    with rig.store.session() as session:
        missing = pq.add_watch(session, "user", "999", now=T0)
        pq.add_watch(session, "user", "7", now=T0)

    with caplog.at_level(logging.WARNING, logger="bridge.jobs.poll"):
        rig.poller.run_once()

    assert set(rig.pairs()) == {("7", "2"), ("7", "6")}
    assert any(m.startswith(f"watch {missing.id}: cannot") for m in caplog.messages)


def test_announced_payload_names_the_user_and_learning_of_a_watch(rig):
    with rig.store.session() as session:
        pq.add_watch(session, "learning", "8", now=T0)
    rig.poller.run_once()
    rig.set_progress("15", "8", status="completed", score=77)
    rig.clock.advance(61)

    rig.poller.run_once()

    (event,) = rig.events()
    assert event.payload["user"] == {
        "id": "15",
        "email": "golf@example.org",
        "username": "testing-golf-explained-learner-1",
    }
    assert event.payload["learning"] == {
        "id": "8",
        "name": "Golf Explained: Rules and Etiquette",
    }


def test_503_with_retry_after_stops_the_pass_until_it_has_passed(rig):
    # One call at a time, so that the 503 comes before any other call starts.
    rig.poller.config = PollConfig(rate=1000.0, concurrency=1)
    rig.track(("1", "1"), ("1", "2"), ("2", "1"))
    rig.faults(fail_next=[{"status": 503, "retry_after": 2}])

    stopped = rig.poller.run_once()
    rig.clock.advance(1)
    waiting = rig.poller.run_once()
    calls_while_waiting = len(rig.calls())
    rig.clock.advance(1.5)
    rig.poller.run_once()

    assert (stopped, waiting) == (0, 0)
    assert calls_while_waiting == 1
    assert [c["status"] for c in rig.calls()] == [503, 200, 200, 200]
    polled_at = {p.last_polled_at for p in rig.pairs().values()}
    assert polled_at == {T0 + timedelta(seconds=2.5)}


def test_one_pass_over_n_tracked_pairs_makes_n_calls(rig, caplog):
    pairs = [(str(user), str(learning)) for user in (1, 2, 3) for learning in (1, 2, 3)]
    rig.track(*pairs)

    with caplog.at_level(logging.INFO, logger="bridge.jobs.poll"):
        rig.poller.run_once()

    calls = rig.calls()
    assert len(calls) == len(pairs) == 9
    assert {c["path"] for c in calls} == {f"learning/{lid}/{uid}" for uid, lid in pairs}
    assert "poll w1: 9 call(s), 0 transition(s)" in caplog.messages


def test_a_pass_makes_no_more_than_max_calls(rig):
    rig.poller.config = PollConfig(rate=1000.0, max_calls=4)
    rig.track(*[(str(user), "1") for user in range(1, 11)])

    rig.poller.run_once()
    first = len(rig.calls())
    rig.poller.run_once()

    assert first == 4
    assert len(rig.calls()) == 8


def test_pacer_spaces_calls_by_the_rate():
    moments: list[float] = []
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = Pacer(5.0, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(4):
        pacer.wait()
        moments.append(now[0])

    assert moments == pytest.approx([100.0, 100.2, 100.4, 100.6])


def overlap(calls: list[dict[str, Any]]) -> int:
    """Return the most calls the sandbox was answering at one moment."""
    edges = []
    for call in calls:
        end = datetime.fromisoformat(call["time"])
        start = end - timedelta(milliseconds=call["duration_ms"])
        edges += [(start, 1), (end, -1)]
    most = current = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        most = max(most, current)
    return most


@pytest.mark.parametrize("concurrency", [1, 3])
def test_calls_in_flight_never_exceed_the_concurrency(rig, concurrency):
    rig.poller.config = PollConfig(rate=1000.0, concurrency=concurrency)
    rig.track(*[(str(user), "1") for user in range(1, 10)])
    rig.faults(latency_ms=150)

    rig.poller.run_once()

    calls = rig.calls()
    assert len(calls) == 9
    assert overlap(calls) == concurrency
    assert len(rig.pairs()) == 9
    assert all(p.last_polled_at == T0 for p in rig.pairs().values())


def test_a_503_while_calls_are_in_flight_stops_the_rest_and_gives_them_back(rig):
    rig.poller.config = PollConfig(rate=1000.0, concurrency=2)
    rig.track(*[(str(user), "1") for user in range(1, 9)])
    rig.faults(fail_next=[{"status": 503, "retry_after": 30}])

    rig.faults(latency_ms=100)

    rig.poller.run_once()

    calls = rig.calls()
    [refused] = [c for c in calls if c["status"] == 503]
    refused_at = datetime.fromisoformat(refused["time"])
    started = [
        datetime.fromisoformat(c["time"]) - timedelta(milliseconds=c["duration_ms"])
        for c in calls
    ]
    polled = [p for p in rig.pairs().values() if p.last_polled_at is not None]
    # Calls already in flight finish; none starts once the 503 is in.
    assert all(start <= refused_at for start in started)
    assert len(calls) < 8
    assert len(polled) == len(calls) - 1
    assert all(p.lease_owner is None for p in rig.pairs().values())
