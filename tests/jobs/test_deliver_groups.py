"""Subscriptions filtered by an Open ELMS user group, against a real sandbox.

Membership is read from the sandbox's seeded groups: group 4 ("Pilot
Cohort") holds user 1 but not user 2.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.elms import OpenElmsClient
from bridge.jobs.deliver import Deliverer
from bridge.jobs.groups import GroupMembership
from bridge.store import subscription_queries as sq
from bridge.store.db import Store, create_store
from bridge.store.migrate import upgrade
from bridge.store.outbound_models import DeliveryModel, OutboundEventModel
from tests.jobs.test_deliver import CONFIG, delivery, run_until, status_is
from tests.receiver import Receiver, Running, payload_of, serve_receiver
from tests.sandbox_fixtures import SandboxClient

PILOT_COHORT = "4"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Yield a store on a migrated SQLite file."""
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    upgrade(url)
    made = create_store(url)
    yield made
    made.dispose()


@pytest.fixture
def receiver() -> Iterator[Running]:
    """Yield a running receiver."""
    with serve_receiver(Receiver()) as running:
        yield running


@pytest.fixture
def membership(sandbox: Any) -> Iterator[GroupMembership]:
    """Yield a membership reader on the sandbox, its client without retries."""
    client = OpenElmsClient(sandbox.base_url, sandbox.token, retries=0)
    yield GroupMembership(client)
    client.close()


@pytest.fixture
def sandbox_admin(sandbox: Any) -> Iterator[SandboxClient]:
    """Yield a client of the sandbox's fault switches."""
    client = SandboxClient(sandbox)
    yield client
    client.close()


@pytest.fixture
def deliverer(store: Store, membership: GroupMembership) -> Iterator[Deliverer]:
    """Yield a deliverer that applies group filters."""
    made = Deliverer(store, worker="w-groups", config=CONFIG, membership=membership)
    yield made
    made.close()


def subscribe_group(store: Store, url: str, secret: str) -> str:
    """Subscribe to every event, for the Pilot Cohort group only."""
    with store.session() as session:
        row = sq.add_subscription(
            session,
            url=url,
            event_types=["*"],
            secret=secret,
            user_group_id=PILOT_COHORT,
        )
    return row.id


def announce(store: Store, subscription_id: str, user: dict[str, Any] | None) -> str:
    """Insert an outbound event about ``user`` (None: a notice); return its delivery."""
    now = datetime.now(UTC)
    event_id = f"msg_{uuid.uuid4().hex}"
    payload: dict[str, Any] = {"type": "progress.completed", "time": now.isoformat()}
    if user is not None:
        payload["user"] = user
    delivery_id = str(uuid.uuid4())
    with store.session() as session:
        session.add(
            OutboundEventModel(
                id=event_id, type="progress.completed", payload=payload, created_at=now
            )
        )
        session.flush()
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
    return delivery_id


def test_group_filter_sends_members_events_and_settles_the_others(
    store, deliverer, receiver
):
    subscription_id = subscribe_group(store, receiver.url, receiver.receiver.secret)
    member = announce(store, subscription_id, {"id": "1"})
    outsider = announce(store, subscription_id, {"id": "2"})
    notice = announce(store, subscription_id, None)

    run_until(
        deliverer,
        lambda: all(
            delivery(store, each).status != "pending"
            for each in (member, outsider, notice)
        ),
    )

    assert delivery(store, member).status == "delivered"
    assert delivery(store, notice).status == "delivered"
    filtered = delivery(store, outsider)
    assert (filtered.status, filtered.attempts) == ("filtered", 0)
    assert filtered.last_error == "user 2 is not in group 4"
    assert filtered.attempt_log == ()
    users = [payload_of(hit).get("user") for hit in receiver.receiver.hits]
    assert sorted(users, key=str) == sorted([{"id": "1"}, None], key=str)


def test_group_membership_unknown_postpones_without_an_attempt(
    store, deliverer, receiver, sandbox_admin: SandboxClient
):
    subscription_id = subscribe_group(store, receiver.url, receiver.receiver.secret)
    sandbox_admin.set_faults(outage=True)
    pending = announce(store, subscription_id, {"id": "1"})

    deliverer.run_once()

    row = delivery(store, pending)
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.last_error is not None
    assert row.last_error.startswith("group 4 membership unknown:")
    assert row.next_attempt_at is not None
    assert receiver.receiver.hits == []

    sandbox_admin.set_faults(outage=False)
    with store.session() as session:  # due again now, not in a minute
        session.get(DeliveryModel, pending).next_attempt_at = datetime.now(UTC)
    run_until(deliverer, status_is(store, pending, "delivered"))
    assert [payload_of(hit)["user"] for hit in receiver.receiver.hits] == [{"id": "1"}]


def test_membership_answers_are_cached(sandbox_admin, membership):
    assert membership.contains(PILOT_COHORT, "1") is True
    assert membership.contains(PILOT_COHORT, "2") is False
    sandbox_admin.set_faults(outage=True)

    assert membership.contains(PILOT_COHORT, "1") is True  # from the cache
