"""Refuse, before anything is stored, what a database column cannot hold.

SQLite stores nearly anything, PostgreSQL does not: a text value with a
NUL character, or longer than its column, fails there. Such a value must
be a 400 at intake, naming where it is, and never an event accepted with a
202 that later breaks every query it takes part in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bridge.errors import PayloadError
from bridge.events import ProgressEvent

MAX_EVENT_ID = 255
MAX_REGISTRATION = 255
NUL = "\x00"


def check_events(events: Sequence[ProgressEvent]) -> None:
    """Refuse events with a NUL character or an over-long id or registration.

    Raises:
        PayloadError: listing each problem with its place, e.g.
            ``events[0].activity.iri``.
    """
    problems: list[dict[str, str]] = []
    for index, event in enumerate(events):
        where = f"events[{index}]"
        _check_length(event.event_id, MAX_EVENT_ID, f"{where}.id", problems)
        if event.registration is not None:
            path = f"{where}.registration"
            _check_length(event.registration, MAX_REGISTRATION, path, problems)
        fields = {
            "id": event.event_id,
            "registration": event.registration,
            "learner": event.learner.to_dict(),
            "activity": event.activity.to_dict(),
            "note": event.note,
            "extra": event.extra,
        }
        _find_nul(fields, where, problems)

    if problems:
        raise PayloadError(
            "the payload holds values the bridge cannot store", errors=problems
        )


def _check_length(
    value: str, limit: int, path: str, problems: list[dict[str, str]]
) -> None:
    """Note a value longer than ``limit`` characters."""
    if len(value) > limit:
        message = f"is {len(value)} characters; at most {limit} are kept"
        problems.append({"path": path, "message": message})


def _find_nul(value: Any, path: str, problems: list[dict[str, str]]) -> None:
    """Note each string (value or key) holding a NUL character, by its place."""
    if isinstance(value, str):
        if NUL in value:
            problems.append({"path": path, "message": "holds a NUL character (U+0000)"})
        return
    if isinstance(value, dict):
        for key, item in value.items():
            place = f"{path}.{key}"
            if isinstance(key, str) and NUL in key:
                problems.append({"path": place, "message": "key holds a NUL character"})
            _find_nul(item, place, problems)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _find_nul(item, f"{path}[{index}]", problems)
