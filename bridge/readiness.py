"""Readiness: can this deployment take events and apply them now?

Four checks, each with a sentence saying what was found: the database
answers, its schema is at the code's migration head, a worker beat
recently, and Open ELMS answered the worker's last calls (or answered
within the grace period). Only the database and the shared state table
are read, so ``/readyz`` stays cheap enough to poll often.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import SQLAlchemyError

from bridge.elms_contact import CONTACT_KEY
from bridge.jobs.heartbeat import HEARTBEAT_PREFIX
from bridge.logs import redact
from bridge.store import dispatch_queries, migrate, status_queries

if TYPE_CHECKING:
    from bridge.store.db import Store

logger = logging.getLogger(__name__)

ERROR_LIMIT = 200  # characters of a driver's error kept in the answer


@dataclass(frozen=True)
class Check:
    """The outcome of one readiness check."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return the check as the JSON body shows it."""
        return {"ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Limits:
    """How old a heartbeat and an Open ELMS success may be, in seconds."""

    heartbeat_max: float
    elms_grace: float


def run_checks(store: Store, limits: Limits, now: datetime) -> list[Check]:
    """Return every check's outcome; later checks need the database."""
    database = check_database(store)
    if not database.ok:
        return with_rest_skipped(database)

    try:
        return [
            database,
            check_migrations(store),
            check_worker(store, limits.heartbeat_max, now),
            check_elms(store, limits.elms_grace, now),
        ]
    except SQLAlchemyError as exc:
        # The database went away between the checks.
        lost = Check("database", False, f"unreachable: {describe(exc)}")
        return with_rest_skipped(lost)


CHECK_NAMES = ("database", "migrations", "worker", "elms")


def with_rest_skipped(database: Check) -> list[Check]:
    """Return the failed database check and the others marked not checked."""
    skipped = "not checked: the database is unreachable"
    rest = CHECK_NAMES[1:]
    return [database, *(Check(name, False, skipped) for name in rest)]


def check_database(store: Store) -> Check:
    """Run ``SELECT 1``."""
    try:
        with store.session(write=False) as session:
            status_queries.ping(session)
    except SQLAlchemyError as exc:
        logger.warning("readyz: database unreachable: %s", describe(exc))
        return Check("database", False, f"unreachable: {describe(exc)}")
    return Check("database", True, "reachable")


def check_migrations(store: Store) -> Check:
    """Compare the database's revision with the newest the code ships."""
    with store.engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()

    expected = code_head()
    if revision != expected:
        detail = f"database at revision {revision}, code at {expected}"
        return Check("migrations", False, detail)
    return Check("migrations", True, f"at {expected}")


@cache
def code_head() -> str:
    """Return the code's migration head; the scripts never change at run time."""
    return migrate.head()


def check_worker(store: Store, limit: float, now: datetime) -> Check:
    """Find the newest worker heartbeat and compare its age with ``limit``."""
    with store.session(write=False) as session:
        beats = status_queries.state_values(session, HEARTBEAT_PREFIX)
    if not beats:
        return Check("worker", False, "no worker heartbeat recorded")

    key, value = max(beats.items(), key=lambda item: item[1].get("at", ""))
    name = key.removeprefix(HEARTBEAT_PREFIX)
    age = seconds_since(value.get("at"), now)
    if age is None or age > limit:
        shown = "an unreadable time" if age is None else f"{age:.0f}s ago"
        detail = f"newest heartbeat ({name}) was {shown}; the limit is {limit:g}s"
        return Check("worker", False, detail)
    return Check("worker", True, f"{name} beat {age:.0f}s ago")


def check_elms(store: Store, grace: float, now: datetime) -> Check:
    """Pass unless the last call failed and no success is within ``grace``.

    An idle bridge makes no calls, so no record at all is not a failure.
    """
    with store.session(write=False) as session:
        contact = dispatch_queries.read_state(session, CONTACT_KEY)
    if not contact:
        return Check("elms", True, "no Open ELMS call made yet")

    success_age = seconds_since(contact.get("last_success"), now)
    failure_age = seconds_since(contact.get("last_failure"), now)
    failing = failure_age is not None and (
        success_age is None or failure_age < success_age
    )
    if not failing:
        shown = "never" if success_age is None else f"{success_age:.0f}s ago"
        return Check("elms", True, f"last call succeeded {shown}")
    if success_age is not None and success_age <= grace:
        detail = f"last call failed, but one succeeded {success_age:.0f}s ago"
        return Check("elms", True, detail)

    last_success = "never" if success_age is None else f"{success_age:.0f}s ago"
    detail = (
        f"last call failed {failure_age:.0f}s ago ({contact.get('last_error')}); "
        f"last success: {last_success}"
    )
    return Check("elms", False, detail)


def seconds_since(stamp: Any, now: datetime) -> float | None:
    """Return the seconds from an ISO time to ``now``; None if unreadable."""
    if not isinstance(stamp, str):
        return None
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return max(0.0, (now - then).total_seconds())


def describe(exc: SQLAlchemyError) -> str:
    """Return a driver error's first line, clipped, credentials masked."""
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return redact(f"{type(original).__name__}: {first}")[:ERROR_LIMIT]
