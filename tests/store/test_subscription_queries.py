"""Subscription queries on SQLite and PostgreSQL: add, filter, rotate, remove."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bridge.signing import new_secret
from bridge.store import Store
from bridge.store.outbound_models import (
    DeliveryAttemptModel,
    DeliveryModel,
    OutboundEventModel,
    SubscriptionModel,
)
from bridge.store.subscription_queries import (
    add_subscription,
    disable_subscription,
    get_subscription,
    list_subscriptions,
    matching_subscriptions,
    remove_subscription,
    rotate_secret,
    signing_secrets,
    update_subscription,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
URL = "https://hooks.example.org/progress"


def add(store: Store, **fields) -> str:
    fields.setdefault("url", URL)
    fields.setdefault("event_types", ["progress.completed"])
    with store.session() as session:
        return add_subscription(session, now=NOW, **fields).id


def get(store: Store, subscription_id: str):
    with store.session(write=False) as session:
        return get_subscription(session, subscription_id)


def list_subscriptions_of(store: Store, enabled: bool | None = None) -> list[str]:
    with store.session(write=False) as session:
        return [row.id for row in list_subscriptions(session, enabled=enabled)]


def matching(store: Store, event_type: str, learning_id: str | None = None) -> set:
    with store.session(write=False) as session:
        rows = matching_subscriptions(session, event_type, learning_id)
    return {row.id for row in rows}


def add_delivery(store: Store, subscription_id: str) -> None:
    """Store one outbound event delivered to the subscription, with an attempt."""
    with store.session() as session:
        session.add(
            OutboundEventModel(
                id="evt-1", type="progress.completed", payload={}, created_at=NOW
            )
        )
        session.flush()
        session.add(
            DeliveryModel(
                id="dlv-1",
                outbound_event_id="evt-1",
                subscription_id=subscription_id,
                status="delivered",
                attempts=1,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        session.flush()
        session.add(
            DeliveryAttemptModel(
                id="att-1", delivery_id="dlv-1", attempted_at=NOW, status_code=200
            )
        )


def count(store: Store, model) -> int:
    with store.session(write=False) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_add_stores_every_field_and_generates_a_secret(store):
    subscription_id = add(
        store,
        url=f"  {URL} ",
        event_types=["progress.completed", "progress.started", "progress.completed"],
        description=" HR dashboard ",
        learning_ids=["101", 102],
        user_group_id="g-7",
    )

    row = get(store, subscription_id)
    assert row.url == URL
    assert row.event_types == ["progress.completed", "progress.started"]
    assert row.description == "HR dashboard"
    assert row.learning_ids == ["101", "102"]
    assert row.user_group_id == "g-7"
    assert row.secret.startswith("whsec_")
    assert row.enabled is True
    assert row.disabled_reason is None
    assert row.created_at == row.updated_at == NOW


def test_secrets_stay_out_of_repr_and_are_masked_in_dicts(store):
    secret = new_secret()
    row = get(store, add(store, secret=secret))

    assert row.secret == secret
    assert secret not in repr(row)
    assert row.to_dict()["secret"] == "whsec_****"
    assert row.to_dict(show_secret=True)["secret"] == secret


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"event_types": ["progress.finished"]}, "unknown event type"),
        ({"event_types": []}, "at least one event type"),
        ({"url": "ftp://hooks.example.org/"}, "http"),
        ({"url": "https:///no-host"}, "with a host"),
        ({"learning_ids": []}, "at least one learning id"),
        ({"learning_ids": [" "]}, "must not be empty"),
        ({"user_group_id": ""}, "must not be empty"),
        ({"secret": "whsec_dG9vIHNob3J0"}, "24 to 64 bytes"),
        ({"secret": "sk_live_abc"}, "whsec_"),
    ],
)
def test_add_refuses_malformed_fields(store, fields, problem):
    with pytest.raises(ValueError, match=problem), store.session() as session:
        add_subscription(
            session, **{"url": URL, "event_types": ["*"], **fields}, now=NOW
        )

    assert list_subscriptions_of(store) == []


def test_list_filters_on_enabled_and_keeps_creation_order(store):
    first = add(store)
    second = add(store, enabled=False)

    # Both were added at NOW; the id breaks the tie.
    assert list_subscriptions_of(store) == sorted([first, second])
    assert list_subscriptions_of(store, enabled=True) == [first]
    assert list_subscriptions_of(store, enabled=False) == [second]
    assert get(store, second).disabled_reason == "disabled by an operator"
    assert get(store, "no-such-id") is None


def test_update_changes_given_fields_and_clears_optional_ones(store):
    subscription_id = add(store, learning_ids=["101"], user_group_id="g-7")
    later = NOW + timedelta(hours=1)

    with store.session() as session:
        update_subscription(
            session,
            subscription_id,
            url="http://hooks.example.org/v2",
            event_types=["*"],
            learning_ids=None,
            user_group_id=None,
            description="moved",
            now=later,
        )

    row = get(store, subscription_id)
    assert (row.url, row.event_types, row.description) == (
        "http://hooks.example.org/v2",
        ["*"],
        "moved",
    )
    assert row.learning_ids is None
    assert row.user_group_id is None
    assert row.updated_at == later


def test_update_refuses_unknown_fields_bad_values_and_missing_rows(store):
    subscription_id = add(store)

    with pytest.raises(ValueError, match="cannot update secret"):
        with store.session() as session:
            update_subscription(session, subscription_id, secret=new_secret())
    with pytest.raises(ValueError, match="unknown event type"):
        with store.session() as session:
            update_subscription(session, subscription_id, event_types=["nope"])
    with pytest.raises(LookupError, match="no subscription"):
        with store.session() as session:
            update_subscription(session, "missing", enabled=True)

    assert get(store, subscription_id).event_types == ["progress.completed"]


def test_re_enabling_forgets_the_reason_and_the_failure_clock(store):
    subscription_id = add(store)
    with store.session() as session:
        disable_subscription(session, subscription_id, "410 Gone", NOW)
        model = session.get(SubscriptionModel, subscription_id)
        model.failing_since = NOW - timedelta(days=5)

    with store.session() as session:
        update_subscription(session, subscription_id, enabled=True)

    row = get(store, subscription_id)
    assert row.enabled is True
    assert row.disabled_reason is None
    assert row.failing_since is None


def test_disable_keeps_the_first_reason_when_already_disabled(store, caplog):
    subscription_id = add(store)
    caplog.set_level("INFO", logger="bridge.store.subscription_queries")

    with store.session() as session:
        disable_subscription(session, subscription_id, "failing for 5 days", NOW)
        again = disable_subscription(session, subscription_id, "410 Gone", NOW)

    assert again.enabled is False
    assert again.disabled_reason == "failing for 5 days"
    disabled = [r for r in caplog.records if "disabled" in r.getMessage()]
    assert [r.getMessage() for r in disabled] == [
        f"subscription {subscription_id} disabled: failing for 5 days"
    ]


def test_rotation_signs_with_both_secrets_until_the_grace_ends(store, caplog):
    old = new_secret()
    subscription_id = add(store, secret=old)
    caplog.set_level("INFO", logger="bridge.store.subscription_queries")

    with store.session() as session:
        rotate_secret(session, subscription_id, grace_seconds=3600, now=NOW)

    row = get(store, subscription_id)
    assert row.secret != old
    assert row.previous_secret == old
    assert row.previous_secret_expires_at == NOW + timedelta(hours=1)
    assert signing_secrets(row, NOW) == [row.secret, old]
    assert signing_secrets(row, NOW + timedelta(minutes=59)) == [row.secret, old]
    assert signing_secrets(row, NOW + timedelta(hours=1)) == [row.secret]
    assert old not in caplog.text
    assert row.secret not in caplog.text


def test_rotation_takes_a_given_secret_and_zero_grace_drops_the_old_one(store):
    subscription_id = add(store)
    chosen = new_secret()

    with store.session() as session:
        row = rotate_secret(
            session, subscription_id, grace_seconds=0, now=NOW, new_secret=chosen
        )

    assert row.secret == chosen
    assert row.previous_secret is None
    assert signing_secrets(row, NOW) == [chosen]


def test_rotation_refuses_bad_input_and_leaves_the_secret(store):
    secret = new_secret()
    subscription_id = add(store, secret=secret)

    with pytest.raises(ValueError, match="whsec_"), store.session() as session:
        rotate_secret(session, subscription_id, grace_seconds=10, new_secret="x")
    with pytest.raises(ValueError, match="negative"), store.session() as session:
        rotate_secret(session, subscription_id, grace_seconds=-1)
    with pytest.raises(LookupError), store.session() as session:
        rotate_secret(session, "missing", grace_seconds=10)

    assert get(store, subscription_id).secret == secret


def test_matching_applies_types_wildcard_learning_filter_and_enabled(store):
    completed = add(store, event_types=["progress.completed"])
    everything = add(store, event_types=["*"])
    course_101 = add(store, event_types=["*"], learning_ids=["101"])
    started = add(store, event_types=["progress.started"])
    add(store, event_types=["*"], enabled=False)

    assert matching(store, "progress.completed", "101") == {
        completed,
        everything,
        course_101,
    }
    assert matching(store, "progress.completed", "202") == {completed, everything}
    assert matching(store, "progress.started", "202") == {everything, started}
    # A notice about no learning reaches every subscriber of its type.
    assert matching(store, "bridge.subscription_disabled") == {
        everything,
        course_101,
    }


def test_matching_refuses_an_unknown_event_type(store):
    with pytest.raises(ValueError, match="unknown event type"):
        matching(store, "progress.finished")


def test_remove_deletes_a_subscription_without_deliveries(store):
    subscription_id = add(store)

    with store.session() as session:
        assert remove_subscription(session, subscription_id) is True
    with store.session() as session:
        assert remove_subscription(session, subscription_id) is False

    assert get(store, subscription_id) is None


def test_remove_keeps_history_unless_purged(store):
    subscription_id = add(store)
    add_delivery(store, subscription_id)

    with pytest.raises(ValueError, match="has 1 deliveries"):
        with store.session() as session:
            remove_subscription(session, subscription_id)
    assert get(store, subscription_id) is not None
    assert count(store, DeliveryModel) == 1

    with store.session() as session:
        assert remove_subscription(session, subscription_id, purge=True) is True

    assert get(store, subscription_id) is None
    assert count(store, DeliveryModel) == 0
    assert count(store, DeliveryAttemptModel) == 0
    assert count(store, OutboundEventModel) == 1
