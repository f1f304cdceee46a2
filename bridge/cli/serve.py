"""``serve`` runs the web process; ``run`` runs every part together."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bridge.cli import exit_config_error, get_settings
from bridge.cli.receiver import SECRET_ENV
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.metrics_dir import prepare as prepare_metrics
from bridge.outbound_types import ANY_EVENT_TYPE
from bridge.signing import new_secret
from bridge.supervisor import Part, Supervisor, wait_until_healthy

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

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
    # The gunicorn workers inherit the variable this sets; see metrics_dir.
    prepare_metrics(settings.metrics_dir, "web")
    try:
        upgrade(settings.database_url)
        SourceRegistry.from_file(settings.sources_file, None)
    except ConfigError as exc:
        exit_config_error(exc)
    serve_gunicorn(
        settings,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.web_workers,
    )


LOCAL_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "local"
TRY_STATEMENT = (
    '{"actor": {"mbox": "mailto:learner1@example.com"}, '
    '"verb": {"id": "http://adlnet.gov/expapi/verbs/completed"}, '
    '"object": {"id": "http://example.com/courses/fire-safety"}, '
    '"result": {"score": {"scaled": 0.85}}}'
)
LOOPBACK_NETWORK = "127.0.0.0/8"
RECEIVER_NOTE = "the local receiver of `make run`"


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run web and worker, and the sandbox when BRIDGE_ELMS_URL is unset.

    With the sandbox, and no sources or mappings file set, the local ones in
    deploy/local make the sandbox's seeded users and courses reachable. A
    local receiver, subscribed to every event type, logs each delivery.
    """
    from bridge.cli.db import require_known_schema

    settings = get_settings(ctx)
    require_known_schema(settings.database_url)
    parts = []
    env: dict[str, str] = {}

    if not settings.elms_url:
        env = sandbox_environment(settings)
        logger.info(
            "run: BRIDGE_ELMS_URL is unset; starting the sandbox at %s",
            settings.sandbox_url,
        )
        sandbox_args = ["sandbox", "--port", str(settings.sandbox_port)]
        sandbox_args += ["--site", settings.sandbox_site]
        parts.append(Part("sandbox", sandbox_args, env=env))
        parts.append(receiver_part(settings))
    parts.append(Part("web", ["serve"], env=env))
    parts.append(Part("worker", ["worker"], env=env))

    supervisor = Supervisor(parts)
    supervisor.start()
    base = f"http://{settings.host}:{settings.port}"
    if wait_until_healthy(f"{base}/healthz", stop=lambda: supervisor.stopping):
        announce(base, settings, sandboxed=not settings.elms_url)
    sys.exit(supervisor.wait())


def sandbox_environment(settings: Settings) -> dict[str, str]:
    """Return the variables that point web and worker at the local sandbox."""
    env = {
        "BRIDGE_ELMS_URL": settings.sandbox_url,
        "BRIDGE_ELMS_TOKEN": settings.sandbox_token,
        "BRIDGE_SANDBOX_TOKEN": settings.sandbox_token,
    }
    if not settings.sources_file:
        env["BRIDGE_SOURCES_FILE"] = str(LOCAL_CONFIG / "sources.yaml")
    if not settings.mappings_file:
        env["BRIDGE_MAPPINGS_FILE"] = str(LOCAL_CONFIG / "mappings.yaml")

    networks = dict.fromkeys((*settings.allow_private_targets, LOOPBACK_NETWORK))
    env["BRIDGE_ALLOW_PRIVATE_TARGETS"] = ",".join(networks)
    return env


def receiver_part(settings: Settings) -> Part:
    """Subscribe the local receiver to every event type; return its part.

    Each run signs with a fresh secret: the receiver's subscription, found
    by its URL, is added the first time and re-keyed (no grace) after.
    The secret reaches the child in its environment, not its arguments.
    """
    from bridge.store.db import create_store
    from bridge.store.migrate import upgrade

    url = f"http://127.0.0.1:{settings.receiver_port}/"
    secret = new_secret()
    upgrade(settings.database_url)
    store = create_store(settings.database_url)
    with store.session() as session:
        subscription_id = subscribe_receiver(session, url, secret)

    logger.info("run: receiver at %s (subscription %s)", url, subscription_id)
    args = ["receiver", "--port", str(settings.receiver_port)]
    return Part("receiver", args, env={SECRET_ENV: secret})


def subscribe_receiver(session: Session, url: str, secret: str) -> str:
    """Add or re-key the receiver's subscription to ``*``; return its id."""
    from bridge.store import subscription_queries as queries

    for row in queries.list_subscriptions(session):
        if row.url == url:
            queries.update_subscription(
                session, row.id, event_types=[ANY_EVENT_TYPE], enabled=True
            )
            queries.rotate_secret(session, row.id, grace_seconds=0, new_secret=secret)
            return row.id

    row = queries.add_subscription(
        session,
        url=url,
        event_types=[ANY_EVENT_TYPE],
        description=RECEIVER_NOTE,
        secret=secret,
    )
    return row.id


def announce(base: str, settings: Settings, *, sandboxed: bool) -> None:
    """Log where everything answers and a curl line to try."""
    logger.info("run: web process ready at %s (health: %s/healthz)", base, base)
    if not sandboxed:
        return
    logger.info(
        "run: sandbox at %s; its call log at http://127.0.0.1:%d/_sandbox/calls",
        settings.sandbox_url,
        settings.sandbox_port,
    )
    logger.info(
        "run: try: curl -u player:s3cret -H 'Content-Type: application/json' "
        "%s/hooks/storyline -d '%s'",
        base,
        TRY_STATEMENT,
    )
    logger.info(
        "run: deliveries to the local receiver are logged as 'receiver: ...' lines"
    )
