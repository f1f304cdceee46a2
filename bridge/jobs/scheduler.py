"""Wire the worker's jobs into APScheduler; nothing else lives here.

The dispatch job runs every ``dispatch_interval`` seconds and drains what
is due, so a new event reaches Open ELMS within a second when the worker
is idle. ``coalesce`` and ``max_instances=1`` keep one run of each job at a
time in this process; several processes share the work through leases.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bridge.jobs.heartbeat import beat

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.jobs.deliver import Deliverer
    from bridge.jobs.dispatch import Dispatcher
    from bridge.jobs.housekeeping import Housekeeper
    from bridge.jobs.poll import Poller
    from bridge.store.db import Store

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
POLL_TICK_SECONDS = 5.0  # pairs come due on their own schedule; this is reaction time
# The first purge comes soon after start, so frequent restarts cannot starve it.
HOUSEKEEPING_FIRST_DELAY = 60.0


def worker_name() -> str:
    """Return a name unique to this worker process: host, pid, random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def build_scheduler(
    settings: Settings,
    store: Store,
    dispatcher: Dispatcher,
    poller: Poller | None = None,
    deliverer: Deliverer | None = None,
    housekeeper: Housekeeper | None = None,
) -> BackgroundScheduler:
    """Return a scheduler with dispatch, probe, heartbeat, and the jobs given."""
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )
    scheduler.add_job(
        dispatcher.drain,
        "interval",
        id="dispatch",
        seconds=settings.dispatch_interval,
    )
    scheduler.add_job(
        dispatcher.probe,
        "interval",
        id="auth-probe",
        seconds=settings.auth_probe_interval,
    )
    if deliverer is not None:
        # wait=False: a pass must not wait for its slowest subscriber.
        scheduler.add_job(
            deliverer.run_once,
            "interval",
            id="deliver",
            seconds=settings.dispatch_interval,
            kwargs={"wait": False, "refill": True},
        )
    if poller is not None:
        scheduler.add_job(
            poller.run_once, "interval", id="poll", seconds=POLL_TICK_SECONDS
        )
    if housekeeper is not None:
        scheduler.add_job(
            housekeeper.run_once,
            "interval",
            id="housekeeping",
            seconds=settings.housekeeping_interval,
            next_run_time=datetime.now(UTC)
            + timedelta(seconds=HOUSEKEEPING_FIRST_DELAY),
        )
    scheduler.add_job(
        beat,
        "interval",
        id="heartbeat",
        seconds=HEARTBEAT_SECONDS,
        args=[store, dispatcher.worker],
        next_run_time=datetime.now(UTC),  # readiness need not wait a period
    )
    return scheduler
