"""Sources, mappings and watch scopes over the admin API."""

from __future__ import annotations

import pytest

from bridge.store import mapping_queries, poll_queries, queries

ADDED_PASSWORD = "added-pw-6620"


def test_sources_lists_file_ones_and_adds_shows_and_removes_stored_ones(bridge):
    body = {
        "name": "course-a",
        "format": "cmi5",
        "auth": {"type": "basic", "username": "player", "password": ADDED_PASSWORD},
        "options": {"trust_lms_satisfied": False},
        "max_body_bytes": 4096,
    }

    added = bridge.api.post(bridge.at("/sources"), json=body, timeout=10)
    listed = bridge.api.get(bridge.at("/sources"), timeout=10).json()
    shown = bridge.api.get(bridge.at("/sources/course-a"), timeout=10).json()

    assert added.status_code == 201
    assert added.json()["auth"] == {
        "type": "basic",
        "username": "player",
        "password": "***",
    }
    assert [(s["name"], s["defined_in"]) for s in listed] == [
        ("open-xapi", "file"),
        ("guarded", "file"),
        ("course-a", "database"),
    ]
    assert shown["max_body_bytes"] == 4096
    assert shown["defined_in"] == "database"
    assert ADDED_PASSWORD not in added.text + str(listed) + str(shown)
    with bridge.store.session(write=False) as session:
        assert queries.get_source(session, "course-a").auth["password"] == (
            ADDED_PASSWORD
        )

    removed = bridge.api.delete(bridge.at("/sources/course-a"), timeout=10)
    assert removed.status_code == 204
    again = bridge.api.get(bridge.at("/sources/course-a"), timeout=10)
    assert again.status_code == 404


def test_source_mistakes_are_422_by_field_and_file_sources_are_read_only(bridge):
    wrong = {"name": "bad", "format": "xapi", "auth": {"type": "magic"}}
    answer = bridge.api.post(bridge.at("/sources"), json=wrong, timeout=10)
    assert answer.status_code == 422
    assert list(answer.json()["errors"]) == ["auth.type"]
    assert "must be one of none, hmac" in answer.json()["errors"]["auth.type"][0]

    taken = {"name": "guarded", "format": "xapi", "auth": {"type": "none"}}
    conflict = bridge.api.post(bridge.at("/sources"), json=taken, timeout=10)
    assert conflict.status_code == 409
    removal = bridge.api.delete(bridge.at("/sources/guarded"), timeout=10)
    assert removal.status_code == 409
    assert removal.json()["message"] == (
        "source 'guarded' is defined in the sources file; edit it there"
    )


def test_mappings_add_requeues_unresolved_and_can_be_listed_shown_removed(bridge):
    body = {"activity_key": "HTTP://example.com/courses/Fire", "learning_id": "7"}

    added = bridge.api.post(bridge.at("/mappings"), json=body, timeout=10)
    twice = bridge.api.post(bridge.at("/mappings"), json=body, timeout=10)

    assert added.status_code == 201
    mapping = added.json()["mapping"]
    assert mapping["activity_key"] == "http://example.com/courses/fire"
    assert mapping["source"] == "*"
    assert added.json()["requeued"] == 0
    assert twice.status_code == 409
    listed = bridge.api.get(bridge.at("/mappings"), timeout=10).json()
    assert [item["id"] for item in listed] == [mapping["id"]]
    scoped = bridge.api.get(
        bridge.at("/mappings"), params={"source": "open-xapi"}, timeout=10
    )
    assert scoped.json() == []
    shown = bridge.api.get(bridge.at(f"/mappings/{mapping['id']}"), timeout=10)
    assert shown.json() == mapping

    assert bridge.api.delete(bridge.at(f"/mappings/{mapping['id']}"), timeout=10).ok
    with bridge.store.session(write=False) as session:
        assert mapping_queries.list_mappings(session) == []
    gone = bridge.api.delete(bridge.at(f"/mappings/{mapping['id']}"), timeout=10)
    assert gone.status_code == 404


def test_mapping_source_must_be_a_name_or_star(bridge):
    body = {"activity_key": "k", "learning_id": "7", "source": "Not A Name"}
    answer = bridge.api.post(bridge.at("/mappings"), json=body, timeout=10)
    assert answer.status_code == 422
    assert answer.json()["errors"]["source"] == [
        "must be a source name or `*`; got 'Not A Name'"
    ]


def test_mapping_key_longer_than_its_column_is_422(bridge):
    body = {"activity_key": "http://x/" + "k" * 1100, "learning_id": "7"}

    answer = bridge.api.post(bridge.at("/mappings"), json=body, timeout=10)

    assert answer.status_code == 422
    assert answer.json()["errors"]["activity_key"] == [
        "Length must be between 1 and 1024."
    ]
    fits = {"activity_key": "k" * 1024, "learning_id": "7"}
    assert (
        bridge.api.post(bridge.at("/mappings"), json=fits, timeout=10).status_code
        == 201
    )


def test_watch_scopes_add_list_show_remove(bridge):
    added = bridge.api.post(
        bridge.at("/watch-scopes"), json={"kind": "group", "value": " 12 "}, timeout=10
    )
    again = bridge.api.post(
        bridge.at("/watch-scopes"), json={"kind": "group", "value": "12"}, timeout=10
    )
    wrong = bridge.api.post(
        bridge.at("/watch-scopes"), json={"kind": "planet", "value": "3"}, timeout=10
    )

    assert added.status_code == 201
    scope = added.json()
    assert (scope["kind"], scope["value"]) == ("group", "12")
    assert again.json()["id"] == scope["id"]
    assert wrong.status_code == 422
    assert list(wrong.json()["errors"]) == ["kind"]
    listed = bridge.api.get(bridge.at("/watch-scopes"), timeout=10).json()
    assert listed == [scope]
    shown = bridge.api.get(bridge.at(f"/watch-scopes/{scope['id']}"), timeout=10)
    assert shown.json() == scope

    assert bridge.api.delete(bridge.at(f"/watch-scopes/{scope['id']}"), timeout=10).ok
    with bridge.store.session(write=False) as session:
        assert poll_queries.list_watches(session) == []
    assert bridge.api.get(bridge.at(f"/watch-scopes/{scope['id']}")).status_code == 404


@pytest.mark.parametrize("value", ["2/1", "-1", ".x", "a b", "x" * 65])
def test_a_watch_value_that_is_no_open_elms_id_is_422(bridge, value):
    body = {"kind": "user_learning", "value": value}

    answer = bridge.api.post(bridge.at("/watch-scopes"), json=body, timeout=10)

    assert answer.status_code == 422, answer.text
    [message] = answer.json()["errors"]["value"]
    assert message.startswith("must be an Open ELMS id")
