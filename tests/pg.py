"""Fresh PostgreSQL databases for tests, on the server at 127.0.0.1:5432.

When the server cannot be reached, the test asking for a database is
skipped with the reason, so a run without PostgreSQL says why.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

PG_HOST = "127.0.0.1:5432"
PG_ADMIN_URL = f"postgresql+psycopg://postgres@{PG_HOST}/postgres"


def create_pg_database() -> str:
    """Create an empty database on the local server and return its URL."""
    name = f"bridge_test_{uuid.uuid4().hex[:12]}"
    _run_admin(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    """Drop a database made by ``create_pg_database``, connections or not."""
    name = url.rsplit("/", 1)[1]
    _run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_admin(statement: str) -> None:
    """Run one statement outside a transaction on the server's admin db."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        pytest.skip(f"PostgreSQL at {PG_HOST} unreachable: {reason}; .ci/run starts it")
    finally:
        engine.dispose()
