"""Outbound event types a subscription can ask for, and their validation.

``progress.*`` announce a transition of a learner's progress in Open ELMS;
``bridge.*`` are notices about the bridge itself. A subscription lists the
types it wants, or ``*`` for every type.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class EventType(enum.StrEnum):
    """One kind of outbound event."""

    PROGRESS_STARTED = "progress.started"
    PROGRESS_COMPLETED = "progress.completed"
    PROGRESS_SCORE_CHANGED = "progress.score_changed"
    EVENT_FAILED = "bridge.event_failed"
    SUBSCRIPTION_DISABLED = "bridge.subscription_disabled"


EVENT_TYPES: tuple[str, ...] = tuple(member.value for member in EventType)

# In a subscription's list, this stands for every type, present and future.
ANY_EVENT_TYPE = "*"


def check_event_type(event_type: str) -> str:
    """Return ``event_type`` if it is a known type.

    Raises:
        ValueError: the type is unknown.
    """
    if event_type not in EVENT_TYPES:
        known = ", ".join(EVENT_TYPES)
        raise ValueError(f"unknown event type {event_type!r}; known: {known}")
    return event_type


def check_event_types(event_types: Iterable[str]) -> list[str]:
    """Return a subscription's types without repeats, in the order given.

    Raises:
        ValueError: the list is empty or names an unknown type.
    """
    wanted: list[str] = []
    for event_type in event_types:
        name = event_type.strip()
        if name != ANY_EVENT_TYPE:
            check_event_type(name)
        if name not in wanted:
            wanted.append(name)

    if not wanted:
        raise ValueError(f"name at least one event type, or {ANY_EVENT_TYPE!r}")
    return wanted
