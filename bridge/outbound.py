"""Announce what the bridge itself did or failed to do, as outbound events.

The dispatcher calls :func:`announce_inbound` in the transaction that
records an event applied to Open ELMS, and :func:`announce_event_failed`
when an inbound event ends failed or unresolved. Progress changes made
inside Open ELMS are found by the poller (``bridge.jobs.poll``) instead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from bridge.elms_shapes import Status
from bridge.store import poll_queries as pq

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from bridge.store.models import EventRow

logger = logging.getLogger(__name__)

# How far along each status is. The bridge only starts and completes, and
# a start leaves a completed pair completed, so its calls never move back.
PROGRESS_ORDER = {
    Status.NOT_ATTEMPTED.value: 0,
    Status.IN_PROGRESS.value: 1,
    Status.COMPLETED.value: 2,
}


class ProgressState(Protocol):
    """A status and score: the dispatcher's PairState or a polled Progress."""

    @property
    def status(self) -> str:
        """The progress status, e.g. ``completed``."""

    @property
    def score(self) -> float | None:
        """The score, 0-100, or None."""


def announce_inbound(
    session: Session,
    *,
    user_id: str,
    learning_id: str,
    old: ProgressState,
    new: ProgressState,
    inbound_event_id: str,
    now: datetime,
) -> list[str]:
    """Track the pair and announce the change an inbound event made.

    The previous state is the tracked pair's, when the bridge knows one:
    if a poll already saw (and announced) the new state, nothing is
    announced twice. A state behind the tracked one (a start after Open
    ELMS completed the pair) is neither announced nor stored: Open ELMS
    keeps the completion, and storing the start would make the next
    completion look new. Returns the ids of the outbound events written.
    """
    pq.track_pair(session, user_id, learning_id, origin="inbound", now=now)
    tracked = pq.get_pair(session, user_id, learning_id, lock=True)

    old_status, old_score = str(old.status), old.score
    if tracked is not None and tracked.status is not None:
        old_status, old_score = tracked.status, tracked.score
    if falls_behind(old_status, str(new.status)):
        logger.debug(
            "pair %s/%s: kept %s; event %s asked for %s",
            user_id,
            learning_id,
            old_status,
            inbound_event_id,
            new.status,
        )
        return []

    ids = pq.record_transition(
        session,
        user_id=user_id,
        learning_id=learning_id,
        old_status=old_status,
        old_score=old_score,
        new_status=str(new.status),
        new_score=new.score,
        cause="inbound",
        inbound_event_id=inbound_event_id,
        now=now,
    )
    if ids:
        logger.info(
            "pair %s/%s: announced %d outbound event(s) for event %s",
            user_id,
            learning_id,
            len(ids),
            inbound_event_id,
        )
    return ids


def falls_behind(old_status: str, new_status: str) -> bool:
    """Tell whether ``new_status`` is less far along than ``old_status``."""
    order = PROGRESS_ORDER.get(new_status, 0) - PROGRESS_ORDER.get(old_status, 0)
    return order < 0


def announce_event_failed(
    session: Session,
    event_row: EventRow,
    now: datetime,
    *,
    status: str | None = None,
    reason: str | None = None,
) -> str:
    """Announce an inbound event that ended failed or unresolved; return the id.

    ``status`` and ``reason`` override the row's, for a caller holding the
    row as it was claimed (still pending) rather than as it was finished.
    """
    payload = {
        "type": pq.EVENT_FAILED,
        "time": now.isoformat(),
        "inbound_event_id": event_row.id,
        "source": event_row.source,
        "status": status or event_row.status,
        "reason": reason if reason is not None else event_row.status_reason,
    }
    event_id = pq.insert_outbound_event(
        session,
        event_type=pq.EVENT_FAILED,
        payload=payload,
        user_id=event_row.user_id,
        learning_id=event_row.learning_id,
        inbound_event_id=event_row.id,
        now=now,
    )
    logger.info("event %s: announced as %s %s", event_row.id, pq.EVENT_FAILED, event_id)
    return event_id
