"""The admin API's figures: counts by state, oldest pending age, success rates."""

from __future__ import annotations

from bridge.store.delivery_replay_queries import get_delivery
from tests.api.conftest import announce, fail_event, post_statement, settle, subscribe


def subscriber_of(bridge, delivery_id):
    with bridge.store.session(write=False) as session:
        return get_delivery(session, delivery_id).subscription_id


def test_stats_count_states_and_rate_each_subscription(bridge):
    events = [post_statement(bridge, f"course-{n}") for n in range(3)]
    fail_event(bridge.store, events[0])
    healthy = subscribe(bridge)
    flaky = subscribe(bridge, event_types=["progress.completed"])
    idle = subscribe(bridge, event_types=["bridge.event_failed"])
    made = [delivery for _ in range(3) for delivery in announce(bridge.store)]
    flaky_ones = [d for d in made if subscriber_of(bridge, d) == flaky["id"]]
    settle(bridge.store, {delivery: 500 for delivery in flaky_ones[:2]})
    announce(bridge.store)

    stats = bridge.api.get(bridge.at("/stats"), timeout=10).json()

    assert stats["events_by_status"] == {"failed": 1, "pending": 2}
    assert stats["oldest_pending_event_age_seconds"] >= 0
    assert stats["deliveries_by_status"] == {"delivered": 4, "failed": 2, "pending": 2}
    assert stats["oldest_pending_delivery_age_seconds"] >= 0
    rates = {row["subscription_id"]: row for row in stats["subscriptions"]}
    assert rates[healthy["id"]]["success_rate"] == 1.0
    assert rates[healthy["id"]]["pending"] == 1
    assert rates[flaky["id"]]["delivered"] == 1
    assert rates[flaky["id"]]["failed"] == 2
    assert rates[flaky["id"]]["success_rate"] == 1 / 3
    assert rates[idle["id"]]["success_rate"] is None


def test_stats_of_an_empty_bridge_have_no_ages(bridge):
    stats = bridge.api.get(bridge.at("/stats"), timeout=10).json()
    assert stats == {
        "events_by_status": {},
        "oldest_pending_event_age_seconds": None,
        "deliveries_by_status": {},
        "oldest_pending_delivery_age_seconds": None,
        "subscriptions": [],
    }
