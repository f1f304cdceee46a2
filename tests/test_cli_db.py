"""``python -m bridge db ...`` run as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import sqlite3

import pytest

from bridge.store.migrate import head
from tests.clitools import bridge, clean_env, error_lines


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
