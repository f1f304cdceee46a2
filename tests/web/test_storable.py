"""Values no database column can hold are a 400 at intake, never a 202.

PostgreSQL refuses NUL characters in text and values longer than their
column; an event accepted with either would break every later query that
touches it. The checks run on every backend, so SQLite serves here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.app import create_app
from bridge.config import Settings
from bridge.store.db import create_store
from bridge.store.migrate import upgrade
from tests.servers import serve_wsgi
from tests.web.conftest import SOURCES, RunningBridge, write_sources
from tests.web.test_hooks import post, statement, stored_counts

RELAY = {
    "name": "relay",
    "format": "generic",
    "auth": {"type": "none"},
    "options": {
        "learner": {"email": "who"},
        "activity": {"course_id": "course"},
        "kind": "state",
        "id": "id",
        "registration": "reg",
    },
}


@pytest.fixture
def bridge(tmp_path) -> Iterator[RunningBridge]:
    """Yield a running bridge with the test sources and a generic relay."""
    database_url = f"sqlite:///{tmp_path}/bridge.db"
    sources_file = write_sources(tmp_path / "sources.yaml", [*SOURCES, RELAY])
    settings = Settings(database_url=database_url, sources_file=str(sources_file))
    upgrade(database_url)
    store = create_store(database_url)
    with serve_wsgi(create_app(settings, store=store)) as served:
        yield RunningBridge(served.url, store, settings)
    store.dispose()


def relayed(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "who": "learner1@example.com",
        "course": "C-1",
        "state": "completed",
        "id": "evt-1",
    }
    document.update(changes)
    return document


def test_a_nul_in_a_statement_is_400_naming_the_field(bridge):
    body = statement(object={"id": "http://example.com/course\u0000"})

    answer = post(bridge, "open-xapi", body)

    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"path": "events[0].activity.iri", "message": "holds a NUL character (U+0000)"}
    ]
    assert stored_counts(bridge) == (0, 0)


def test_a_nul_in_a_generic_id_is_400(bridge):
    answer = post(bridge, "relay", relayed(id="n\u0000ul"))

    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"path": "events[0].id", "message": "holds a NUL character (U+0000)"}
    ]
    assert stored_counts(bridge) == (0, 0)


@pytest.mark.parametrize(
    ("field", "path"), [("id", "events[0].id"), ("reg", "events[0].registration")]
)
def test_an_id_or_registration_longer_than_its_column_is_400(bridge, field, path):
    answer = post(bridge, "relay", relayed(**{field: "r" * 300}))

    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"] == [
        {"path": path, "message": "is 300 characters; at most 255 are kept"}
    ]
    assert stored_counts(bridge) == (0, 0)


def test_values_at_the_limits_are_stored(bridge):
    answer = post(bridge, "relay", relayed(id="i" * 255, reg="r" * 255))

    assert answer.status_code == 202, answer.text
    assert stored_counts(bridge) == (1, 1)
