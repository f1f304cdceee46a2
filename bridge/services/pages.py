"""Cursor pagination: opaque cursors over (newest first) listings.

A cursor wraps the id of the last row of a page, with the kind of listing,
in URL-safe base64, so clients treat it as opaque and a cursor of one
listing is refused by another instead of giving an odd page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from bridge.services.inputs import invalid_field

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_CURSOR_LENGTH = 512


@dataclass(frozen=True)
class Page:
    """One page of a listing and the cursor of the next, None on the last."""

    items: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the page as the API answers it."""
        return {"items": self.items, "next_cursor": self.next_cursor}


def encode_cursor(kind: str, last_id: str) -> str:
    """Return the cursor of the page after the row ``last_id``."""
    raw = json.dumps({"k": kind, "after": last_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> str:
    """Return the row id a cursor of listing ``kind`` wraps.

    Raises:
        InvalidInputError: the cursor was not given out by this listing.
    """
    refused = invalid_field("cursor", "is not a cursor of this listing")
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise refused
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise refused from None

    if not isinstance(data, dict) or data.get("k") != kind:
        raise refused
    after = data.get("after")
    if not isinstance(after, str) or not after:
        raise refused
    return after


def page_of(kind: str, rows: list[Any], limit: int, shown: Any) -> Page:
    """Return a page from ``limit + 1`` rows; the extra row says there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(kind, rows[-1].id) if more and rows else None
    return Page([shown(row) for row in rows], cursor)
