"""``python -m bridge worker``: the process that runs the scheduled jobs."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

from bridge.cli import exit_config_error, fail, get_settings
from bridge.errors import ConfigError
from bridge.metrics_dir import prepare as prepare_metrics

logger = logging.getLogger(__name__)


@click.command()
@click.option("--once", is_flag=True, help="Apply what is due now, then exit.")
@click.pass_context
def worker(ctx: click.Context, once: bool) -> None:
    """Run the worker: dispatch stored events to Open ELMS, retry, probe.

    SIGTERM (or Ctrl-C) stops claiming new events, lets the call in flight
    finish, gives back unstarted claims, and exits.
    """
    # Before the imports below: they load the metrics (see metrics_dir).
    prepare_metrics(get_settings(ctx).metrics_dir, "worker")

    from bridge.jobs.deliver import Deliverer, DeliveryConfig
    from bridge.jobs.groups import GroupMembership
    from bridge.jobs.housekeeping import Housekeeper, HousekeepingConfig
    from bridge.jobs.scheduler import build_scheduler
    from bridge.metrics_collect import serve_worker_metrics
    from bridge.worker import build_dispatcher, build_poller

    settings = get_settings(ctx)
    if not settings.elms_url or not settings.elms_token:
        fail("set BRIDGE_ELMS_URL and BRIDGE_ELMS_TOKEN (or use `run`)", code=2)
    try:
        store, dispatcher = build_dispatcher(settings)
    except ConfigError as exc:
        exit_config_error(exc)

    if once:
        applied = dispatcher.drain(max_seconds=60)
        click.echo(f"applied {applied} events")
        return

    poller = build_poller(settings, store, dispatcher.worker)
    deliverer = Deliverer(
        store,
        worker=dispatcher.worker,
        config=DeliveryConfig.from_settings(settings),
        membership=GroupMembership(dispatcher.client),
    )
    housekeeper = Housekeeper(
        store,
        holder=dispatcher.worker,
        config=HousekeepingConfig.from_settings(settings),
    )
    scheduler = build_scheduler(
        settings, store, dispatcher, poller, deliverer, housekeeper
    )
    stop_requested = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        # Only flags here: the handler may interrupt this thread while it
        # holds a scheduler lock, and shutting down from it can deadlock.
        logger.info("worker %s: stopping (signal %d)", dispatcher.worker, signum)
        dispatcher.stopping.set()
        stop_requested.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("worker %s: dispatching to %s", dispatcher.worker, settings.elms_url)
    serve_worker_metrics(settings, store)
    scheduler.start()
    while not stop_requested.wait(1.0):
        pass
    scheduler.shutdown(wait=True)
    deliverer.close()
    store.dispose()
    logger.info("worker %s: stopped", dispatcher.worker)
