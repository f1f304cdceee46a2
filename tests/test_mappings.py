"""The mappings file: loading, every mistake reported, syncing into the store."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from bridge.errors import ConfigError
from bridge.events import ActivityRef
from bridge.mappings import FileMapping, load_mappings_file, sync_file_mappings
from bridge.store import create_store, migrate
from bridge.store.mapping_queries import list_mappings
from bridge.store.models import EventModel, EventStatus
from bridge.store.queries import get_event, record_intake
from tests.store.conftest import accept, build_event, build_request

IRI = "https://courses.example.org/Fire-Safety"


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'bridge.db'}"
    migrate.upgrade(url)
    store = create_store(url)
    yield store
    store.dispose()


def test_yaml_file_gives_mappings_with_text_ids_and_star_by_default(tmp_path):
    path = write(
        tmp_path,
        "mappings.yaml",
        f"""
        mappings:
          - activity: {IRI}
            learning_id: 1
          - activity: COURSE-7
            learning_id: "42"
            source: lms-one
        """,
    )

    assert load_mappings_file(path) == [
        FileMapping(activity_key=IRI, learning_id="1", source="*"),
        FileMapping(activity_key="COURSE-7", learning_id="42", source="lms-one"),
    ]


def test_toml_file_gives_the_same_mappings(tmp_path):
    path = write(
        tmp_path,
        "mappings.toml",
        f"""
        [[mappings]]
        activity = "{IRI}"
        learning_id = 1

        [[mappings]]
        activity = "COURSE-7"
        learning_id = "42"
        source = "lms-one"
        """,
    )

    assert [
        (m.activity_key, m.learning_id, m.source) for m in load_mappings_file(path)
    ] == [
        (IRI, "1", "*"),
        ("COURSE-7", "42", "lms-one"),
    ]


def test_every_mistake_is_reported_with_file_and_place(tmp_path):
    path = write(
        tmp_path,
        "mappings.yaml",
        f"""
        mapping: oops
        mappings:
          - activity: {IRI}
            learning_id: 1
            sourse: lms-one
          - learning_id: 2
          - activity: ""
            learning_id: a/b
          - activity: course-8
            learning_id: true
            source: Not A Name
          - activity: {IRI.upper()}
            learning_id: 3
          - just text
        """,
    )

    with pytest.raises(ConfigError) as caught:
        load_mappings_file(path)

    label = str(path)
    assert caught.value.problems == [
        f"{label}: mapping: is not a known key; expected `mappings`",
        f"{label}: mappings[0].sourse: is not a key of a mapping; "
        "expected activity, learning_id, source",
        f"{label}: mappings[1].activity: is required (an IRI, course id or content id)",
        f"{label}: mappings[2].activity: must be non-empty text",
        f"{label}: mappings[2].learning_id: 'a/b' is not a valid learning id",
        f"{label}: mappings[3].learning_id: must be a number or text; got True",
        f"{label}: mappings[3].source: must be a source name or `*`; got 'Not A Name'",
        f"{label}: mappings[5]: must be a mapping with activity and learning_id",
        f"{label}: mappings[4].activity: {IRI.upper()!r} is already mapped by "
        "mappings[0] for source '*'",
    ]


def test_a_yaml_syntax_error_names_its_line(tmp_path):
    path = write(tmp_path, "mappings.yml", "mappings:\n  - activity: [x\n")

    with pytest.raises(ConfigError) as caught:
        load_mappings_file(path)

    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: line 3: not valid YAML")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("m.yaml", "", "the file is empty; expected a `mappings` list"),
        ("m.yaml", "- a\n", "the file must hold a mapping with a `mappings` list"),
        (
            "m.toml",
            'mappings = "x"\n',
            "mappings: is required and must be a list of mappings",
        ),
        ("m.json", "{}", "the file must end in .yaml, .yml or .toml; got '.json'"),
    ],
)
def test_a_file_of_the_wrong_shape_is_one_problem(tmp_path, name, text, expected):
    path = write(tmp_path, name, text)

    with pytest.raises(ConfigError) as caught:
        load_mappings_file(path)

    assert caught.value.problems == [f"{path}: {expected}"]


def test_sync_upserts_the_file_and_counts_only_changes(tmp_path, store):
    text = f"""
        mappings:
          - activity: {IRI}
            learning_id: 1
          - activity: COURSE-7
            learning_id: 7
            source: lms-one
        """
    path = write(tmp_path, "mappings.yaml", text)

    assert sync_file_mappings(store, path) == 2
    assert sync_file_mappings(store, path) == 0
    write(tmp_path, "mappings.yaml", text.replace("learning_id: 7", "learning_id: 8"))
    assert sync_file_mappings(store, path) == 1

    with store.session(write=False) as session:
        rows = list_mappings(session)
    assert [(r.source, r.activity_key, r.learning_id) for r in rows] == [
        ("*", IRI.lower(), "1"),
        ("lms-one", "course-7", "8"),
    ]


def test_sync_requeues_unresolved_events_a_new_mapping_covers(tmp_path, store):
    event = dataclasses.replace(
        build_event("s-1", source="lms-one"), activity=ActivityRef(iri=IRI)
    )
    with store.session() as session:
        outcome = record_intake(
            session,
            source="lms-one",
            request=build_request(),
            events=[event],
            dedupe_key="d-1",
            respond=accept,
        )
        model = session.get(EventModel, outcome.event_ids[0])
        model.status = EventStatus.UNRESOLVED
        model.status_reason = "activity: no mapping"
    path = write(
        tmp_path,
        "mappings.yaml",
        f"mappings:\n  - activity: {IRI}\n    learning_id: 1\n",
    )

    assert sync_file_mappings(store, path) == 1

    with store.session(write=False) as session:
        row = get_event(session, outcome.event_ids[0])
    assert (row.status, row.status_reason) == ("pending", None)


def test_sync_of_a_wrong_file_writes_nothing(tmp_path, store):
    path = write(tmp_path, "mappings.yaml", "mappings:\n  - learning_id: 1\n")

    with pytest.raises(ConfigError):
        sync_file_mappings(store, path)

    with store.session(write=False) as session:
        assert list_mappings(session) == []
