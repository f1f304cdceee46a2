"""Subscriptions over the admin API: CRUD, secrets shown once, rotate, enable."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.signing import check_secret
from bridge.store.subscription_queries import get_subscription, signing_secrets
from tests.api.conftest import announce, subscribe

MASK = "whsec_****"


def stored(bridge, subscription_id):
    with bridge.store.session(write=False) as session:
        return get_subscription(session, subscription_id)


def test_create_shows_the_secret_once_and_stores_the_fields(bridge):
    created = subscribe(
        bridge,
        event_types=["progress.completed", "progress.started"],
        learning_ids=["7", "9"],
        user_group_id="12",
        description="  LMS mirror ",
    )

    check_secret(created["secret"])
    row = stored(bridge, created["id"])
    assert row.secret == created["secret"]
    assert row.event_types == ["progress.completed", "progress.started"]
    assert row.learning_ids == ["7", "9"]
    assert row.user_group_id == "12"
    assert row.description == "LMS mirror"

    shown = bridge.api.get(bridge.at(f"/subscriptions/{created['id']}"), timeout=10)
    assert shown.status_code == 200
    assert shown.json()["secret"] == MASK
    listed = bridge.api.get(bridge.at("/subscriptions"), timeout=10).json()
    assert [item["id"] for item in listed] == [created["id"]]
    assert created["secret"] not in shown.text + str(listed)


def test_create_defaults_to_every_type_enabled(bridge):
    created = subscribe(bridge)
    assert created["event_types"] == ["*"]
    assert created["enabled"] is True
    assert created["learning_ids"] is None


def test_refused_urls_and_types_answer_422_naming_the_field(bridge):
    cases = [
        ({"url": "http://10.1.1.1/hook"}, "url", "unsafe URL: 10.1.1.1 is private"),
        ({"url": "ftp://127.0.0.1/x"}, "url", "unsafe URL: scheme must be http"),
        (
            {"url": "http://127.0.0.1:9/", "event_types": ["progress.finished"]},
            "event_types",
            "unknown event type 'progress.finished'",
        ),
        ({"url": "http://127.0.0.1:9/", "secret": "whsec_short"}, "secret", "secret"),
        ({"event_types": ["*"]}, "url", "Missing data for required field."),
        ({"url": "http://127.0.0.1:9/", "colour": "red"}, "colour", "Unknown field."),
    ]
    for body, field, text in cases:
        answer = bridge.api.post(bridge.at("/subscriptions"), json=body, timeout=10)
        assert answer.status_code == 422, body
        error = answer.json()
        assert error["error"] == "invalid_input"
        assert set(error["errors"]) == {field}
        assert text in error["errors"][field][0]
        assert text in error["message"]

    assert bridge.api.get(bridge.at("/subscriptions"), timeout=10).json() == []


def test_a_body_that_is_not_json_answers_400_in_the_same_shape(bridge):
    answer = bridge.api.post(
        bridge.at("/subscriptions"),
        data="{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"
    assert answer.json()["errors"] == {"input": ["Invalid JSON body."]}


def test_patch_changes_only_the_fields_given_and_null_clears(bridge):
    created = subscribe(bridge, learning_ids=["7"], description="first")
    url = bridge.at(f"/subscriptions/{created['id']}")

    changed = bridge.api.patch(
        url, json={"learning_ids": None, "description": "second"}, timeout=10
    )

    assert changed.status_code == 200
    assert changed.json()["learning_ids"] is None
    assert changed.json()["description"] == "second"
    assert stored(bridge, created["id"]).url == created["url"]
    empty = bridge.api.patch(url, json={}, timeout=10)
    assert empty.status_code == 422
    assert empty.json()["errors"] == {"input": ["name at least one field to change"]}


def test_disable_then_enable_forgets_the_reason(bridge):
    created = subscribe(bridge)
    base = bridge.at(f"/subscriptions/{created['id']}")

    disabled = bridge.api.post(f"{base}/disable", timeout=10).json()
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"] == "disabled by an operator"
    enabled = bridge.api.post(f"{base}/enable", timeout=10).json()
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] is None
    assert stored(bridge, created["id"]).enabled is True


def test_rotate_shows_the_new_secret_once_and_keeps_the_old_one_signing(bridge):
    created = subscribe(bridge)
    url = bridge.at(f"/subscriptions/{created['id']}/rotate-secret")

    rotated = bridge.api.post(url, json={"grace_seconds": 3600}, timeout=10)

    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != created["secret"]
    assert rotated.json()["previous_secret"] == MASK
    row = stored(bridge, created["id"])
    assert signing_secrets(row, datetime.now(UTC)) == [new, created["secret"]]

    no_body = bridge.api.post(url, timeout=10)
    assert no_body.status_code == 200
    assert no_body.json()["secret"] not in (new, created["secret"])


def test_delete_needs_purge_when_deliveries_exist(bridge):
    created = subscribe(bridge)
    (delivery,) = announce(bridge.store)
    url = bridge.at(f"/subscriptions/{created['id']}")

    kept = bridge.api.delete(url, timeout=10)
    assert kept.status_code == 409
    assert kept.json()["error"] == "conflict"
    assert "has 1 deliveries" in kept.json()["message"]

    purged = bridge.api.delete(url, params={"purge": "true"}, timeout=10)
    assert purged.status_code == 204
    assert stored(bridge, created["id"]) is None
    gone = bridge.api.get(bridge.at(f"/deliveries/{delivery}"), timeout=10)
    assert gone.status_code == 404


def test_unknown_subscription_ids_answer_404(bridge):
    for method, suffix in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/rotate-secret"),
        ("post", "/enable"),
    ]:
        kwargs = {"json": {"description": "x"}} if method == "patch" else {}
        answer = bridge.api.request(
            method, bridge.at(f"/subscriptions/nope{suffix}"), timeout=10, **kwargs
        )
        assert answer.status_code == 404, (method, suffix)
        assert answer.json() == {
            "error": "not_found",
            "message": "no subscription 'nope'",
        }
