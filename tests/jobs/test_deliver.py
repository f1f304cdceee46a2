"""The deliverer against real receivers on loopback, on a SQLite store.

Schedules are shortened to fractions of a second and the timeout to half
a second; every request goes over a real socket to a receiver that checks
the Standard Webhooks signature with the ``standardwebhooks`` package.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli.deliveries import deliveries
from bridge.config import Settings
from bridge.jobs.deliver import Deliverer, DeliveryConfig
from bridge.store import delivery_replay_queries as dr
from bridge.store import subscription_queries as sq
from bridge.store.db import Store, create_store
from bridge.store.migrate import upgrade
from bridge.store.outbound_models import DeliveryModel, OutboundEventModel
from tests.pg import create_pg_database, drop_pg_database
from tests.receiver import (
    Receiver,
    Reply,
    payload_of,
    serve_receiver,
    serve_receiver_on,
)

CONFIG = DeliveryConfig(
    timeout=0.5,
    schedule=(0, 0.2, 0.4, 0.8),
    disable_after=3600,
    allowed_targets=("127.0.0.0/8",),
)
COMPLETED = "progress.completed"
DISABLED = "bridge.subscription_disabled"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Return the URL of a migrated SQLite file."""
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    upgrade(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """Yield a store on the migrated SQLite file."""
    store = create_store(db_url)
    yield store
    store.dispose()


@pytest.fixture
def make_deliverer(store: Store) -> Iterator[Callable[..., Deliverer]]:
    """Return a factory of deliverers on the store, closed after the test."""
    made: list[Deliverer] = []

    def make(config: DeliveryConfig = CONFIG, on: Store = store) -> Deliverer:
        deliverer = Deliverer(on, worker=f"w-{len(made)}", config=config)
        made.append(deliverer)
        return deliverer

    yield make
    for deliverer in made:
        deliverer.close()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """Yield a running receiver."""
    with serve_receiver(Receiver()) as running:
        yield running


def subscribe(
    store: Store, url: str, secret: str, types: list[str] | None = None
) -> str:
    """Add an enabled subscription and return its id."""
    with store.session() as session:
        row = sq.add_subscription(
            session, url=url, event_types=types or [COMPLETED], secret=secret
        )
    return row.id


def announce(
    store: Store, *subscription_ids: str, event_type: str = COMPLETED
) -> tuple[str, list[str]]:
    """Insert an outbound event and a due delivery per subscription."""
    now = datetime.now(UTC)
    event_id = f"msg_{uuid.uuid4().hex}"
    payload = {
        "type": event_type,
        "time": now.isoformat(),
        "user": {"id": "42", "email": "learner@example.org"},
        "learning": {"id": "7", "name": "Fire Safety Awareness"},
        "status": "completed",
        "score": 91.5,
    }
    delivery_ids = [str(uuid.uuid4()) for _ in subscription_ids]
    with store.session() as session:
        session.add(
            OutboundEventModel(
                id=event_id, type=event_type, payload=payload, created_at=now
            )
        )
        session.flush()
        for delivery_id, subscription_id in zip(
            delivery_ids, subscription_ids, strict=True
        ):
            session.add(
                DeliveryModel(
                    id=delivery_id,
                    outbound_event_id=event_id,
                    subscription_id=subscription_id,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    return event_id, delivery_ids


def delivery(store: Store, delivery_id: str) -> dr.DeliveryRow:
    """Return a delivery with its attempts."""
    with store.session(write=False) as session:
        row = dr.get_delivery(session, delivery_id)
    assert row is not None
    return row


def subscription(store: Store, subscription_id: str) -> sq.SubscriptionRow:
    """Return a subscription."""
    with store.session(write=False) as session:
        row = sq.get_subscription(session, subscription_id)
    assert row is not None
    return row


def run_until(
    deliverer: Deliverer, done: Callable[[], bool], timeout: float = 10.0
) -> None:
    """Run passes until ``done()`` holds; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deliverer.run_once()
        if done():
            return
        time.sleep(0.02)
    pytest.fail(f"not done after {timeout}s")


def status_is(store: Store, delivery_id: str, status: str) -> Callable[[], bool]:
    """Return a check that a delivery has reached ``status``."""
    return lambda: delivery(store, delivery_id).status == status


def free_port() -> int:
    """Return a loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Signing and the body


def test_delivery_is_signed_so_the_receiver_verifies_it(
    store, make_deliverer, receiver
):
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    event_id, [delivery_id] = announce(store, sub)

    assert make_deliverer().run_once() == 1

    [hit] = receiver.receiver.snapshot()
    assert hit.verified
    assert hit.webhook_id == event_id
    assert hit.headers["content-type"] == "application/json"
    assert payload_of(hit)["user"] == {"id": "42", "email": "learner@example.org"}
    row = delivery(store, delivery_id)
    assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)
    [attempt] = row.attempt_log
    assert attempt.status_code == 200
    assert attempt.response_body == "ok"
    assert attempt.latency_ms is not None and attempt.latency_ms > 0


def test_receiver_with_another_secret_does_not_verify(store, make_deliverer, receiver):
    sub = subscribe(store, receiver.url, Receiver().secret)
    announce(store, sub)

    make_deliverer().run_once()

    [hit] = receiver.receiver.snapshot()
    assert not hit.verified


def test_retries_of_one_event_send_identical_bodies(store, make_deliverer, receiver):
    receiver.receiver.answer(500, 200)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    _, [delivery_id] = announce(store, sub)

    run_until(make_deliverer(), status_is(store, delivery_id, "delivered"))

    first, second = receiver.receiver.snapshot()
    assert first.body == second.body
    assert first.webhook_id == second.webhook_id
    assert json.loads(first.body) == payload_of(second)


# Retries


def test_retries_follow_the_schedule_then_deliver(
    store, make_deliverer, receiver, caplog
):
    caplog.set_level(logging.INFO, logger="bridge.jobs.deliver")
    receiver.receiver.answer(500, 503, 200)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    event_id, [delivery_id] = announce(store, sub)

    run_until(make_deliverer(), status_is(store, delivery_id, "delivered"))

    row = delivery(store, delivery_id)
    assert row.attempts == 3
    assert [a.status_code for a in row.attempt_log] == [500, 503, 200]
    times = [a.attempted_at for a in row.attempt_log]
    # schedule[1] = 0.2 s and schedule[2] = 0.4 s, each with at most 20 % off
    assert (times[1] - times[0]).total_seconds() >= 0.2 * 0.8
    assert (times[2] - times[1]).total_seconds() >= 0.4 * 0.8
    lines = [
        (r.levelno, r.getMessage()) for r in caplog.records if "delivery" in r.message
    ]
    prefix = f"delivery {delivery_id} of {event_id} to {sub}: attempt"
    assert [level for level, _ in lines] == [logging.WARNING] * 2 + [logging.INFO]
    assert re.fullmatch(rf"{prefix} 1 got 500; retry in 0\.\d+s", lines[0][1])
    assert re.fullmatch(rf"{prefix} 2 got 503; retry in 0\.\d+s", lines[1][1])
    assert lines[2][1] == f"{prefix} 3 got 200; delivered"
    assert receiver.receiver.secret not in caplog.text


def test_spent_schedule_fails_the_delivery(store, make_deliverer, receiver):
    receiver.receiver.default = Reply(500)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    _, [delivery_id] = announce(store, sub)

    run_until(make_deliverer(), status_is(store, delivery_id, "failed"))

    row = delivery(store, delivery_id)
    assert row.attempts == len(CONFIG.schedule) == 4
    assert len(receiver.receiver.snapshot()) == 4
    assert row.last_error == "gave up after 4 attempts; last: 500"
    assert row.next_attempt_at is None
    assert subscription(store, sub).failing_since is not None


def test_success_clears_the_subscriptions_failing_since(
    store, make_deliverer, receiver
):
    receiver.receiver.answer(500)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    _, [delivery_id] = announce(store, sub)
    deliverer = make_deliverer()

    deliverer.run_once()
    assert subscription(store, sub).failing_since is not None
    run_until(deliverer, status_is(store, delivery_id, "delivered"))

    assert subscription(store, sub).failing_since is None


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, "1", 0.4), (503, "0", 0.2), (429, "0.3", None)],
    ids=["capped-at-twice-the-delay", "raised-to-the-delay", "unreadable-ignored"],
)
def test_retry_after_is_honoured_within_the_schedules_bounds(
    store, make_deliverer, receiver, status, retry_after, expected
):
    receiver.receiver.answer(Reply(status, {"Retry-After": retry_after}), 200)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    _, [delivery_id] = announce(store, sub)
    deliverer = make_deliverer()

    deliverer.run_once()

    row = delivery(store, delivery_id)
    assert row.next_attempt_at is not None
    wait = (row.next_attempt_at - row.updated_at).total_seconds()
    if expected is None:
        assert 0.2 * 0.8 <= wait <= 0.2 * 1.2  # the jittered schedule
    else:
        assert wait == pytest.approx(expected, abs=0.002)
    run_until(deliverer, status_is(store, delivery_id, "delivered"))
    first, second = delivery(store, delivery_id).attempt_log
    assert (second.attempted_at - first.attempted_at).total_seconds() >= wait - 0.01


def test_hanging_receiver_is_timed_out_and_retried(store, make_deliverer, receiver):
    receiver.receiver.answer(Reply(delay=1.5), 200)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    _, [delivery_id] = announce(store, sub)

    run_until(make_deliverer(), status_is(store, delivery_id, "delivered"))

    first, second = delivery(store, delivery_id).attempt_log
    assert first.status_code is None
    assert first.error == "timeout after 0.5s"
    assert first.latency_ms is not None and first.latency_ms < 1400
    assert second.status_code == 200


def test_receiver_down_then_back_gets_the_delivery(store, make_deliverer):
    port = free_port()
    hook = Receiver()
    sub = subscribe(store, f"http://127.0.0.1:{port}/hook", hook.secret)
    _, [delivery_id] = announce(store, sub)
    deliverer = make_deliverer()

    deliverer.run_once()
    row = delivery(store, delivery_id)
    assert row.status == "pending"
    assert row.attempt_log[0].error == "connection failed: Connection refused"

    with serve_receiver_on(hook, port):
        run_until(deliverer, status_is(store, delivery_id, "delivered"))
    assert [hit.verified for hit in hook.snapshot()] == [True]


def test_redirect_is_not_followed_and_counts_as_failure(
    store, make_deliverer, receiver
):
    target = f"{receiver.base_url}/elsewhere"
    receiver.receiver.answer(Reply(302, {"Location": target}), 200)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    _, [delivery_id] = announce(store, sub)

    run_until(make_deliverer(), status_is(store, delivery_id, "delivered"))

    first, second = delivery(store, delivery_id).attempt_log
    assert (first.status_code, second.status_code) == (302, 200)
    hits = receiver.receiver.snapshot()
    assert len(hits) == 2
    assert all(hit.webhook_id is not None for hit in hits)  # /elsewhere never hit


def test_target_refused_by_the_ssrf_guard_fails_without_a_request(
    store, make_deliverer, receiver
):
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    _, [delivery_id] = announce(store, sub)
    closed = replace(CONFIG, allowed_targets=())

    make_deliverer(closed).run_once()

    row = delivery(store, delivery_id)
    assert row.status == "failed"
    assert row.last_error is not None
    assert row.last_error.startswith("target refused: 127.0.0.1 is loopback")
    assert receiver.receiver.snapshot() == []


# Disabling


def test_410_disables_the_subscription_and_fails_its_pending_deliveries(
    store, make_deliverer, receiver
):
    receiver.receiver.answer(410)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    _, [first] = announce(store, sub)
    _, [second] = announce(store, sub)

    make_deliverer(replace(CONFIG, per_subscription=1)).run_once()

    assert len(receiver.receiver.snapshot()) == 1
    row = subscription(store, sub)
    assert not row.enabled
    assert row.disabled_reason == "the subscriber answered 410 Gone"
    assert delivery(store, first).status == "failed"
    assert delivery(store, second).status == "failed"
    assert delivery(store, second).attempts == 0


def test_failing_subscription_is_disabled_and_announced_to_watchers(
    store, make_deliverer, receiver
):
    receiver.receiver.default = Reply(500)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    _, [delivery_id] = announce(store, sub)
    with serve_receiver(Receiver()) as watcher:
        watcher_sub = subscribe(
            store, watcher.url, watcher.receiver.secret, types=[DISABLED]
        )
        deliverer = make_deliverer(replace(CONFIG, disable_after=0.3))

        run_until(deliverer, lambda: not subscription(store, sub).enabled)
        run_until(deliverer, lambda: len(watcher.receiver.snapshot()) == 1)

        [notice] = watcher.receiver.snapshot()
    assert notice.verified
    body = payload_of(notice)
    assert body["type"] == DISABLED
    assert body["subscription"] == {"id": sub, "url": receiver.url}
    assert body["reason"].startswith("failing without a success since ")
    assert delivery(store, delivery_id).status == "failed"
    assert subscription(store, watcher_sub).enabled


# Concurrency


def test_slow_subscriber_does_not_delay_others(store, make_deliverer):
    slow_hook, fast_hook = Receiver(), Receiver()
    slow_hook.default = Reply(delay=2.0)
    with serve_receiver(slow_hook) as slow, serve_receiver(fast_hook) as fast:
        slow_sub = subscribe(store, slow.url, slow_hook.secret)
        fast_sub = subscribe(store, fast.url, fast_hook.secret)
        _, [slow_delivery, early] = announce(store, slow_sub, fast_sub)
        deliverer = make_deliverer(replace(CONFIG, timeout=5.0))

        deliverer.run_once(wait=False)
        run_until_quiet(deliverer, status_is(store, early, "delivered"))
        _, [late] = announce(store, fast_sub)
        run_until_quiet(deliverer, status_is(store, late, "delivered"))
        deliverer.wait_for()

    [slow_hit] = slow_hook.snapshot()
    for fast_delivery in (early, late):
        delivered_at = delivery(store, fast_delivery).delivered_at
        assert delivered_at is not None and delivered_at < slow_hit.answered_at
    assert delivery(store, slow_delivery).status == "delivered"


def test_refill_drains_a_backlog_without_waiting_for_the_next_pass(
    store, make_deliverer, receiver
):
    """One pass takes 4 of a subscriber; each finished delivery claims again."""
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    ids = [announce(store, sub)[1][0] for _ in range(30)]
    deliverer = make_deliverer(replace(CONFIG, per_subscription=4))

    assert deliverer.run_once(wait=False, refill=True) == 4
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(delivery(store, each).status == "delivered" for each in ids):
            break
        time.sleep(0.05)  # no further run_once: only refills may claim
    deliverer.wait_for()

    assert [delivery(store, each).status for each in ids] == ["delivered"] * 30
    assert Counter(receiver.receiver.ids()) == Counter(
        {event_id: 1 for event_id in receiver.receiver.ids()}
    )
    assert len(receiver.receiver.ids()) == 30


def test_without_refill_a_pass_takes_only_its_share(store, make_deliverer, receiver):
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    for _ in range(10):
        announce(store, sub)
    deliverer = make_deliverer(replace(CONFIG, per_subscription=4))

    deliverer.run_once(wait=False)
    deliverer.wait_for()
    time.sleep(0.2)

    assert len(receiver.receiver.ids()) == 4


def run_until_quiet(deliverer: Deliverer, done: Callable[[], bool]) -> None:
    """Run non-waiting passes (the scheduler's way) until ``done()`` holds."""
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "not done after 10s"
        deliverer.run_once(wait=False)
        time.sleep(0.02)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield a migrated database URL on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        upgrade(url)
        yield url
        return
    url = create_pg_database()
    upgrade(url)
    yield url
    drop_pg_database(url)


def test_two_deliverers_never_send_one_delivery_twice(shared_url, receiver):
    stores = [create_store(shared_url) for _ in range(2)]
    receiver.receiver.default = Reply(delay=0.01)
    subs = [subscribe(stores[0], receiver.url, receiver.receiver.secret) for _ in "ab"]
    for _ in range(25):
        announce(stores[0], *subs)
    workers = [
        Deliverer(store, worker=f"w{n}", config=CONFIG)
        for n, store in enumerate(stores)
    ]

    def pending() -> int:
        with stores[0].session(write=False) as session:
            rows = dr.list_deliveries(session, status="pending", limit=1000)
        return len(rows)

    threads = [
        threading.Thread(target=run_until, args=(worker, lambda: pending() == 0, 30))
        for worker in workers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    for worker in workers:
        worker.close()
    for store in stores:
        store.dispose()

    hits = Counter(receiver.receiver.ids())
    assert sum(hits.values()) == 50  # 25 events, 2 subscriptions, one each
    assert len(hits) == 25 and set(hits.values()) == {2}


# Replay


def test_replay_of_failed_deliveries_sends_them_again(
    store, db_url, make_deliverer, receiver
):
    receiver.receiver.default = Reply(500)
    sub = subscribe(store, receiver.url, receiver.receiver.secret)
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = [announce(store, sub)[1][0] for _ in range(2)]
    deliverer = make_deliverer(replace(CONFIG, schedule=(0, 0.05)))
    run_until(
        deliverer, lambda: all(delivery(store, d).status == "failed" for d in ids)
    )

    receiver.receiver.default = Reply(200)
    runner = CliRunner()
    settings = Settings(database_url=db_url)
    replay = ["replay", "--subscription", sub, "--failed-since", before.isoformat()]
    result = runner.invoke(deliveries, replay, obj=settings)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"requeued": 2}

    run_until(
        deliverer, lambda: all(delivery(store, d).status == "delivered" for d in ids)
    )
    shown = runner.invoke(deliveries, ["show", ids[0]], obj=settings)
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 500, 200]
    assert detail["attempts"] == 1
