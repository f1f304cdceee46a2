"""Gather the figures for one scrape: shared files, the outbox, or this process.

Used by the web process's ``/metrics`` and by the worker's own metrics
port. Under ``serve`` and ``worker`` every process writes its figures to
files in a shared directory (see :mod:`bridge.metrics_dir`), and a scrape
merges the files of every process group under the root. Without that
directory (an app made in a test, say) the process's own registry
answers. The outbox figures are read from the database at scrape time, so
every process gives the same answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.exc import SQLAlchemyError

from bridge.metrics_dir import shared_root
from bridge.store import status_queries

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from bridge.config import Settings
    from bridge.store.db import Store

logger = logging.getLogger(__name__)

# A stale group's files can vanish between listing and reading them.
MERGE_ATTEMPTS = 3


class SharedFilesCollector:
    """Merge the metric files of every process group under one root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterable[Metric]:
        """Return the merged figures of every live and finished process."""
        for attempt in range(MERGE_ATTEMPTS):
            files = sorted(str(path) for path in self.root.glob("*/*.db"))
            try:
                return MultiProcessCollector.merge(files, accumulate=True)
            except FileNotFoundError:
                if attempt == MERGE_ATTEMPTS - 1:
                    raise
        return []


class ProcessCollector:
    """Pass on this process's own registry (outside multiprocess mode)."""

    def collect(self) -> Iterable[Metric]:
        """Return the default registry's figures."""
        return REGISTRY.collect()


class OutboxCollector:
    """Report the queues' depth and oldest item's age from the database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """Yield depth and oldest age per queue; nothing if the database is down."""
        try:
            with self.store.session(write=False) as session:
                queues = status_queries.outbox_summaries(session)
        except SQLAlchemyError as exc:
            logger.warning("metrics: outbox figures left out: %s", type(exc).__name__)
            return

        depth = GaugeMetricFamily(
            "bridge_outbox_depth",
            "Items waiting: events for Open ELMS, deliveries for subscribers.",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "bridge_outbox_oldest_age_seconds",
            "Age of the oldest waiting item (0 when none waits).",
            labels=["queue"],
        )
        now = datetime.now(UTC)
        for queue in queues:
            depth.add_metric([queue.name], queue.depth)
            age = 0.0 if queue.oldest is None else (now - queue.oldest).total_seconds()
            oldest.add_metric([queue.name], max(0.0, age))
        yield depth
        yield oldest


def build_registry(store: Store) -> CollectorRegistry:
    """Return a registry that gathers every figure when it is scraped."""
    registry = CollectorRegistry()
    root = shared_root()
    if root is not None:
        registry.register(SharedFilesCollector(root))
    else:
        registry.register(ProcessCollector())
    registry.register(OutboxCollector(store))
    return registry


def serve_worker_metrics(settings: Settings, store: Store) -> WSGIServer | None:
    """Serve ``/metrics`` from the worker when its port is set; else do nothing.

    For a worker the web process cannot see: another machine or pod, whose
    metrics directory is its own. Runs in a daemon thread, which ends with
    the process.
    """
    port = settings.worker_metrics_port
    if port is None:
        return None
    server, _ = start_http_server(
        port, addr=settings.host, registry=build_registry(store)
    )
    logger.info("metrics: worker figures at http://%s:%d/metrics", settings.host, port)
    return server
