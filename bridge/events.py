"""The normalised progress event every inbound format is turned into."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Kind(enum.StrEnum):
    """What an event says about a learner's progress on one activity."""

    STARTED = "started"
    COMPLETED = "completed"
    PASSED = "passed"
    FAILED = "failed"
    INFORMATIONAL = "informational"


@dataclass(frozen=True)
class LearnerRef:
    """Every handle an event carries for its learner; resolution picks one."""

    email: str | None = None
    mbox_sha1: str | None = None
    account_name: str | None = None
    account_home_page: str | None = None
    openid: str | None = None
    user_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, str]:
        """Return the non-empty handles as a plain dict."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class ActivityRef:
    """Every handle an event carries for its activity or course."""

    iri: str | None = None
    course_id: str | None = None
    content_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, str]:
        """Return the non-empty handles as a plain dict."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ProgressEvent:
    """One learner's progress on one activity, whatever format it came in.

    ``score`` is 0-100 or None. ``occurred_at`` is timezone-aware UTC.
    ``note`` says why an informational event is informational (voided,
    unmapped verb, sub-content...), so an operator can read it later.
    """

    source: str
    event_id: str
    learner: LearnerRef
    activity: ActivityRef
    kind: Kind
    occurred_at: datetime
    raw: Any
    score: float | None = None
    note: str | None = None
    registration: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, without the raw payload."""
        return {
            "source": self.source,
            "event_id": self.event_id,
            "learner": self.learner.to_dict(),
            "activity": self.activity.to_dict(),
            "kind": self.kind.value,
            "score": self.score,
            "occurred_at": self.occurred_at.isoformat(),
            "note": self.note,
            "registration": self.registration,
            "extra": self.extra,
        }
