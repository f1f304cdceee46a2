"""``python -m bridge db ...`` run as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from bridge.store.migrate import head
from tests.clitools import bridge, clean_env, error_lines, free_port


@pytest.fixture
def database(tmp_path):
    return tmp_path / "x.db"


@pytest.fixture
def env(database):
    return clean_env(BRIDGE_DATABASE_URL=f"sqlite:///{database}")


def test_current_of_a_new_database_is_null(env):
    result = bridge("db", "current", env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"current": None, "head": head()}


def test_upgrade_then_current_shows_the_head_revision(env):
    upgraded = bridge("db", "upgrade", env=env)
    current = bridge("db", "current", env=env)

    assert upgraded.returncode == 0, upgraded.stderr
    assert json.loads(upgraded.stdout) == {"current": head(), "head": head()}
    assert current.returncode == 0, current.stderr
    assert json.loads(current.stdout) == {"current": head(), "head": head()}


def test_upgrade_twice_is_harmless(env):
    bridge("db", "upgrade", env=env)

    again = bridge("db", "upgrade", env=env)

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"current": head(), "head": head()}


def test_check_passes_on_an_upgraded_database(env):
    assert bridge("db", "upgrade", env=env).returncode == 0

    result = bridge("db", "check", env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"current": head(), "in_sync": True}


def test_check_fails_on_an_empty_database_and_says_to_upgrade(env):
    result = bridge("db", "check", env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert error_lines(result) == [
        f"error: database at None, code at {head()}; run: python -m bridge db upgrade"
    ]


def test_check_reports_a_schema_that_drifted_from_the_models(env, database):
    assert bridge("db", "upgrade", env=env).returncode == 0
    with sqlite3.connect(database) as connection:
        connection.execute("DROP INDEX ix_events_source")

    result = bridge("db", "check", env=env)

    assert result.returncode == 1
    assert error_lines(result) == [
        "error: schema differs from the models: add_index: events.ix_events_source"
    ]


# A database newer than the code

FUTURE = "9999_future"


def config_errors(result):
    return [line for line in result.stderr.splitlines() if "error:" in line]


@pytest.fixture
def future_env(env, database):
    """Return the env of a database stamped with a revision no script defines."""
    assert bridge("db", "upgrade", env=env).returncode == 0
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (FUTURE,))
    return {
        **env,
        "BRIDGE_PORT": str(free_port()),
        "BRIDGE_SANDBOX_PORT": str(free_port()),
        "BRIDGE_RECEIVER_PORT": str(free_port()),
    }


def refusal() -> str:
    return (
        f"config error: database at revision {FUTURE}, which this code does not "
        f"know (newest known: {head()}); the database is newer than the code, "
        "so run a bridge release that ships it"
    )


@pytest.mark.parametrize(
    "command",
    [["serve"], ["run"], ["worker"], ["db", "check"], ["db", "upgrade"]],
    ids=" ".join,
)
def test_a_database_newer_than_the_code_is_refused_at_start(future_env, command):
    env = {
        **future_env,
        "BRIDGE_ELMS_URL": "http://127.0.0.1:9/site/backend",
        "BRIDGE_ELMS_TOKEN": "t",
    }

    result = bridge(*command, env=env)

    assert result.returncode == 2, result.stderr
    assert config_errors(result) == [refusal()]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "command",
    [["events", "list"], ["subscriptions", "list"], ["sources", "list"]],
    ids=" ".join,
)
def test_store_commands_refuse_a_newer_database_in_one_line(future_env, command):
    result = bridge(*command, env=future_env)

    assert result.returncode == 2, result.stderr
    assert config_errors(result) == [refusal()]
    assert "Traceback" not in result.stderr


def test_run_with_the_sandbox_refuses_a_newer_database_too(future_env):
    result = bridge("run", env=future_env)

    assert result.returncode == 2, result.stderr
    assert config_errors(result) == [refusal()]


def test_current_still_shows_the_unknown_revision(future_env):
    result = bridge("db", "current", env=future_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"current": FUTURE, "head": head()}


# Purge


def seed_old_finished_request(url: str) -> None:
    """Store one request whose event was dispatched 40 days before now."""
    from bridge.jobs.dispatch import utc_now
    from bridge.store import create_store
    from bridge.store import dispatch_queries as dq
    from bridge.store.queries import record_intake
    from tests.store.conftest import accept, build_event, build_request

    at = utc_now() - timedelta(days=40)
    store = create_store(url)
    try:
        with store.session() as session:
            outcome = record_intake(
                session,
                source="lms-one",
                request=build_request(),
                events=[build_event("old-1")],
                dedupe_key="old-key",
                respond=accept,
                now=at,
            )
            dq.claim_due_events(session, worker="w", now=at, lease_seconds=60, limit=10)
            dq.finish_event(
                session, outcome.event_ids[0], worker="w", status="dispatched", now=at
            )
    finally:
        store.dispose()


def test_purge_dry_run_counts_then_purge_removes(env, database):
    assert bridge("db", "upgrade", env=env).returncode == 0
    seed_old_finished_request(f"sqlite:///{database}")

    dry = bridge("db", "purge", "--dry-run", env=env)
    purged = bridge("db", "purge", "--batch", "1", env=env)
    again = bridge("db", "purge", env=env)

    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["due"]["finished_events"] == 1
    assert purged.returncode == 0, purged.stderr
    assert json.loads(purged.stdout) == {
        "purged": {"finished_events": 1, "elms_calls": 0, "requests": 1},
        "batches": {"finished_events": 1, "requests": 1},
        "complete": True,
    }
    assert json.loads(again.stdout)["purged"] == {}


def test_purge_keeps_what_a_longer_retention_covers(env, database):
    assert bridge("db", "upgrade", env=env).returncode == 0
    seed_old_finished_request(f"sqlite:///{database}")
    longer = {**env, "BRIDGE_RETAIN_DEDUPE_DAYS": "60", "BRIDGE_RETAIN_RAW_DAYS": "0"}

    result = bridge("db", "purge", env=longer)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["purged"] == {}
    with sqlite3.connect(database) as connection:
        [(events,)] = connection.execute("SELECT count(*) FROM events").fetchall()
    assert events == 1


def test_purge_refuses_while_a_worker_holds_the_lease(env, database):
    from bridge.jobs.dispatch import utc_now
    from bridge.store import create_store, leadership

    assert bridge("db", "upgrade", env=env).returncode == 0
    store = create_store(f"sqlite:///{database}")
    with store.session() as session:
        leadership.try_acquire(
            session, "housekeeping", "worker-7", ttl=600, now=utc_now()
        )
    store.dispose()

    result = bridge("db", "purge", env=env)

    assert result.returncode == 1
    assert error_lines(result) == ["error: housekeeping is running on worker-7"]
