"""Engine and session factory of the bridge's database.

SQLite is the embedded default and PostgreSQL the shared one. On SQLite
each connection runs in WAL mode with a busy timeout, and a writing
transaction opens with ``BEGIN IMMEDIATE``: it takes the write lock before
its first read, so writers from several processes queue for up to the busy
timeout instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from bridge.store.group_commit import GroupCommitter

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000

# busy_timeout goes first: switching a new file to WAL needs a lock too.
# synchronous=FULL: in WAL mode NORMAL may lose the last commits on a power
# cut, and an event answered 2xx must survive one. It costs about 0.2 ms
# a commit here.
SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
)

# Execution option naming the BEGIN flavour of a SQLite transaction.
SQLITE_BEGIN_OPTION = "bridge_sqlite_begin"


class Store:
    """The database of one process: an engine and the sessions drawn from it.

    Create one per process (after a fork) and share it between threads;
    each unit of work takes its own session from :meth:`session`.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writers = sessionmaker(engine, expire_on_commit=False)

        readers = engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
        self._readers = sessionmaker(readers, expire_on_commit=False)

        # SQLite lets one writer in at a time, and a thread that finds the
        # file locked sleeps in growing steps (up to 100 ms) before it looks
        # again. Threads of one process queue on this lock instead and are
        # woken at once. (Queueing processes too, on a file lock, was tried:
        # the tail fell but throughput fell by a fifth; see bench/README.md.)
        sqlite = engine.dialect.name == "sqlite"
        self._write_lock = threading.RLock() if sqlite else None

        # Intake writes of concurrent requests share one transaction and one
        # sync on SQLite; PostgreSQL takes concurrent writers as they come.
        self.group_committer = GroupCommitter(self) if sqlite else None

    @property
    def url(self) -> str:
        """Return the database URL with its password masked."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """Return the backend's name: ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """Yield a session in a transaction: committed on success, else rolled back.

        Args:
            write: False for read-only work; on SQLite it then begins a
                deferred transaction that does not queue behind writers.
        """
        if write and self._write_lock is not None:
            with self._write_lock, self._writers.begin() as session:
                yield session
            return
        factory = self._writers if write else self._readers
        with factory.begin() as session:
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """Yield a Core connection in a write transaction, committed on success.

        For the intake writer's batches: without a Session there is no unit
        of work to set up and tear down around a few prebuilt statements.
        """
        if self._write_lock is not None:
            with self._write_lock, self.engine.begin() as connection:
                yield connection
            return
        with self.engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        """Close every pooled connection; call it in a child after a fork."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __str__(self) -> str:
        return self.url


def create_store(url: str) -> Store:
    """Return a store on the database at ``url``."""
    store = Store(build_engine(url))
    logger.info("store %s opened", store.url)
    return store


def build_engine(url: str | URL) -> Engine:
    """Return an engine for ``url`` with the bridge's connection settings.

    Migrations use it too, so they run under the same pragmas.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)

    _create_parent_directory(parsed)
    engine = create_engine(parsed)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _create_parent_directory(url: URL) -> None:
    """Create the directory of a SQLite file if it is missing."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return

    Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite_connection(dbapi_connection: Any, record: Any) -> None:
    """Apply the pragmas and take BEGIN away from the sqlite3 driver."""
    dbapi_connection.isolation_level = None

    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    """Emit BEGIN IMMEDIATE, or the flavour the connection's options name."""
    flavour = connection.get_execution_options().get(SQLITE_BEGIN_OPTION)
    if flavour == "DEFERRED":
        connection.exec_driver_sql("BEGIN DEFERRED")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
