"""Bring a database to the schema of this code, and say how far it is.

Alembic runs from code here, with the scripts shipped in
``bridge/store/migrations``; no ``alembic.ini`` is read.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bridge.errors import ConfigError
from bridge.store.db import build_engine
from bridge.store.models import Base

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def build_config(url: str | None = None) -> Config:
    """Return an Alembic config pointing at the shipped migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``; harmless when there.

    Raises:
        ConfigError: the database is at a revision this code does not ship.
    """
    before = current(url)
    require_known(before)
    if revision == "head" and before == head():
        return

    # Web and worker processes may start together on a new database; one
    # migrates while the others wait, then find nothing left to do.
    with migration_lock(url):
        command.upgrade(build_config(url), revision)

    after = current(url)
    if after != before:
        logger.info("database migrated from %s to %s", before, after)


@contextmanager
def migration_lock(url: str) -> Iterator[None]:
    """Hold a SQLite file's migration lock: one migrating process at a time.

    ``flock`` on a file beside the database, since SQLite's own lock is not
    held across the several transactions of a run. PostgreSQL needs none
    here: the migration environment takes an advisory lock in its
    transaction. A memory database needs none either.
    """
    engine = build_engine(url)
    database = engine.url.database or ""
    sqlite_file = engine.dialect.name == "sqlite" and database not in ("", ":memory:")
    engine.dispose()
    if not sqlite_file:
        yield
        return

    descriptor = os.open(database + ".migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the flock


def current(url: str) -> str | None:
    """Return the database's revision, or None if it was never migrated."""
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """Return the newest revision the code ships."""
    script = ScriptDirectory.from_config(build_config())
    revision = script.get_current_head()
    if revision is None:
        raise RuntimeError(f"no migration scripts in {MIGRATIONS_DIR}")
    return revision


def known_revisions() -> set[str]:
    """Return every revision the code's migration scripts define."""
    script = ScriptDirectory.from_config(build_config())
    return {revision.revision for revision in script.walk_revisions()}


def require_known(revision: str | None) -> None:
    """Refuse a database revision the code's scripts do not define.

    Such a database was migrated by a newer release. Running older code
    on it could write rows its schema no longer means, and Alembic cannot
    migrate down from a revision it has no script for.

    Raises:
        ConfigError: naming the database's revision and the newest known one.
    """
    if revision is None or revision in known_revisions():
        return
    raise ConfigError(
        [
            f"database at revision {revision}, which this code does not know "
            f"(newest known: {head()}); the database is newer than the code, "
            "so run a bridge release that ships it"
        ]
    )


def check(url: str) -> list[str]:
    """Return how the database differs from the code's schema; empty if none."""
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True}
            )
            revision = context.get_current_revision()
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    problems = [_describe(diff) for diff in diffs]
    expected = head()
    if revision != expected:
        problems.insert(0, f"database at revision {revision}, code at {expected}")
    return problems


def _describe(diff: Any) -> str:
    """Return one line for an Alembic difference entry."""
    if isinstance(diff, list):
        return "; ".join(_describe(item) for item in diff)

    operation = diff[0]
    if operation.startswith("modify_"):
        _, _, table, column, _, old, new = diff
        return f"{operation}: {table}.{column} {old!r} -> {new!r}"
    if operation in ("add_column", "remove_column"):
        _, _, table, column = diff
        return f"{operation}: {table}.{column.name}"
    return f"{operation}: " + ", ".join(_name_of(part) for part in diff[1:])


def _name_of(part: Any) -> str:
    """Return a short name for a table, index or constraint."""
    name = getattr(part, "name", None)
    table = getattr(part, "table", None)
    if name is not None and table is not None:
        return f"{table.name}.{name}"
    if name is not None:
        return str(name)
    return repr(part)
