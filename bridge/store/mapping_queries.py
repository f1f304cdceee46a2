"""Read and write activity -> learning id mappings; all of their SQL lives here.

Keys are stored stripped and lower-cased, so every comparison is
case-insensitive. ``source`` is a source name, or ``*`` for a mapping that
applies to every source. Like ``queries``, every function runs inside the
caller's transaction and none commits.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bridge.store.models import EventModel, EventStatus, MappingModel

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

ANY_SOURCE = "*"
# The activity handles a mapping key is compared with, in order of trust.
ACTIVITY_KEY_HANDLES = ("iri", "course_id", "content_id")


@dataclass(frozen=True)
class MappingRow:
    """A stored mapping of one activity key to an Open ELMS learning id."""

    id: str
    source: str
    activity_key: str
    learning_id: str
    created_at: datetime

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-ready dict of the mapping."""
        return {
            "id": self.id,
            "source": self.source,
            "activity_key": self.activity_key,
            "learning_id": self.learning_id,
            "created_at": self.created_at.isoformat(),
        }


def normalise_key(activity_key: str) -> str:
    """Return an activity key as stored: stripped and lower-cased.

    Raises:
        ValueError: the key is empty.
    """
    key = activity_key.strip().lower()
    if not key:
        raise ValueError("the activity key must not be empty")
    return key


def add_mapping(
    session: Session,
    *,
    activity_key: str,
    learning_id: str,
    source: str = ANY_SOURCE,
    now: datetime | None = None,
) -> MappingRow:
    """Add a mapping and return it.

    Raises:
        ValueError: the key or learning id is empty, or that source already
            maps that key.
    """
    key = normalise_key(activity_key)
    model = MappingModel(
        id=str(uuid.uuid4()),
        source=source,
        activity_key=key,
        learning_id=_learning_id(learning_id),
        created_at=now or datetime.now(UTC),
    )
    try:
        with session.begin_nested():
            session.add(model)
    except IntegrityError as exc:
        raise ValueError(f"{key!r} is already mapped for source {source!r}") from exc

    logger.info("mapping %s added: %s -> %s", model.id, source, model.learning_id)
    return _mapping_row(model)


def put_mapping(
    session: Session,
    *,
    activity_key: str,
    learning_id: str,
    source: str = ANY_SOURCE,
    now: datetime | None = None,
) -> bool:
    """Add a mapping or change its learning id; say whether anything changed.

    Raises:
        ValueError: the key or learning id is empty.
    """
    key = normalise_key(activity_key)
    wanted = _learning_id(learning_id)
    query = select(MappingModel).where(
        MappingModel.source == source, MappingModel.activity_key == key
    )
    model = session.scalars(query).one_or_none()
    if model is None:
        add_mapping(
            session, activity_key=key, learning_id=wanted, source=source, now=now
        )
        return True

    if model.learning_id == wanted:
        return False
    model.learning_id = wanted
    session.flush()
    logger.info("mapping %s changed: %s -> %s", model.id, source, wanted)
    return True


def list_mappings(session: Session, source: str | None = None) -> list[MappingRow]:
    """Return the mappings by source and key, only those of ``source`` if given."""
    query = select(MappingModel)
    if source is not None:
        query = query.where(MappingModel.source == source)

    query = query.order_by(MappingModel.source, MappingModel.activity_key)
    return [_mapping_row(model) for model in session.scalars(query)]


def remove_mapping(
    session: Session, mapping_id_or_key: str, source: str = ANY_SOURCE
) -> bool:
    """Remove a mapping by its id, or by key and source; say whether it existed."""
    model = session.get(MappingModel, mapping_id_or_key.strip())
    if model is None:
        query = select(MappingModel).where(
            MappingModel.source == source,
            MappingModel.activity_key == mapping_id_or_key.strip().lower(),
        )
        model = session.scalars(query).one_or_none()
    if model is None:
        return False

    session.delete(model)
    session.flush()
    logger.info("mapping %s removed", model.id)
    return True


def find_learning_id(session: Session, keys: list[str], source: str) -> str | None:
    """Return the learning id mapped to the first key that has one, or None.

    A mapping of the event's own source wins over a ``*`` mapping; within
    each, the keys are tried in the order given.
    """
    wanted = [key.strip().lower() for key in keys if key and key.strip()]
    if not wanted:
        return None

    query = select(MappingModel).where(
        MappingModel.activity_key.in_(set(wanted)),
        MappingModel.source.in_({source, ANY_SOURCE}),
    )
    found = {(m.source, m.activity_key): m.learning_id for m in session.scalars(query)}
    for scope in (source, ANY_SOURCE):
        for key in wanted:
            if (scope, key) in found:
                return found[(scope, key)]
    return None


def requeue_unresolved(
    session: Session,
    activity_key: str,
    source: str = ANY_SOURCE,
    now: datetime | None = None,
) -> int:
    """Put the unresolved events a new mapping may resolve back to pending.

    An event matches when one of its activity's IRI, course id or content
    id equals the key, case-insensitively, and its source is ``source``
    (any source for ``*``). The JSON is compared here rather than in SQL,
    which SQLite and PostgreSQL query differently; unresolved events are
    few.

    Returns:
        How many events were put back.
    """
    key = normalise_key(activity_key)
    now = now or datetime.now(UTC)
    query = select(EventModel).where(EventModel.status == EventStatus.UNRESOLVED)
    if source != ANY_SOURCE:
        query = query.where(EventModel.source == source)

    count = 0
    for event in session.scalars(query):
        if key not in activity_keys(event.activity):
            continue
        event.status = EventStatus.PENDING.value
        event.status_reason = None
        event.next_attempt_at = now
        event.updated_at = now
        count += 1

    session.flush()
    if count:
        logger.info("mapping key for %s: %d unresolved events requeued", source, count)
    return count


def activity_keys(activity: dict[str, str]) -> list[str]:
    """Return an activity's mapping keys, lower-cased, in order of trust."""
    values = (activity.get(handle) for handle in ACTIVITY_KEY_HANDLES)
    return [value.strip().lower() for value in values if value and value.strip()]


def _learning_id(learning_id: str | int) -> str:
    """Return a learning id as stored text, refusing an empty one."""
    text = str(learning_id).strip()
    if not text:
        raise ValueError("the learning id must not be empty")
    return text


def _mapping_row(model: MappingModel) -> MappingRow:
    """Return the plain record of a mapping row."""
    return MappingRow(
        id=model.id,
        source=model.source,
        activity_key=model.activity_key,
        learning_id=model.learning_id,
        created_at=model.created_at,
    )
