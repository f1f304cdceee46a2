"""``python -m bridge db ...``: apply and inspect migrations, purge old rows."""

from __future__ import annotations

import click

from bridge.cli import exit_config_error, fail, get_settings, print_json
from bridge.errors import ConfigError
from bridge.store import migrate


def require_known_schema(url: str) -> None:
    """Exit 2 with one config error when the database is newer than the code."""
    try:
        migrate.require_known(migrate.current(url))
    except ConfigError as exc:
        exit_config_error(exc)


@click.group()
def db() -> None:
    """Apply and inspect database migrations; purge old rows."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every pending migration."""
    url = get_settings(ctx).database_url
    require_known_schema(url)
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
    """Exit non-zero if the database is behind, ahead, or differs from the models.

    Behind or differing exits 1; a database newer than the code exits 2,
    as ``serve``, ``worker`` and ``run`` do when they refuse to start.
    """
    url = get_settings(ctx).database_url
    require_known_schema(url)
    if migrate.current(url) != migrate.head():
        fail(
            f"database at {migrate.current(url)}, code at {migrate.head()}; "
            "run: python -m bridge db upgrade"
        )
    differences = migrate.check(url)
    if differences:
        fail("schema differs from the models: " + "; ".join(differences))
    print_json({"current": migrate.current(url), "in_sync": True})


@db.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--batch", type=click.IntRange(1, 100000), help="Rows per transaction.")
@click.option(
    "--max-batches",
    type=click.IntRange(1),
    help="Batches per kind in this run (default 100).",
)
@click.pass_context
def db_purge(
    ctx: click.Context, dry_run: bool, batch: int | None, max_batches: int | None
) -> None:
    """Run housekeeping once: purge rows past their retention, print counts.

    Retention comes from the BRIDGE_RETAIN_* settings. The run takes the
    housekeeping lease, so it waits for no worker and runs beside none:
    when a worker is purging, it exits 1 and names that worker.
    """
    from bridge.cli.common import open_store
    from bridge.jobs.housekeeping import Housekeeper, HousekeepingConfig
    from bridge.jobs.scheduler import worker_name

    settings = get_settings(ctx)
    require_known_schema(settings.database_url)
    overrides = {"batch": batch, "max_batches": max_batches}
    config = HousekeepingConfig.from_settings(
        settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    store = open_store(ctx)
    housekeeper = Housekeeper(store, holder=f"cli-{worker_name()}", config=config)
    try:
        if dry_run:
            print_json({"dry_run": True, "due": housekeeper.count_due()})
            return
        report = housekeeper.run_once()
        if report is None:
            holder = housekeeper.lease.current()
            fail(f"housekeeping is running on {holder.holder if holder else '?'}")
        print_json(
            {
                "purged": report.purged,
                "batches": report.batches,
                "complete": report.complete,
            }
        )
    finally:
        store.dispose()
