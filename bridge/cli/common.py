"""Helpers the command groups share: the store, key=value options."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from bridge.cli import get_settings
from bridge.store.db import create_store
from bridge.store.migrate import upgrade

if TYPE_CHECKING:
    from bridge.store.db import Store


def open_store(ctx: click.Context) -> Store:
    """Return the configured store, migrated to the current schema."""
    settings = get_settings(ctx)
    upgrade(settings.database_url)
    return create_store(settings.database_url)


def parse_pairs(
    pairs: tuple[str, ...], what: str, *, text_keys: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Return ``key=value`` pairs as a dict; values are JSON when they parse.

    So ``--option trust_lms_satisfied=false`` gives a boolean and
    ``--option course_id=C-1`` a string. Keys in ``text_keys`` stay text,
    as credentials must (a password may well be ``12345``).
    """
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=what)
        if key.strip() in text_keys:
            parsed[key.strip()] = value
            continue
        try:
            parsed[key.strip()] = json.loads(value)
        except ValueError:
            parsed[key.strip()] = value
    return parsed
