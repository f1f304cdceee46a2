"""Poll queries on SQLite and PostgreSQL: claims, transitions, watch scopes."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bridge.elms_shapes import Progress, Status
from bridge.outbound import announce_event_failed
from bridge.store import poll_queries as pq
from bridge.store.db import Store
from bridge.store.models import EventRow
from bridge.store.outbound_models import (
    DeliveryModel,
    OutboundEventModel,
    SubscriptionModel,
)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def track(store: Store, *pairs: tuple[str, str], now: datetime = T0) -> None:
    with store.session() as session:
        for user_id, learning_id in pairs:
            pq.track_pair(session, user_id, learning_id, origin="watch", now=now)


def claim(store: Store, worker: str, now: datetime = T0, **kw: Any) -> list[Any]:
    with store.session() as session:
        return pq.claim_due_pairs(
            session, worker=worker, now=now, lease_seconds=60, limit=10, **kw
        )


def add_subscription(store: Store, event_types: list[str], **fields: Any) -> str:
    sub_id = str(uuid.uuid4())
    values: dict[str, Any] = {
        "url": f"http://127.0.0.1:9/{sub_id}",
        "learning_ids": None,
        "enabled": True,
        **fields,
    }
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with store.session() as session:
        session.add(
            SubscriptionModel(
                id=sub_id,
                event_types=event_types,
                secret=secret,
                created_at=T0,
                updated_at=T0,
                **values,
            )
        )
    return sub_id


def complete(store: Store, user_id: str, learning_id: str, **kw: Any) -> list[str]:
    values: dict[str, Any] = {
        "old_status": "in progress",
        "old_score": None,
        "new_status": "completed",
        "new_score": 90.0,
        "cause": "elms",
        "now": T0,
        **kw,
    }
    with store.session() as session:
        return pq.record_transition(
            session, user_id=user_id, learning_id=learning_id, **values
        )


def test_track_pair_adds_a_pair_due_now_once(store):
    with store.session() as session:
        first = pq.track_pair(session, "2", "1", origin="inbound", now=T0)
        again = pq.track_pair(session, "2", "1", origin="watch", now=T0)

    with store.session() as session:
        pair = pq.get_pair(session, "2", "1")
    assert (first, again) == (True, False)
    assert pair is not None
    assert (pair.origin, pair.status, pair.next_poll_at) == ("inbound", None, T0)


def test_claims_are_exclusive_between_two_workers(store):
    track(store, ("1", "1"), ("1", "2"), ("2", "1"))

    with store.session() as session:
        first = pq.claim_due_pairs(
            session, worker="w1", now=T0, lease_seconds=60, limit=2
        )
    second = claim(store, "w2")
    third = claim(store, "w3")

    keys = {(p.user_id, p.learning_id) for p in first + second}
    assert len(first) == 2
    assert len(second) == 1
    assert keys == {("1", "1"), ("1", "2"), ("2", "1")}
    assert third == []


def test_open_claim_transactions_skip_each_others_rows(store):
    if store.dialect != "postgresql":
        pytest.skip("SQLite lets one writer in at a time; nothing to skip there")
    track(store, ("1", "1"), ("1", "2"))

    with store.session() as one, store.session() as two:
        first = pq.claim_due_pairs(one, worker="w1", now=T0, lease_seconds=60, limit=1)
        second = pq.claim_due_pairs(two, worker="w2", now=T0, lease_seconds=60, limit=5)

    assert len(first) == len(second) == 1
    assert first[0].learning_id != second[0].learning_id


def test_an_expired_lease_can_be_claimed_again(store):
    track(store, ("1", "1"))
    claim(store, "w1")

    later = claim(store, "w2", now=T0 + timedelta(seconds=61))

    assert [p.user_id for p in later] == ["1"]


def test_completed_pair_is_due_only_for_reconciliation(store):
    track(store, ("1", "1"))
    (pair,) = claim(store, "w1")
    with store.session() as session:
        pq.record_poll(
            session,
            pair,
            Progress(Status.COMPLETED, 85.0),
            worker="w1",
            now=T0,
            next_poll_at=None,
        )
    day = T0 + timedelta(days=1, seconds=1)

    plain = claim(store, "w1", now=day)
    recent = claim(store, "w1", now=day, reconcile_before=T0 - timedelta(seconds=1))
    stale = claim(store, "w1", now=day, reconcile_before=day - timedelta(days=1))

    assert plain == []
    assert recent == []
    assert [(p.status, p.score) for p in stale] == [("completed", 85.0)]


def test_record_poll_refuses_a_result_older_than_an_announce(store):
    track(store, ("2", "1"))
    (pair,) = claim(store, "w1")
    complete(store, "2", "1", cause="inbound", inbound_event_id="ev-1")

    with store.session() as session:
        stored = pq.record_poll(
            session,
            pair,
            Progress(Status.IN_PROGRESS),
            worker="w1",
            now=T0,
            next_poll_at=T0 + timedelta(minutes=1),
        )
        after = pq.get_pair(session, "2", "1")

    assert stored is False
    assert after is not None
    assert (after.status, after.score, after.next_poll_at) == ("completed", 90.0, T0)
    assert claim(store, "w2") != []  # the lease was given back


def test_record_transition_delivers_to_matching_subscriptions_only(store):
    wanted = {
        add_subscription(store, ["progress.completed"]),
        add_subscription(store, ["*"], learning_ids=["1", "3"]),
    }
    add_subscription(store, ["progress.started"])
    add_subscription(store, ["*"], learning_ids=["9"])
    add_subscription(store, ["*"], enabled=False)
    track(store, ("2", "1"))

    ids = complete(
        store,
        "2",
        "1",
        user={"email": "learner1@example.com", "username": "learner1"},
        learning={"id": "1", "name": "Fire Safety Awareness"},
    )

    with store.session(write=False) as session:
        event = session.get(OutboundEventModel, ids[0])
        deliveries = list(session.scalars(select(DeliveryModel)))
        pair = pq.get_pair(session, "2", "1")
    assert len(ids) == 1 and ids[0].startswith("msg_")
    assert event is not None
    assert event.type == "progress.completed"
    assert event.payload == {
        "type": "progress.completed",
        "time": T0.isoformat(),
        "user": {"id": "2", "email": "learner1@example.com", "username": "learner1"},
        "learning": {"id": "1", "name": "Fire Safety Awareness"},
        "status": "completed",
        "score": 90.0,
        "previous": {"status": "in progress", "score": None},
        "cause": "elms",
        "inbound_event_id": None,
    }
    assert {d.subscription_id for d in deliveries} == wanted
    assert {(d.outbound_event_id, d.status, d.attempts) for d in deliveries} == {
        (ids[0], "pending", 0)
    }
    assert all(d.next_attempt_at == T0 for d in deliveries)
    assert pair is not None and (pair.status, pair.score) == ("completed", 90.0)


@pytest.mark.parametrize(
    ("old", "new", "types"),
    [
        (("not attempted", None), ("in progress", None), ["progress.started"]),
        (("in progress", None), ("completed", 70.0), ["progress.completed"]),
        (("not attempted", None), ("completed", None), ["progress.completed"]),
        (("completed", 70.0), ("completed", 95.0), ["progress.score_changed"]),
        (("completed", 70.0), ("completed", 70.0), []),
        (("completed", 70.0), ("in progress", None), []),
        ((None, None), ("completed", 70.0), []),
    ],
)
def test_record_transition_writes_one_event_per_transition_type(store, old, new, types):
    add_subscription(store, ["*"])

    ids = complete(
        store,
        "2",
        "1",
        old_status=old[0],
        old_score=old[1],
        new_status=new[0],
        new_score=new[1],
    )

    with store.session(write=False) as session:
        events = list(session.scalars(select(OutboundEventModel)))
        deliveries = list(session.scalars(select(DeliveryModel)))
    assert [e.type for e in events] == types
    assert [e.id for e in events] == ids
    assert len(deliveries) == len(types)


def test_watch_scopes_are_added_listed_and_removed(store):
    with store.session() as session:
        group = pq.add_watch(session, "group", "3", now=T0)
        again = pq.add_watch(session, "group", " 3 ", now=T0)
        user = pq.add_watch(session, "user", "1", now=T0 + timedelta(seconds=1))

    with store.session() as session:
        listed = pq.list_watches(session)
        removed = pq.remove_watch(session, group.id)
        missing = pq.remove_watch(session, group.id)
        left = pq.list_watches(session)

    assert again.id == group.id
    assert [(w.kind, w.value) for w in listed] == [("group", "3"), ("user", "1")]
    assert (removed, missing) == (True, False)
    assert [w.id for w in left] == [user.id]


def test_add_watch_refuses_an_unknown_kind(store):
    with store.session() as session, pytest.raises(ValueError, match="kind"):
        pq.add_watch(session, "department", "3")


def test_failed_inbound_event_is_announced_to_its_subscribers(store):
    wanted = add_subscription(store, ["bridge.event_failed"])
    add_subscription(store, ["progress.completed"])
    row = EventRow(
        id="ev-9",
        request_id="rq-1",
        source="lms-one",
        source_event_id="stmt-9",
        content_hash="0" * 64,
        kind="completed",
        score=None,
        learner={"email": "nobody@example.org"},
        activity={"iri": "https://courses.example.org/x"},
        registration=None,
        occurred_at=T0,
        note=None,
        extra={},
        status="pending",
        status_reason=None,
        created_at=T0,
        updated_at=T0,
    )

    with store.session() as session:
        event_id = announce_event_failed(
            session, row, T0, status="unresolved", reason="no user nobody@example.org"
        )

    with store.session(write=False) as session:
        event = session.get(OutboundEventModel, event_id)
        deliveries = list(session.scalars(select(DeliveryModel)))
    assert event is not None
    assert event.payload == {
        "type": "bridge.event_failed",
        "time": T0.isoformat(),
        "inbound_event_id": "ev-9",
        "source": "lms-one",
        "status": "unresolved",
        "reason": "no user nobody@example.org",
    }
    assert [d.subscription_id for d in deliveries] == [wanted]


def test_notices_about_no_learning_reach_learning_filtered_subscribers(store):
    """A learning filter narrows progress events, not the bridge's own notices."""
    filtered = add_subscription(
        store, ["bridge.subscription_disabled"], learning_ids=["9"]
    )
    other_type = add_subscription(store, ["progress.completed"], learning_ids=["9"])
    payload = {"type": "bridge.subscription_disabled", "reason": "test"}

    with store.session() as session:
        event_id = pq.insert_outbound_event(
            session,
            event_type="bridge.subscription_disabled",
            payload=payload,
            user_id=None,
            learning_id=None,
            inbound_event_id=None,
            now=T0,
        )
    with store.session(write=False) as session:
        deliveries = list(session.scalars(select(DeliveryModel)))

    assert [(d.outbound_event_id, d.subscription_id) for d in deliveries] == [
        (event_id, filtered)
    ]
    assert other_type not in {d.subscription_id for d in deliveries}
