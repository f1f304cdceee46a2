"""How the last calls to Open ELMS went, kept for the readiness check.

The worker makes the Open ELMS calls and the web process answers
``/readyz``, so the worker's heartbeat stores this record in the shared
state table (key :data:`CONTACT_KEY`). Several workers merge into the one
row: the newest success and the newest failure win.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

CONTACT_KEY = "elms:contact"


def utc_now() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


class ElmsContact:
    """The newest success and failure of this process's Open ELMS calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.last_success: datetime | None = None
        self.last_failure: datetime | None = None
        self.last_error: str | None = None

    def succeeded(self, at: datetime | None = None) -> None:
        """Note a call Open ELMS answered."""
        with self._lock:
            self.last_success = at or utc_now()

    def failed(self, error: str, at: datetime | None = None) -> None:
        """Note a call that got no answer, a 5xx, or a refused token."""
        with self._lock:
            self.last_failure = at or utc_now()
            self.last_error = error

    def snapshot(self) -> dict[str, Any] | None:
        """Return the record as stored, or None before the first call."""
        with self._lock:
            if self.last_success is None and self.last_failure is None:
                return None
            return {
                "last_success": iso(self.last_success),
                "last_failure": iso(self.last_failure),
                "last_error": self.last_error,
            }


def merge(stored: dict[str, Any] | None, mine: dict[str, Any]) -> dict[str, Any]:
    """Return the stored record updated with this process's newer times."""
    if not stored:
        return dict(mine)
    merged = dict(stored)
    if newer(mine.get("last_success"), stored.get("last_success")):
        merged["last_success"] = mine["last_success"]
    if newer(mine.get("last_failure"), stored.get("last_failure")):
        merged["last_failure"] = mine["last_failure"]
        merged["last_error"] = mine.get("last_error")
    return merged


def newer(candidate: str | None, current: str | None) -> bool:
    """Say whether ISO time ``candidate`` is later than ``current``."""
    if candidate is None:
        return False
    if current is None:
        return True
    return datetime.fromisoformat(candidate) > datetime.fromisoformat(current)


def iso(value: datetime | None) -> str | None:
    """Return a time as ISO 8601, or None."""
    return None if value is None else value.isoformat()


# One per process, as the metrics are: every client of the worker reports
# to it, and the heartbeat job stores it.
CONTACT = ElmsContact()
