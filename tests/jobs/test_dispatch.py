"""Dispatch over real HTTP: bridge web app -> store -> dispatcher -> sandbox."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bridge.store import dispatch_queries as dq
from bridge.store import mapping_queries
from tests.jobs.conftest import COURSE, statement


def event_ids(response) -> list[str]:
    return [event["id"] for event in response.json()["events"]]


def test_completion_reaches_open_elms_with_its_score(stack):
    (event_id,) = event_ids(stack.post(statement("completed", scaled=0.85)))

    applied = stack.drain()

    user, course = stack.user_id("learner1@example.com"), stack.learning_id()
    assert applied == 1
    assert [c["path"] for c in stack.calls()] == [
        f"learning/{course}/{user}/complete/85"
    ]
    assert stack.progress()[(course, user)]["status"] == "completed"
    assert stack.progress()[(course, user)]["score"] == 85
    row = stack.event(event_id)
    assert row.status == "dispatched"
    assert row.elms_call == f"PUT learning/{course}/{user}/complete/85"
    assert (row.user_id, row.learning_id) == (user, course)
    assert row.attempts == 1  # the accepted call counts


def test_complete_that_arrives_before_its_start_is_not_lost(stack):
    stack.post(statement("completed", scaled=0.9, minutes=10))
    stack.drain()
    (start_id,) = event_ids(stack.post(statement("launched", minutes=0)))

    stack.drain()

    user, course = stack.user_id("learner1@example.com"), stack.learning_id()
    assert [c["path"].rsplit("/", 2)[-2:] for c in stack.calls()] == [
        ["complete", "90"]
    ]
    assert stack.progress()[(course, user)]["status"] == "completed"
    start = stack.event(start_id)
    assert start.status == "skipped"
    assert start.status_reason == "start after completion; recorded and skipped"


def test_one_batch_with_start_and_complete_is_applied_in_occurrence_order(stack):
    batch = [
        statement("completed", scaled=0.7, minutes=5),
        statement("attempted", minutes=0),
    ]

    stack.post(batch)
    stack.drain()

    actions = [c["path"].split("/")[3] for c in stack.calls()]
    assert actions == ["start", "complete"]


def test_duplicate_completion_is_skipped_under_the_default_policy(stack):
    stack.post(statement("completed", scaled=0.6, minutes=1))
    (second,) = event_ids(stack.post(statement("passed", scaled=0.9, minutes=2)))

    stack.drain()

    assert len(stack.calls()) == 1
    assert stack.event(second).status_reason == "already completed; first score kept"
    assert stack.event(second).attempts == 0  # skipped: no call was made


def test_best_policy_sends_a_higher_score_only(stack):
    for minutes, scaled in ((1, 0.7), (2, 0.9), (3, 0.8)):
        stack.post(statement("completed", scaled=scaled, minutes=minutes), "best")

    stack.drain()

    scores = [c["path"].rsplit("/", 1)[-1] for c in stack.calls()]
    assert scores == ["70", "90"]
    user, course = stack.user_id("learner1@example.com"), stack.learning_id()
    assert stack.progress()[(course, user)]["score"] == 90


def test_failed_then_passed_starts_then_completes(stack):
    failed = statement("failed", minutes=1)
    failed["result"] = {"success": False, "score": {"scaled": 0.4}}
    stack.post(failed)
    stack.post(statement("passed", scaled=0.8, minutes=2))

    stack.drain()

    actions = [c["path"].split("/", 3)[3] for c in stack.calls()]
    assert actions == ["start", "complete/80"]


def test_unknown_learner_is_parked_unresolved_with_the_reason(stack):
    body = statement("completed", email="nobody@example.com", scaled=0.5)
    (event_id,) = event_ids(stack.post(body))

    stack.drain()

    row = stack.event(event_id)
    assert row.status == "unresolved"
    assert "nobody@example.com" in row.status_reason
    assert stack.calls() == []


def test_adding_a_mapping_requeues_the_events_it_resolves(stack):
    iri = "http://example.com/courses/unlisted-101"
    body = statement("completed", course="Not A Known Name", iri=iri, scaled=0.75)
    (event_id,) = event_ids(stack.post(body))
    stack.drain()
    assert stack.event(event_id).status == "unresolved"

    with stack.store.session() as session:
        mapping_queries.add_mapping(session, activity_key=iri, learning_id="3")
        requeued = mapping_queries.requeue_unresolved(session, iri)
    stack.drain()

    assert requeued == 1
    assert stack.event(event_id).status == "dispatched"
    assert stack.calls()[-1]["path"].startswith("learning/3/")


def test_outage_then_recovery_delivers_every_event(stack):
    stack.faults(outage=True)
    ids = [
        event_ids(stack.post(statement("completed", email=email, scaled=0.5)))[0]
        for email in ("learner1@example.com", "xapi-test@example.com")
    ]

    stack.drain()
    waiting = [stack.event(i) for i in ids]
    stack.faults(outage=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stack.drain()
        if all(stack.event(i).status == "dispatched" for i in ids):
            break
        time.sleep(0.1)

    assert all(row.status == "pending" for row in waiting)
    assert all(row.last_error for row in waiting)
    assert [stack.event(i).status for i in ids] == ["dispatched", "dispatched"]
    assert len([c for c in stack.calls() if c["status"] == 200]) == 2
    # Each refused try during the outage, plus the accepted call.
    assert all(stack.event(i).attempts >= 2 for i in ids)


def test_retry_after_from_a_503_sets_the_next_attempt(stack):
    stack.drain()  # warms the resolver's caches, so the next call is the PUT
    body = statement("completed", scaled=0.5)
    stack.post(statement("attempted", email="guest@example.com"))
    stack.drain()
    stack.faults(fail_next=[{"status": 503, "retry_after": 3}])
    (event_id,) = event_ids(
        stack.post(dict(body, actor={"mbox": "mailto:guest@example.com"}))
    )

    before = datetime.now(UTC)
    stack.drain()
    row = stack.event(event_id)

    assert row.status == "pending"
    assert row.attempts == 1
    assert (row.next_attempt_at - before).total_seconds() >= 2.5
    assert "503" in row.last_error


def test_unknown_user_id_is_failed_with_the_404(stack):
    body = statement("completed", scaled=0.5)
    body["actor"] = {"account": {"homePage": "http://lms.example", "name": "99999"}}
    (event_id,) = event_ids(stack.post(body, "by-id"))

    stack.drain()

    row = stack.event(event_id)
    assert row.status == "failed"
    assert "404" in row.status_reason
    assert len(stack.calls()) == 1
    assert row.attempts == 1


def test_auth_failure_pauses_dispatch_until_a_probe_succeeds(stack, caplog):
    stack.post(statement("attempted", email="guest@example.com"))
    stack.drain()
    stack.faults(fail_next=[{"status": 403}])
    (event_id,) = event_ids(
        stack.post(statement("completed", scaled=0.5, email="guest@example.com"))
    )

    stack.drain()
    paused_row = stack.event(event_id)
    assert stack.dispatcher.is_paused()
    assert stack.drain() == 0
    resumed = stack.dispatcher.probe()
    stack.drain()

    assert paused_row.status == "pending"
    assert resumed is True
    assert stack.event(event_id).status == "dispatched"
    assert caplog.text.count("dispatch paused") == 1


def test_retry_command_requeues_failed_events(stack):
    body = statement("completed", scaled=0.5)
    body["actor"] = {"account": {"homePage": "http://lms.example", "name": "99999"}}
    (event_id,) = event_ids(stack.post(body, "by-id"))
    stack.drain()

    with stack.store.session() as session:
        count = dq.requeue_events(session, now=datetime.now(UTC))

    assert count == 1
    assert stack.event(event_id).status == "pending"
    assert stack.event(event_id).attempts == 0


def test_informational_events_are_never_dispatched(stack):
    body = statement("terminated")

    (event_id,) = event_ids(stack.post(body))
    stack.drain()

    assert stack.event(event_id).status == "informational"
    assert stack.calls() == []


def test_new_course_name_lookup_uses_the_learning_list(stack):
    body = statement("completed", course=COURSE.upper(), scaled=0.5)

    stack.post(body)
    stack.drain()

    assert stack.calls()[0]["path"].startswith(f"learning/{stack.learning_id()}/")


def outbound_rows(stack):
    from sqlalchemy import select

    from bridge.store.outbound_models import DeliveryModel, OutboundEventModel

    with stack.store.session(write=False) as session:
        events = [
            (e.type, e.payload.get("cause"), e.inbound_event_id)
            for e in session.scalars(select(OutboundEventModel))
        ]
        deliveries = len(list(session.scalars(select(DeliveryModel))))
    return events, deliveries


def test_inbound_completion_is_announced_once_even_after_a_poll(stack):
    from bridge.jobs.poll import Poller
    from bridge.store import subscription_queries

    with stack.store.session() as session:
        subscription_queries.add_subscription(
            session, url="http://127.0.0.1:9/hook", event_types=["progress.completed"]
        )
    (event_id,) = event_ids(stack.post(statement("completed", scaled=0.85)))

    stack.drain()
    after_dispatch = outbound_rows(stack)
    Poller(stack.store, stack.dispatcher.client, worker="test-poller").run_once()

    assert after_dispatch == ([("progress.completed", "inbound", event_id)], 1)
    assert outbound_rows(stack) == after_dispatch


def test_unresolved_event_is_announced_as_event_failed(stack):
    from bridge.store import subscription_queries

    with stack.store.session() as session:
        subscription_queries.add_subscription(
            session, url="http://127.0.0.1:9/hook", event_types=["*"]
        )
    body = statement("completed", email="nobody@example.com", scaled=0.5)
    (event_id,) = event_ids(stack.post(body))

    stack.drain()

    events, deliveries = outbound_rows(stack)
    assert [(kind, inbound) for kind, _, inbound in events] == [
        ("bridge.event_failed", event_id)
    ]
    assert deliveries == 1
