"""Mapping queries on SQLite and PostgreSQL: add, find, remove, requeue."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from bridge.events import ActivityRef, ProgressEvent
from bridge.store import Store
from bridge.store.mapping_queries import (
    add_mapping,
    find_learning_id,
    list_mappings,
    put_mapping,
    remove_mapping,
    requeue_unresolved,
)
from bridge.store.models import EventModel, EventStatus
from bridge.store.queries import get_event, record_intake
from tests.store.conftest import accept, build_event, build_request

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
IRI = "https://courses.example.org/Fire-Safety"


def add(store: Store, key: str, learning_id: str, source: str = "*") -> str:
    with store.session() as session:
        row = add_mapping(
            session, activity_key=key, learning_id=learning_id, source=source
        )
    return row.id


def find(store: Store, keys: list[str], source: str) -> str | None:
    with store.session(write=False) as session:
        return find_learning_id(session, keys, source)


def event_on(event_id: str, source: str = "lms-one", **activity: str) -> ProgressEvent:
    """Return a stored-event candidate about the activity with those handles."""
    event = build_event(event_id, source=source)
    return dataclasses.replace(event, activity=ActivityRef(**activity))


def set_status(store: Store, event_id: str, status: str, reason: str | None) -> None:
    """Put an event in a status, as the dispatcher would."""
    with store.session() as session:
        model = session.get(EventModel, event_id)
        assert model is not None
        model.status = status
        model.status_reason = reason
        model.next_attempt_at = None


def test_add_mapping_stores_the_key_lower_cased_and_lists_it(store):
    with store.session() as session:
        row = add_mapping(session, activity_key=f"  {IRI} ", learning_id="1")

    assert row.activity_key == IRI.lower()
    assert row.source == "*"
    assert row.learning_id == "1"
    with store.session(write=False) as session:
        listed = list_mappings(session)
    assert [(m.id, m.activity_key, m.learning_id) for m in listed] == [
        (row.id, IRI.lower(), "1")
    ]


def test_add_mapping_refuses_a_key_already_mapped_in_any_case(store):
    add(store, IRI, "1")

    with store.session() as session, pytest.raises(ValueError, match="already"):
        add_mapping(session, activity_key=IRI.upper(), learning_id="2")

    with store.session(write=False) as session:
        assert [m.learning_id for m in list_mappings(session)] == ["1"]


def test_the_same_key_may_be_mapped_once_per_source(store):
    add(store, IRI, "1")
    add(store, IRI, "2", source="lms-one")

    with store.session(write=False) as session:
        assert [m.learning_id for m in list_mappings(session, "lms-one")] == ["2"]
        assert [m.source for m in list_mappings(session)] == ["*", "lms-one"]


def test_add_mapping_refuses_an_empty_key_or_learning_id(store):
    with store.session() as session:
        with pytest.raises(ValueError, match="activity key"):
            add_mapping(session, activity_key="  ", learning_id="1")
        with pytest.raises(ValueError, match="learning id"):
            add_mapping(session, activity_key=IRI, learning_id=" ")


def test_find_learning_id_compares_keys_case_insensitively(store):
    add(store, IRI, "1")

    assert find(store, [IRI.upper()], "lms-one") == "1"
    assert find(store, ["https://courses.example.org/other"], "lms-one") is None
    assert find(store, [], "lms-one") is None


def test_find_learning_id_prefers_the_source_mapping_over_star(store):
    add(store, IRI, "1")
    add(store, "COURSE-7", "7", source="lms-one")

    # The source's course id mapping wins over the `*` IRI mapping.
    assert find(store, [IRI, "course-7"], "lms-one") == "7"
    assert find(store, [IRI, "course-7"], "lms-two") == "1"


def test_find_learning_id_tries_keys_in_the_order_given(store):
    add(store, IRI, "1")
    add(store, "course-7", "7")

    assert find(store, [IRI, "course-7"], "lms-one") == "1"
    assert find(store, ["course-7", IRI], "lms-one") == "7"


def test_remove_mapping_by_id_or_by_key_and_source(store):
    star_id = add(store, IRI, "1")
    add(store, IRI, "2", source="lms-one")

    with store.session() as session:
        assert remove_mapping(session, IRI.upper(), "lms-one") is True
        assert remove_mapping(session, IRI, "lms-two") is False
        assert remove_mapping(session, star_id) is True
        assert remove_mapping(session, star_id) is False
        assert list_mappings(session) == []


def test_put_mapping_inserts_changes_or_leaves_alone(store):
    with store.session() as session:
        assert put_mapping(session, activity_key=IRI, learning_id="1") is True
        assert put_mapping(session, activity_key=IRI.upper(), learning_id="1") is False
        assert put_mapping(session, activity_key=IRI, learning_id="3") is True

    assert find(store, [IRI], "lms-one") == "3"


def test_requeue_unresolved_moves_only_matching_unresolved_events(store, intake):
    events = [
        event_on("by-iri", iri=IRI),
        event_on("by-course", course_id="FIRE-SAFETY"),
        event_on("other-key", iri="https://x.example/9"),
        event_on("pending", iri=IRI),
        event_on("failed", iri=IRI),
    ]
    stored = intake(events, "d-1").event_ids
    ids = dict(zip([e.event_id for e in events], stored, strict=True))
    for name in ("by-iri", "by-course", "other-key"):
        set_status(store, ids[name], EventStatus.UNRESOLVED, "activity: no mapping")
    set_status(store, ids["failed"], EventStatus.FAILED, "400 from Open ELMS")

    with store.session() as session:
        assert requeue_unresolved(session, IRI.upper(), now=NOW) == 1
        assert requeue_unresolved(session, "fire-safety", now=NOW) == 1

    with store.session(write=False) as session:
        rows = {name: get_event(session, ids[name]) for name in ids}
        models = {name: session.get(EventModel, ids[name]) for name in ids}
    assert {name: row.status for name, row in rows.items()} == {
        "by-iri": "pending",
        "by-course": "pending",
        "other-key": "unresolved",
        "pending": "pending",
        "failed": "failed",
    }
    assert rows["by-iri"].status_reason is None
    assert rows["other-key"].status_reason == "activity: no mapping"
    assert models["by-iri"].next_attempt_at == NOW
    assert models["by-course"].next_attempt_at == NOW
    assert models["other-key"].next_attempt_at is None


def test_requeue_unresolved_for_a_source_leaves_other_sources(store):
    ids = {}
    for source in ("lms-one", "lms-two"):
        event = event_on(f"e-{source}", source=source, iri=IRI)
        with store.session() as session:
            outcome = record_intake(
                session,
                source=source,
                request=build_request(),
                events=[event],
                dedupe_key=f"d-{source}",
                respond=accept,
            )
        ids[source] = outcome.event_ids[0]
        set_status(store, ids[source], EventStatus.UNRESOLVED, "no mapping")

    with store.session() as session:
        assert requeue_unresolved(session, IRI, "lms-two", now=NOW) == 1
        assert requeue_unresolved(session, IRI, "lms-two", now=NOW) == 0
        statuses = {s: get_event(session, i).status for s, i in ids.items()}

    assert statuses == {"lms-one": "unresolved", "lms-two": "pending"}
