"""Inbound events over the admin API: pages, filters, details, retry."""

from __future__ import annotations

from sqlalchemy import update

from bridge.store import queries
from bridge.store.models import InboundRequestModel
from tests.api.conftest import announce, fail_event, post_statement, settle, subscribe


def walk(bridge, path, **params):
    """Return every item of a listing, following next_cursor, and the page count."""
    items, pages, cursor = [], 0, None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        answer = bridge.api.get(bridge.at(path), params=query, timeout=10)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages


def test_walking_every_page_lists_each_event_once_newest_first(bridge):
    posted = [post_statement(bridge, f"course-{n}") for n in range(7)]

    items, pages = walk(bridge, "/events", limit=3)

    assert pages == 3
    assert [item["id"] for item in items] == list(reversed(posted))
    with bridge.store.session(write=False) as session:
        stored = queries.list_events(session, limit=100)
    assert [item["id"] for item in items] == [row.id for row in stored]
    assert items[0]["source"] == "open-xapi"
    assert items[0]["kind"] == "completed"
    assert items[0]["score"] == 80.0


def test_filters_by_status_and_source(bridge):
    posted = [post_statement(bridge, f"course-{n}") for n in range(3)]
    fail_event(bridge.store, posted[1])

    failed, _ = walk(bridge, "/events", status="failed")
    pending, _ = walk(bridge, "/events", status="pending", limit=1)
    other, _ = walk(bridge, "/events", source="guarded")

    assert [item["id"] for item in failed] == [posted[1]]
    assert [item["id"] for item in pending] == [posted[2], posted[0]]
    assert other == []


def test_a_cursor_from_another_listing_or_garbage_is_422(bridge):
    subscribe(bridge)
    announce(bridge.store)
    announce(bridge.store)
    page = bridge.api.get(bridge.at("/deliveries"), params={"limit": 1}, timeout=10)
    foreign = page.json()["next_cursor"]
    assert foreign

    for cursor in [foreign, "not-a-cursor", "e30"]:
        answer = bridge.api.get(
            bridge.at("/events"), params={"cursor": cursor}, timeout=10
        )
        assert answer.status_code == 422
        assert answer.json()["errors"] == {
            "cursor": ["is not a cursor of this listing"]
        }
    too_big = bridge.api.get(bridge.at("/events"), params={"limit": 1001}, timeout=10)
    assert too_big.status_code == 422
    assert list(too_big.json()["errors"]) == ["limit"]


def test_show_gives_the_request_the_open_elms_calls_and_the_deliveries(bridge):
    subscription = subscribe(bridge)
    event_id = post_statement(bridge, "fire-safety")
    fail_event(bridge.store, event_id)
    (delivery,) = announce(bridge.store, event_id)
    settle(bridge.store, {delivery: 503})

    shown = bridge.api.get(bridge.at(f"/events/{event_id}"), timeout=10).json()

    assert shown["status"] == "failed"
    assert shown["activity"]["iri"] == "http://example.com/courses/fire-safety"
    assert shown["request"]["path"] == "/hooks/open-xapi"
    assert "courses/fire-safety" in shown["request"]["body"]
    assert [(c["method"], c["path"], c["status"]) for c in shown["elms_calls"]] == [
        ("POST", "/learning/7/progress", 500)
    ]
    (sent,) = shown["deliveries"]
    assert sent["id"] == delivery
    assert sent["subscription_id"] == subscription["id"]
    assert sent["status"] == "failed"
    assert sent["last_status"] == 503


def test_retry_requeues_a_failed_event_and_refuses_a_pending_one(bridge):
    failed = post_statement(bridge, "course-a")
    pending = post_statement(bridge, "course-b")
    fail_event(bridge.store, failed)

    retried = bridge.api.post(bridge.at(f"/events/{failed}/retry"), timeout=10)
    refused = bridge.api.post(bridge.at(f"/events/{pending}/retry"), timeout=10)
    missing = bridge.api.post(bridge.at("/events/nope/retry"), timeout=10)

    assert retried.status_code == 200
    assert retried.json() == {"requeued": 1}
    shown = bridge.api.get(bridge.at(f"/events/{failed}"), timeout=10).json()
    assert shown["status"] == "pending"
    assert shown["attempts"] == 0
    assert refused.status_code == 409
    assert refused.json()["message"] == (
        f"event {pending} is pending; only failed or unresolved events are retried"
    )
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "no event nope"}


def test_show_says_when_housekeeping_cleared_the_body(bridge):
    kept = post_statement(bridge, "fire-safety")
    cleared = post_statement(bridge, "first-aid")
    with bridge.store.session() as session:
        request_id = queries.get_event(session, cleared).request_id
        session.execute(
            update(InboundRequestModel)
            .where(InboundRequestModel.id == request_id)
            .values(body=b"", headers={})
        )

    kept_request = bridge.api.get(bridge.at(f"/events/{kept}"), timeout=10).json()
    cleared_request = bridge.api.get(bridge.at(f"/events/{cleared}"), timeout=10).json()

    assert kept_request["request"]["body_cleared"] is False
    assert "courses/fire-safety" in kept_request["request"]["body"]
    assert cleared_request["request"]["body_cleared"] is True
    assert cleared_request["request"]["body"] is None
