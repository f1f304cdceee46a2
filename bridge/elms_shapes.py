"""Read the Open ELMS response bodies the reference leaves vague.

The reference says the progress check returns "a JSON array with the
completion status and the numeric score" and that create-user returns the
"User id", without a schema. These functions accept the plausible shapes
and spellings and fail with :class:`ElmsShapeError` naming what arrived.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from typing import Any

from bridge.errors import ElmsShapeError

_SHAPE_PREVIEW = 120


class Status(enum.StrEnum):
    """The three progress states of a learning result in Open ELMS."""

    NOT_ATTEMPTED = "not attempted"
    IN_PROGRESS = "in progress"
    COMPLETED = "completed"


_SPELLINGS = {
    "not attempted": Status.NOT_ATTEMPTED,
    "notattempted": Status.NOT_ATTEMPTED,
    "in progress": Status.IN_PROGRESS,
    "inprogress": Status.IN_PROGRESS,
    "completed": Status.COMPLETED,
    "complete": Status.COMPLETED,
}


@dataclass(frozen=True)
class Progress:
    """A learner's status and score (0-100 or None) on one learning resource."""

    status: Status
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the progress as a JSON-ready dict."""
        return {"status": self.status.value, "score": self.score}


def describe(body: Any) -> str:
    """Return a short description of a body for an error message."""
    text = json.dumps(body, default=str)
    if len(text) > _SHAPE_PREVIEW:
        text = text[:_SHAPE_PREVIEW] + "..."
    return f"{type(body).__name__} {text}"


def parse_status(value: Any) -> Status:
    """Return the status for any known spelling, in any case."""
    if isinstance(value, str):
        folded = " ".join(value.replace("_", " ").replace("-", " ").split()).lower()
        status = _SPELLINGS.get(folded)
        if status is not None:
            return status
    raise ElmsShapeError(f"unknown progress status: {describe(value)}")


def parse_score(value: Any) -> float | None:
    """Return a numeric score, or None for null, empty or 'unknown'."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ElmsShapeError(f"score is not a number: {describe(value)}")
    if isinstance(value, str):
        if value.strip().lower() in ("", "null", "unknown"):
            return None
        try:
            value = float(value)
        except ValueError:
            raise ElmsShapeError(f"score is not a number: {describe(value)}") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ElmsShapeError(f"score is not a number: {describe(value)}")
    return float(value)


def parse_progress(body: Any) -> Progress:
    """Return the progress in a check-progress body.

    Accepts ``["completed", 85]``, ``{"status": ..., "score": ...}`` and a
    list holding one such object.
    """
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict) and "status" in body:
        return Progress(parse_status(body["status"]), parse_score(body.get("score")))
    if isinstance(body, list) and len(body) in (1, 2) and isinstance(body[0], str):
        score = body[1] if len(body) == 2 else None
        return Progress(parse_status(body[0]), parse_score(score))
    raise ElmsShapeError(f"unreadable progress body: {describe(body)}")


def parse_user_id(body: Any) -> int | str:
    """Return the id in a create-user body: a number, a string or ``{"id": ..}``."""
    if isinstance(body, dict) and "id" in body:
        body = body["id"]
    if isinstance(body, bool):
        raise ElmsShapeError(f"unreadable user id: {describe(body)}")
    if isinstance(body, int):
        return body
    if isinstance(body, str) and body.strip():
        text = body.strip()
        return int(text) if text.isdigit() else text
    raise ElmsShapeError(f"unreadable user id: {describe(body)}")
