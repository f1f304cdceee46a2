"""Helpers the command groups share: the store, key=value options."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

import click

from bridge.cli import exit_config_error, fail, get_settings
from bridge.errors import AdminError, ConfigError, InvalidInputError
from bridge.store.db import create_store
from bridge.store.migrate import upgrade

if TYPE_CHECKING:
    from bridge.store.db import Store


def open_store(ctx: click.Context) -> Store:
    """Return the configured store, migrated to the current schema.

    A database newer than this code stops the command with one line per
    problem and exit code 2, as a settings mistake does.
    """
    settings = get_settings(ctx)
    try:
        upgrade(settings.database_url)
    except ConfigError as exc:
        exit_config_error(exc)
    return create_store(settings.database_url)


def fail_with(exc: AdminError) -> NoReturn:
    """Exit with an operation's error: 2 and the first mistake for bad input, else 1.

    A field mistake is printed without its field path: on the command line
    the option names the field already.
    """
    if isinstance(exc, InvalidInputError):
        first = next(iter(exc.errors.values()), [exc.message])
        fail(first[0], code=2)
    fail(exc.message)


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
