"""A leader lease: one holder at a time for a named job, across processes.

The lease is a row of ``worker_state`` (key ``leader:<name>``) holding the
holder's name and when its hold ends. Taking it locks that row (``FOR
UPDATE`` on PostgreSQL; SQLite lets one writer in at a time), so two
processes can never both see it free. A holder renews by taking it again
before it ends; a holder that dies simply lets it run out, and the next
one to ask gets it.

A row lease was chosen over PostgreSQL's advisory locks: a session-level
advisory lock belongs to one pooled connection, not to the job, and the
same code then serves SQLite too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from bridge.store.models import WorkerStateModel

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from bridge.store.db import Store

logger = logging.getLogger(__name__)

LEASE_PREFIX = "leader:"


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease and until when."""

    holder: str
    expires_at: datetime


def try_acquire(
    session: Session, name: str, holder: str, *, ttl: float, now: datetime
) -> bool:
    """Take or renew the lease ``name`` for ``ttl`` seconds; False if held.

    The lease is free when nobody holds it or its hold has ended; the
    current holder asking again extends its hold.
    """
    key = LEASE_PREFIX + name
    value = {"holder": holder, "expires_at": (now + timedelta(seconds=ttl)).isoformat()}
    model = _locked(session, key)
    if model is None:
        try:
            with session.begin_nested():
                session.add(WorkerStateModel(key=key, value=value, updated_at=now))
            return True
        except IntegrityError:
            model = _locked(session, key)  # another process created it first
            assert model is not None  # noqa: S101 - its insert is committed

    current = _read(model.value)
    if current is not None and current.holder != holder and current.expires_at > now:
        return False

    model.value, model.updated_at = value, now
    return True


def release(session: Session, name: str, holder: str) -> bool:
    """End ``holder``'s hold on the lease ``name``; False if it held none."""
    model = _locked(session, LEASE_PREFIX + name)
    current = None if model is None else _read(model.value)
    if model is None or current is None or current.holder != holder:
        return False

    session.delete(model)
    return True


def read_lease(session: Session, name: str, *, now: datetime) -> LeaseHolder | None:
    """Return who holds the lease ``name`` at ``now``, or None if it is free."""
    model = session.get(WorkerStateModel, LEASE_PREFIX + name)
    current = None if model is None else _read(model.value)
    if current is None or current.expires_at <= now:
        return None
    return current


def _locked(session: Session, key: str) -> WorkerStateModel | None:
    """Return the lease row, locked for this transaction, fresh from the database."""
    return session.get(
        WorkerStateModel, key, with_for_update=True, populate_existing=True
    )


def _read(value: dict[str, Any]) -> LeaseHolder | None:
    """Return the lease a row holds; None for a value that is not one."""
    try:
        return LeaseHolder(
            str(value["holder"]), datetime.fromisoformat(value["expires_at"])
        )
    except (KeyError, TypeError, ValueError):
        return None


class LeaderLease:
    """One process's side of a named lease, each step in its own transaction.

    Jobs that must run on one node at a time call :meth:`acquire` before a
    run, :meth:`acquire` again between steps to renew, and :meth:`release`
    at the end.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        holder: str,
        *,
        ttl: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.clock = clock

    def acquire(self) -> bool:
        """Take or renew the lease; False while another holder has it."""
        with self.store.session() as session:
            taken = try_acquire(
                session, self.name, self.holder, ttl=self.ttl, now=self.clock()
            )
        if not taken:
            logger.debug("lease %s: held by another; %s waits", self.name, self.holder)
        return taken

    def release(self) -> bool:
        """Give the lease up so another holder need not wait for it to end."""
        with self.store.session() as session:
            return release(session, self.name, self.holder)

    def current(self) -> LeaseHolder | None:
        """Return who holds the lease now, or None if it is free."""
        with self.store.session(write=False) as session:
            return read_lease(session, self.name, now=self.clock())
