"""Migrations of the store, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, text

from bridge.store import create_store, migrate
from bridge.store.db import build_engine
from bridge.store.queries import add_source, list_sources

TABLES = {"sources", "inbound_requests", "events"}
ROOT = Path(__file__).resolve().parents[2]


def table_names(url: str) -> set[str]:
    engine = build_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def execute(url: str, statement: str) -> None:
    engine = build_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def test_upgrade_creates_the_tables_and_check_reports_no_drift(db_url: str) -> None:
    before = migrate.check(db_url)
    assert before[0] == f"database at revision None, code at {migrate.head()}"
    assert any(problem.startswith("add_table: events") for problem in before)

    migrate.upgrade(db_url)

    assert TABLES <= table_names(db_url)
    assert migrate.check(db_url) == []


def test_indexes_and_unique_keys_are_created(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = build_engine(db_url)
    try:
        inspector = inspect(engine)
        indexes = {ix["name"] for ix in inspector.get_indexes("events")}
        events_unique = inspector.get_unique_constraints("events")
        requests_unique = inspector.get_unique_constraints("inbound_requests")
        foreign_keys = inspector.get_foreign_keys("events")
    finally:
        engine.dispose()

    assert {"ix_events_status_created_at", "ix_events_source"} <= indexes
    assert [uq["column_names"] for uq in events_unique] == [
        ["source", "source_event_id"]
    ]
    assert [uq["column_names"] for uq in requests_unique] == [["source", "dedupe_key"]]
    assert [fk["referred_table"] for fk in foreign_keys] == ["inbound_requests"]


def test_current_is_none_before_and_head_after_upgrade(db_url: str) -> None:
    assert migrate.current(db_url) is None

    migrate.upgrade(db_url)

    assert migrate.head() == "0004"
    assert migrate.current(db_url) == migrate.head()


def test_upgrade_twice_is_harmless_and_keeps_data(db_url: str) -> None:
    migrate.upgrade(db_url)
    store = create_store(db_url)
    try:
        with store.session() as session:
            add_source(session, "moodle", "xapi", {"type": "none"}, {})

        migrate.upgrade(db_url)

        with store.session(write=False) as session:
            names = [row.name for row in list_sources(session)]
    finally:
        store.dispose()

    assert names == ["moodle"]
    assert migrate.current(db_url) == migrate.head()
    assert migrate.check(db_url) == []


def test_check_reports_a_column_added_outside_migrations(db_url: str) -> None:
    migrate.upgrade(db_url)

    execute(db_url, "ALTER TABLE events ADD COLUMN stray_note VARCHAR(20)")

    problems = migrate.check(db_url)
    assert problems == ["remove_column: events.stray_note"]


def test_check_reports_a_missing_index(db_url: str) -> None:
    migrate.upgrade(db_url)

    execute(db_url, "DROP INDEX ix_events_source")

    assert migrate.check(db_url) == ["add_index: events.ix_events_source"]


def test_processes_starting_together_on_a_new_database_all_migrate_cleanly(
    db_url: str,
) -> None:
    """Web and workers may all run ``upgrade`` at once on an empty database."""
    code = "import sys; from bridge.store import migrate; migrate.upgrade(sys.argv[1])"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, db_url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in processes]
    for process in processes:
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()

    assert [code for code, _ in results] == [0, 0, 0, 0], results
    assert migrate.current(db_url) == migrate.head()
    assert migrate.check(db_url) == []
