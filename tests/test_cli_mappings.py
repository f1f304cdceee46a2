"""``python -m bridge mappings`` run as a user runs it, on a real SQLite file."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.events import ActivityRef
from bridge.store import create_store, migrate
from bridge.store.models import EventModel, EventStatus
from bridge.store.queries import get_event, record_intake
from tests.store.conftest import accept, build_event, build_request

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "bridge"]
IRI = "https://courses.example.org/Fire-Safety"


@pytest.fixture
def database(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    migrate.upgrade(url)
    return url


def bridge(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env["BRIDGE_DATABASE_URL"] = database
    return subprocess.run(
        [*COMMAND, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def store_unresolved(database: str, activities: dict[str, ActivityRef]) -> dict:
    """Store one unresolved event per activity; return event ids by name."""
    store = create_store(database)
    events = [
        dataclasses.replace(build_event(name), activity=activity)
        for name, activity in activities.items()
    ]
    with store.session() as session:
        outcome = record_intake(
            session,
            source="lms-one",
            request=build_request(),
            events=events,
            dedupe_key="d-1",
            respond=accept,
        )
        for event_id in outcome.event_ids:
            model = session.get(EventModel, event_id)
            model.status = EventStatus.UNRESOLVED
            model.status_reason = "activity: no mapping"
    store.dispose()
    return dict(zip(activities, outcome.event_ids, strict=True))


def statuses(database: str, ids: dict[str, str]) -> dict[str, str]:
    store = create_store(database)
    with store.session(write=False) as session:
        found = {name: get_event(session, i).status for name, i in ids.items()}
    store.dispose()
    return found


def test_add_list_remove_round_trip_requeues_what_it_resolves(database):
    ids = store_unresolved(
        database,
        {
            "fire": ActivityRef(iri=IRI.lower()),
            "other": ActivityRef(iri="https://courses.example.org/other"),
        },
    )

    added = bridge(database, "mappings", "add", IRI, "1")
    assert added.returncode == 0, added.stderr
    body = json.loads(added.stdout)
    assert body["requeued"] == 1
    assert body["mapping"]["activity_key"] == IRI.lower()
    assert (body["mapping"]["learning_id"], body["mapping"]["source"]) == ("1", "*")
    assert statuses(database, ids) == {"fire": "pending", "other": "unresolved"}

    scoped = bridge(database, "mappings", "add", "COURSE-7", "4", "--source", "lms-one")
    assert scoped.returncode == 0, scoped.stderr
    assert json.loads(scoped.stdout)["requeued"] == 0

    listed = json.loads(bridge(database, "mappings", "list").stdout)
    assert [(m["source"], m["activity_key"], m["learning_id"]) for m in listed] == [
        ("*", IRI.lower(), "1"),
        ("lms-one", "course-7", "4"),
    ]
    only = json.loads(
        bridge(database, "mappings", "list", "--source", "lms-one").stdout
    )
    assert [m["activity_key"] for m in only] == ["course-7"]

    by_id = bridge(database, "mappings", "remove", body["mapping"]["id"])
    assert by_id.returncode == 0, by_id.stderr
    assert json.loads(by_id.stdout) == {"removed": body["mapping"]["id"]}
    by_key = bridge(database, "mappings", "remove", "course-7", "--source", "lms-one")
    assert by_key.returncode == 0, by_key.stderr
    assert json.loads(bridge(database, "mappings", "list").stdout) == []


def test_adding_a_mapping_twice_fails_and_keeps_the_first(database):
    assert bridge(database, "mappings", "add", IRI, "1").returncode == 0

    again = bridge(database, "mappings", "add", IRI.upper(), "2")

    assert again.returncode == 1
    assert again.stderr.splitlines()[-1] == (
        f"error: {IRI.lower()!r} is already mapped for source '*'"
    )
    listed = json.loads(bridge(database, "mappings", "list").stdout)
    assert [m["learning_id"] for m in listed] == ["1"]


def test_removing_an_unknown_mapping_fails(database):
    result = bridge(database, "mappings", "remove", IRI, "--source", "lms-one")

    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[-1]
        == f"error: no mapping {IRI!r} for source 'lms-one'"
    )


def test_a_source_that_is_not_a_name_is_refused(database):
    result = bridge(database, "mappings", "add", IRI, "1", "--source", "Bad Name")

    assert result.returncode == 2
    assert "--source must be a source name or `*`" in result.stderr
    assert json.loads(bridge(database, "mappings", "list").stdout) == []
