"""``python -m bridge db ...``: apply and inspect schema migrations."""

from __future__ import annotations

import click

from bridge.cli import fail, get_settings, print_json
from bridge.store import migrate


@click.group()
def db() -> None:
    """Apply and inspect database migrations."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every pending migration."""
    url = get_settings(ctx).database_url
    migrate.upgrade(url)
    print_json({"current": migrate.current(url), "head": migrate.head()})


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Print the database's revision and the code's head revision."""
    url = get_settings(ctx).database_url
    print_json({"current": migrate.current(url), "head": migrate.head()})


@db.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """Exit non-zero if the database is behind or differs from the models."""
    url = get_settings(ctx).database_url
    if migrate.current(url) != migrate.head():
        fail(
            f"database at {migrate.current(url)}, code at {migrate.head()}; "
            "run: python -m bridge db upgrade"
        )
    differences = migrate.check(url)
    if differences:
        fail("schema differs from the models: " + "; ".join(differences))
    print_json({"current": migrate.current(url), "in_sync": True})
