"""Offer the ``receiver`` command, a local subscriber that logs deliveries."""

from __future__ import annotations

import click

from bridge.receiver import DEFAULT_PORT, serve_forever
from bridge.signing import check_secret

SECRET_ENV = "BRIDGE_RECEIVER_SECRET"  # noqa: S105 - a variable's name


def parse_secret(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Return a checked ``whsec_`` secret, or stop with the reason."""
    try:
        return check_secret(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--secret",
    envvar=SECRET_ENV,
    show_envvar=True,
    required=True,
    callback=parse_secret,
    help="The subscription's whsec_ secret, to verify signatures with.",
)
def receiver(port: int, secret: str) -> None:
    """Serve a webhook receiver on loopback that verifies and logs deliveries.

    It takes deliveries at POST / only (any other path is a 404), so the
    subscription's URL is http://127.0.0.1:PORT/.
    """
    serve_forever(secret, port)
