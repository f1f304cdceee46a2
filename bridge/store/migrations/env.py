"""Run the bridge's migrations for Alembic, as ``bridge.store.migrate`` asks.

The config is built in code: ``attributes["url"]`` names the database, or
``attributes["connection"]`` hands over an open connection. Logging is left
as the application set it up.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bridge.store.db import build_engine
from bridge.store.models import Base

target_metadata = Base.metadata


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
        context.run_migrations()


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
