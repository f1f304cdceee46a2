"""``serve`` runs the web process; ``run`` runs every part together."""

from __future__ import annotations

import logging
import sys

import click

from bridge.cli import get_settings
from bridge.errors import ConfigError
from bridge.supervisor import Part, Supervisor, wait_until_healthy

logger = logging.getLogger(__name__)


@click.command()
@click.option("--host", help="Address to bind; default BRIDGE_HOST.")
@click.option("--port", type=int, help="Port; default BRIDGE_PORT.")
@click.option("--workers", type=click.IntRange(1, 64), help="gunicorn workers.")
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, workers: int | None
) -> None:
    """Serve the web process (inbound hooks, health) with gunicorn.

    Migrations are applied and the sources file checked once, here, before
    the workers start, so a mistake stops the start with a clear message.
    """
    from bridge.registry import SourceRegistry
    from bridge.store.migrate import upgrade
    from bridge.web.server import serve as serve_gunicorn

    settings = get_settings(ctx)
    upgrade(settings.database_url)
    try:
        SourceRegistry.from_file(settings.sources_file, None)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"config error: {problem}", err=True)
        sys.exit(2)
    serve_gunicorn(
        settings,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.web_workers,
    )


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run web and worker, and the sandbox when BRIDGE_ELMS_URL is unset."""
    settings = get_settings(ctx)
    parts = []
    elms_env: dict[str, str] = {}

    if not settings.elms_url:
        logger.info(
            "run: BRIDGE_ELMS_URL is unset; starting the sandbox at %s",
            settings.sandbox_url,
        )
        parts.append(
            Part(
                "sandbox",
                [
                    "sandbox",
                    "--port",
                    str(settings.sandbox_port),
                    "--site",
                    settings.sandbox_site,
                ],
                env={"BRIDGE_SANDBOX_TOKEN": settings.sandbox_token},
            )
        )
        elms_env = {
            "BRIDGE_ELMS_URL": settings.sandbox_url,
            "BRIDGE_ELMS_TOKEN": settings.sandbox_token,
        }
    parts.append(Part("web", ["serve"], env=elms_env))
    parts.append(Part("worker", ["worker"], env=elms_env))

    supervisor = Supervisor(parts)
    supervisor.start()
    base = f"http://{settings.host}:{settings.port}"
    if wait_until_healthy(f"{base}/healthz", stop=lambda: supervisor.stopping):
        logger.info("run: web process ready at %s (try: curl %s/healthz)", base, base)
    sys.exit(supervisor.wait())
