"""The request id kept with each event (migration 0004), on both backends."""

from __future__ import annotations

import dataclasses

from alembic import command
from sqlalchemy import inspect

from bridge.store import migrate
from bridge.store.db import build_engine
from bridge.store.queries import get_event
from tests.store.conftest import build_event, build_request


def event_columns(url: str) -> dict[str, dict]:
    engine = build_engine(url)
    try:
        return {c["name"]: c for c in inspect(engine).get_columns("events")}
    finally:
        engine.dispose()


def test_0004_adds_a_nullable_correlation_column_and_takes_it_back(db_url):
    migrate.upgrade(db_url, "0003")
    assert "correlation_id" not in event_columns(db_url)

    migrate.upgrade(db_url)
    column = event_columns(db_url)["correlation_id"]
    assert column["nullable"] is True
    assert column["type"].length == 128
    assert migrate.check(db_url) == []

    command.downgrade(migrate.build_config(db_url), "0003")
    assert "correlation_id" not in event_columns(db_url)
    assert migrate.current(db_url) == "0003"


def test_events_keep_the_request_id_they_came_with(store, intake):
    request = dataclasses.replace(build_request(), correlation_id="lms-42")

    tagged = intake([build_event("stmt-1")], "key-1", request=request)
    untagged = intake([build_event("stmt-2")], "key-2")

    with store.session(write=False) as session:
        first = get_event(session, tagged.event_ids[0])
        second = get_event(session, untagged.event_ids[0])
    assert first is not None and second is not None
    assert first.correlation_id == "lms-42"
    assert second.correlation_id is None
