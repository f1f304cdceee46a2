"""Housekeeping as the worker wires it: settings, lease holder, schedule."""

from __future__ import annotations

from datetime import timedelta

from bridge.config import Settings
from bridge.jobs.housekeeping import Housekeeper, HousekeepingConfig
from bridge.jobs.scheduler import build_scheduler
from bridge.worker import build_dispatcher


def test_config_takes_retention_and_batch_from_settings():
    settings = Settings(
        retain_raw_days=2,
        retain_dedupe_days=9,
        retain_delivered_days=3,
        retain_failed_days=40,
        housekeeping_batch=25,
    )

    config = HousekeepingConfig.from_settings(settings, max_batches=7)

    assert (config.raw_days, config.dedupe_days) == (2, 9)
    assert (config.delivered_days, config.failed_days) == (3, 40)
    assert (config.batch, config.max_batches) == (25, 7)


def test_worker_schedules_housekeeping_at_the_set_interval(tmp_path):
    settings = Settings(
        elms_url="http://127.0.0.1:9/site/backend",
        elms_token="t",  # noqa: S106 - nothing is called
        database_url=f"sqlite:///{tmp_path / 'bridge.db'}",
        housekeeping_interval=120,
    )
    store, dispatcher = build_dispatcher(settings)
    housekeeper = Housekeeper(store, holder=dispatcher.worker)

    scheduler = build_scheduler(settings, store, dispatcher, housekeeper=housekeeper)
    job = scheduler.get_job("housekeeping")
    without = build_scheduler(settings, store, dispatcher)

    assert job is not None
    assert job.trigger.interval == timedelta(seconds=120)
    assert job.func == housekeeper.run_once
    assert without.get_job("housekeeping") is None
    assert housekeeper.lease.holder == dispatcher.worker
    dispatcher.client.close()
    store.dispose()
