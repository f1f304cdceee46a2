"""Stores on a real SQLite file and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bridge.events import ActivityRef, Kind, LearnerRef, ProgressEvent
from bridge.store import Store, create_store, migrate
from bridge.store.models import Base, IntakeOutcome, IntakeRequest
from bridge.store.queries import Responder, record_intake
from tests.pg import create_pg_database, drop_pg_database

SOURCE = "lms-one"

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """Yield the URL of a fresh PostgreSQL database for this test module."""
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty, never migrated database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'bridge.db'}"
        return

    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Yield a migrated, empty store on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'var' / 'bridge.db'}"
    else:
        url = request.getfixturevalue("pg_url")

    migrate.upgrade(url)
    store = create_store(url)
    yield store

    if store.dialect == "postgresql":
        with store.session() as session:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            session.execute(text(f"TRUNCATE {tables} CASCADE"))
    store.dispose()


def build_event(
    event_id: str = "stmt-1",
    *,
    kind: Kind = Kind.COMPLETED,
    verb: str | None = None,
    source: str = SOURCE,
    score: float | None = 85.0,
    occurred_at: datetime | None = None,
    raw: Any = None,
    **fields: Any,
) -> ProgressEvent:
    """Return a progress event whose raw payload is a small xAPI statement.

    The statement is built from the id and ``verb`` (the kind by default),
    so two events made with the same arguments have the same content.
    """
    verb = verb or kind.value
    statement = {
        "id": event_id,
        "actor": {"mbox": "mailto:learner@example.org"},
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}"},
        "object": {"id": "https://courses.example.org/course-7"},
    }
    return ProgressEvent(
        source=source,
        event_id=event_id,
        learner=LearnerRef(email="learner@example.org"),
        activity=ActivityRef(iri="https://courses.example.org/course-7"),
        kind=kind,
        occurred_at=occurred_at or datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        raw=statement if raw is None else raw,
        score=score,
        **fields,
    )


def build_request(body: bytes = b'{"statements": []}') -> IntakeRequest:
    """Return an inbound request as the web layer would hand it over."""
    return IntakeRequest(
        method="POST",
        path=f"/hooks/{SOURCE}",
        content_type="application/json",
        headers={"Content-Type": "application/json", "X-Request-Id": "r-1"},
        body=body,
    )


def accept(request_id: str, event_ids: list[str]) -> tuple[int, dict[str, Any]]:
    """Answer 202 naming the request and its events, as the hook handler does."""
    return 202, {"request_id": request_id, "event_ids": event_ids}


Intake = Callable[..., IntakeOutcome]


@pytest.fixture
def intake(store: Store) -> Intake:
    """Return a function recording events in a transaction of its own.

    Call it as ``intake(events, dedupe_key)``; ``request``, ``respond`` and
    ``now`` may be given as keywords.
    """

    def run(
        events: list[ProgressEvent],
        dedupe_key: str,
        *,
        request: IntakeRequest | None = None,
        respond: Responder = accept,
        now: datetime | None = None,
    ) -> IntakeOutcome:
        with store.session() as session:
            return record_intake(
                session,
                source=SOURCE,
                request=request or build_request(),
                events=events,
                dedupe_key=dedupe_key,
                respond=respond,
                now=now,
            )

    return run


@pytest.fixture
def make_event() -> Callable[..., ProgressEvent]:
    """Return the progress event factory (see ``build_event``)."""
    return build_event


@pytest.fixture
def make_request() -> Callable[..., IntakeRequest]:
    """Return the inbound request factory (see ``build_request``)."""
    return build_request
