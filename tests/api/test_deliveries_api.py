"""Deliveries over the admin API: pages, attempts, retry, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.store import delivery_queries as dq
from bridge.store import delivery_replay_queries as dr
from tests.api.conftest import announce, settle, subscribe
from tests.api.test_events_api import walk


def test_walking_every_page_lists_each_delivery_once(bridge):
    first = subscribe(bridge)
    second = subscribe(bridge)
    made = [delivery for _ in range(4) for delivery in announce(bridge.store)]
    assert len(made) == 8

    items, pages = walk(bridge, "/deliveries", limit=3)
    mine, _ = walk(bridge, "/deliveries", subscription_id=second["id"], limit=2)

    assert pages == 3
    assert sorted(item["id"] for item in items) == sorted(made)
    with bridge.store.session(write=False) as session:
        stored = dr.list_deliveries(session, limit=100)
    assert [item["id"] for item in items] == [row.id for row in stored]
    assert {item["subscription_id"] for item in mine} == {second["id"]}
    assert len(mine) == 4
    assert first["id"] != second["id"]


def test_show_lists_every_attempt_and_status_filters(bridge):
    subscribe(bridge)
    (failed,) = announce(bridge.store)
    (delivered,) = announce(bridge.store)
    settle(bridge.store, {failed: 503, delivered: 204})

    shown = bridge.api.get(bridge.at(f"/deliveries/{failed}"), timeout=10).json()
    only_failed, _ = walk(bridge, "/deliveries", status="failed")

    assert shown["status"] == "failed"
    assert shown["event_type"] == "progress.completed"
    assert shown["last_status"] == 503
    (attempt,) = shown["attempt_log"]
    assert attempt["status_code"] == 503
    assert attempt["response_body"] == "answer 503"
    assert [item["id"] for item in only_failed] == [failed]
    missing = bridge.api.get(bridge.at("/deliveries/nope"), timeout=10)
    assert missing.status_code == 404


def test_retry_puts_a_failed_delivery_back_in_the_queue(bridge):
    subscribe(bridge)
    (delivery,) = announce(bridge.store)
    settle(bridge.store, {delivery: 500})

    retried = bridge.api.post(bridge.at(f"/deliveries/{delivery}/retry"), timeout=10)

    assert retried.json() == {"requeued": 1}
    shown = bridge.api.get(bridge.at(f"/deliveries/{delivery}"), timeout=10).json()
    assert shown["status"] == "pending"
    assert shown["attempts"] == 0
    assert len(shown["attempt_log"]) == 1


def test_retry_of_a_delivery_being_sent_is_409(bridge):
    subscribe(bridge)
    (delivery,) = announce(bridge.store)
    with bridge.store.session() as session:
        dq.claim_due_deliveries(
            session,
            worker="w-busy",
            now=datetime.now(UTC) + timedelta(seconds=1),
            lease_seconds=600,
            limit=10,
            per_subscription=10,
        )

    answer = bridge.api.post(bridge.at(f"/deliveries/{delivery}/retry"), timeout=10)

    assert answer.status_code == 409
    assert answer.json()["message"] == f"delivery {delivery} is being sent right now"


def test_replay_of_failed_deliveries_and_of_past_events(bridge):
    first = subscribe(bridge)
    failed = announce(bridge.store)
    settle(bridge.store, {failed[0]: 500})
    late = subscribe(bridge)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    by_failure = bridge.api.post(
        bridge.at("/deliveries/replay"),
        json={"subscription_id": first["id"], "failed_since": since},
        timeout=10,
    )
    by_type = bridge.api.post(
        bridge.at("/deliveries/replay"),
        json={
            "subscription_id": late["id"],
            "event_type": "progress.completed",
            "since": since,
        },
        timeout=10,
    )

    assert by_failure.json() == {"created": 0, "requeued": 1}
    assert by_type.json() == {"created": 1, "requeued": 0}
    listed, _ = walk(bridge, "/deliveries", subscription_id=late["id"])
    assert [item["status"] for item in listed] == ["pending"]


def test_replay_refuses_mixed_or_missing_kinds_and_unknown_subscriptions(bridge):
    since = datetime.now(UTC).isoformat()
    both = {"subscription_id": "s", "failed_since": since, "since": since}
    neither = {"subscription_id": "s"}
    for body in (both, neither):
        answer = bridge.api.post(bridge.at("/deliveries/replay"), json=body, timeout=10)
        assert answer.status_code == 422
        assert list(answer.json()["errors"]) == ["input"]

    unknown = bridge.api.post(
        bridge.at("/deliveries/replay"),
        json={"subscription_id": "nope", "failed_since": since},
        timeout=10,
    )
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "no subscription nope"
