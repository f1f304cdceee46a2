"""Offer the ``sandbox`` command, which serves the Open ELMS stand-in."""

from __future__ import annotations

import logging

import click

from bridge.sandbox.app import DEFAULT_SITE, DEFAULT_TOKEN, SandboxConfig
from bridge.sandbox.faults import FaultSettings
from bridge.sandbox.server import LOOPBACK, serve_forever

DEFAULT_PORT = 8081


@click.command()
@click.option("--host", default=LOOPBACK, show_default=True, help="Interface.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    help="TCP port; 0 picks a free one.",
)
@click.option(
    "--token",
    envvar="BRIDGE_SANDBOX_TOKEN",
    default=DEFAULT_TOKEN,
    show_envvar=True,
    help="API token clients must send as 'Authorization: Basic <token>'.",
)
@click.option("--site", default=DEFAULT_SITE, show_default=True, help="Site id.")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    help="SQLite file keeping users, learning and progress across restarts.",
)
@click.option(
    "--latency-ms",
    type=click.IntRange(0, 60_000),
    default=0,
    help="Delay added to every documented call.",
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Fraction of documented calls answered 500.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per second allowed; the excess gets 503 and Retry-After.",
)
@click.option("--outage", is_flag=True, help="Answer every documented call 503.")
@click.option("--seed-random", type=int, default=None, help="Seed for --error-rate.")
def sandbox(
    host: str,
    port: int,
    token: str,
    site: str,
    db_path: str | None,
    latency_ms: int,
    error_rate: float,
    rate_limit: int | None,
    outage: bool,
    seed_random: int | None,
) -> None:
    """Serve an Open ELMS stand-in with seeded data and injectable faults."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    faults = FaultSettings(
        latency_ms=latency_ms,
        error_rate=error_rate,
        rate_limit=rate_limit,
        outage=outage,
    )
    config = SandboxConfig(
        token=token, site=site, db_path=db_path, faults=faults, seed_random=seed_random
    )
    try:
        serve_forever(config, host=host, port=port)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--site") from exc
