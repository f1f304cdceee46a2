"""Run the bridge's migrations for Alembic, as ``bridge.store.migrate`` asks.

The config is built in code: ``attributes["url"]`` names the database, or
``attributes["connection"]`` hands over an open connection. Logging is left
as the application set it up.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from bridge.store.db import build_engine
from bridge.store.models import Base

target_metadata = Base.metadata

# Any fixed number will do: every bridge process migrating one PostgreSQL
# database takes this advisory lock, so they migrate one after the other.
MIGRATION_LOCK_KEY = 0x0E1B5


def run_offline(url: str) -> None:
    """Write the migrations' SQL out instead of running it."""
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    """Run the migrations on an open connection, in one transaction."""
    sqlite = connection.dialect.name == "sqlite"

    # The store's engine emits BEGIN itself on SQLite, so DDL there is
    # transactional too and a failed migration leaves nothing behind.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            take_migration_lock(connection)
        context.run_migrations()


def take_migration_lock(connection: Connection) -> None:
    """Wait for other processes migrating this database; hold it to commit.

    Two processes started together on a fresh database (two web processes
    of a scale-out) would otherwise both create the tables, and one would
    fail. The lock is taken before Alembic reads the current revision, so
    the second one sees what the first committed and has nothing left to do.
    """
    connection.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
    )


def run_online(url: str) -> None:
    """Open the store's engine on ``url`` and run the migrations."""
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        engine.dispose()


def main() -> None:
    """Pick the mode Alembic asked for and run."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return

    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no database URL given to the migrations")
    if context.is_offline_mode():
        run_offline(url)
    else:
        run_online(url)


main()
