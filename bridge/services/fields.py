"""Marshmallow fields the resources' schemas share."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import fields, validate

from bridge.services.pages import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE


def timestamp(**kwargs: Any) -> fields.String:
    """Return an output field for a time the services already give in ISO 8601."""
    return fields.String(metadata={"format": "date-time"}, **kwargs)


def nullable_timestamp() -> fields.String:
    """Return an output field for an ISO 8601 time that may be null."""
    return timestamp(allow_none=True)


def aware_time(**kwargs: Any) -> fields.AwareDateTime:
    """Return an input field for an ISO 8601 time; one without offset is UTC."""
    return fields.AwareDateTime(default_timezone=dt.UTC, **kwargs)


def page_limit() -> fields.Integer:
    """Return the ``limit`` query field of a paged listing."""
    return fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(1, MAX_PAGE_SIZE),
        metadata={"description": f"Page size, at most {MAX_PAGE_SIZE}."},
    )


def page_cursor() -> fields.String:
    """Return the ``cursor`` query field of a paged listing."""
    return fields.String(
        load_default=None,
        validate=validate.Length(1, MAX_CURSOR_LENGTH),
        metadata={"description": "`next_cursor` of the previous page."},
    )


def short_text(max_length: int = 64, **kwargs: Any) -> fields.String:
    """Return a text field of 1 to ``max_length`` characters."""
    return fields.String(validate=validate.Length(1, max_length), **kwargs)
