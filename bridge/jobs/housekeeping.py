"""Housekeeping: purge rows that are old and finished, in short batches.

Each kind of row has its own retention (``BRIDGE_RETAIN_*`` in days; 0
keeps that kind for ever): raw request bodies go first, finished events
and their requests when the dedupe window has passed, delivered
deliveries with their attempts, failed work last. Pending work is never
touched. A batch is one short transaction, so the web process and the
other jobs wait for at most one batch; a run stops after ``max_batches``
batches of a kind and the next run takes the rest.

Only one node purges at a time: a run first takes the ``housekeeping``
leader lease (``bridge.store.leadership``) and renews it between batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bridge.config import (
    DEFAULT_HOUSEKEEPING_BATCH,
    DEFAULT_RETAIN_DEDUPE_DAYS,
    DEFAULT_RETAIN_DELIVERED_DAYS,
    DEFAULT_RETAIN_FAILED_DAYS,
    DEFAULT_RETAIN_RAW_DAYS,
)
from bridge.jobs.dispatch import Clock, utc_now
from bridge.store import purge_queries as pq
from bridge.store.leadership import LeaderLease

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.store.db import Store
    from bridge.store.purge_queries import PurgeKind

logger = logging.getLogger(__name__)

LEASE_NAME = "housekeeping"
# Renewed after every batch, so it only has to outlast one batch; a node
# that dies mid-run frees it this long after.
DEFAULT_LEASE_SECONDS = 300.0
DEFAULT_MAX_BATCHES = 100  # per kind and run
DEFAULT_HEARTBEAT_DAYS = 7.0  # a worker silent this long is gone for good


@dataclass(frozen=True)
class HousekeepingConfig:
    """Retention in days per kind (0 keeps it) and the size of the work."""

    raw_days: float = DEFAULT_RETAIN_RAW_DAYS
    dedupe_days: float = DEFAULT_RETAIN_DEDUPE_DAYS
    delivered_days: float = DEFAULT_RETAIN_DELIVERED_DAYS
    failed_days: float = DEFAULT_RETAIN_FAILED_DAYS
    heartbeat_days: float = DEFAULT_HEARTBEAT_DAYS
    batch: int = DEFAULT_HOUSEKEEPING_BATCH
    max_batches: int = DEFAULT_MAX_BATCHES
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> HousekeepingConfig:
        """Return the config from ``BRIDGE_RETAIN_*`` and ``BRIDGE_HOUSEKEEPING_*``."""
        values: dict[str, Any] = {
            "raw_days": settings.retain_raw_days,
            "dedupe_days": settings.retain_dedupe_days,
            "delivered_days": settings.retain_delivered_days,
            "failed_days": settings.retain_failed_days,
            "batch": settings.housekeeping_batch,
        }
        values.update(overrides)
        return cls(**values)

    def cutoff(self, kind: PurgeKind, now: datetime) -> datetime | None:
        """Return the time before which rows of ``kind`` may go; None: keep."""
        days = float(getattr(self, kind.retention))
        if days <= 0:
            return None
        return now - timedelta(days=days)


@dataclass
class PurgeReport:
    """What one run purged: rows per kind (children too) and batches per kind.

    ``complete`` is False when a kind hit the batch cap or the lease was
    lost, so rows that may go are left for the next run.
    """

    purged: dict[str, int] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)
    complete: bool = True

    def add(self, kind: str, counts: dict[str, int]) -> None:
        """Count one batch of ``kind`` and the rows it removed."""
        self.batches[kind] = self.batches.get(kind, 0) + 1
        for name, count in counts.items():
            self.purged[name] = self.purged.get(name, 0) + count

    @property
    def total(self) -> int:
        """Return every row the run removed or cleared."""
        return sum(self.purged.values())


class Housekeeper:
    """Purge old, finished rows; one instance per process, one run at a time."""

    def __init__(
        self,
        store: Store,
        *,
        holder: str,
        config: HousekeepingConfig | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.holder = holder
        self.config = config or HousekeepingConfig()
        self.clock = clock
        self.lease = LeaderLease(
            store, LEASE_NAME, holder, ttl=self.config.lease_seconds, clock=clock
        )

    def run_once(self) -> PurgeReport | None:
        """Run one purge pass; None when another node holds the lease."""
        if not self.lease.acquire():
            logger.debug("housekeeping %s: another node is purging", self.holder)
            return None

        try:
            report = self.purge(self.clock())
        finally:
            self.lease.release()

        level = logging.INFO if report.total else logging.DEBUG
        logger.log(
            level,
            "housekeeping %s: %d row(s) purged%s",
            self.holder,
            report.total,
            "" if report.complete else "; more left for the next run",
        )
        return report

    def purge(self, now: datetime) -> PurgeReport:
        """Purge every kind whose retention is set, in order."""
        report = PurgeReport()
        for kind in pq.PURGE_KINDS:
            cutoff = self.config.cutoff(kind, now)
            if cutoff is None:
                continue
            if not self.purge_kind(kind, cutoff, report):
                report.complete = False
                break
        return report

    def purge_kind(
        self, kind: PurgeKind, cutoff: datetime, report: PurgeReport
    ) -> bool:
        """Purge ``kind`` batch by batch; False if the lease was lost meanwhile."""
        kept = report.purged.copy()
        finished, held = self.purge_batches(kind, cutoff, report)

        counts = {
            name: count - kept.get(name, 0)
            for name, count in report.purged.items()
            if count != kept.get(name, 0)
        }
        if counts:
            self.log_kind(kind, counts, report.batches.get(kind.name, 0))
        if held and not finished:
            report.complete = False
            logger.info(
                "housekeeping %s: %s: batch cap reached; the rest waits",
                self.holder,
                kind.name,
            )
        return held

    def purge_batches(
        self, kind: PurgeKind, cutoff: datetime, report: PurgeReport
    ) -> tuple[bool, bool]:
        """Run batches of ``kind``; return (nothing left, lease still held)."""
        batch = self.config.batch
        for _ in range(self.config.max_batches):
            with self.store.session() as session:
                ids = pq.select_batch(session, kind, cutoff, batch)
                counts = pq.purge_batch(session, kind, ids)
            if not ids:
                return True, True

            report.add(kind.name, counts)
            if len(ids) < batch:
                return True, True
            if not self.lease.acquire():
                logger.warning(
                    "housekeeping %s: lost the lease during %s; stopping",
                    self.holder,
                    kind.name,
                )
                return False, False
        return False, True

    def log_kind(self, kind: PurgeKind, counts: dict[str, int], batches: int) -> None:
        """Log what was purged of one kind, the kind's own rows first."""
        children = ", ".join(
            f"{count} {name}" for name, count in counts.items() if name != kind.name
        )
        logger.info(
            "housekeeping %s: %s: %d row(s) in %d batch(es)%s",
            self.holder,
            kind.name,
            counts.get(kind.name, 0),
            batches,
            f", with {children}" if children else "",
        )

    def count_due(self) -> dict[str, int]:
        """Return how many rows of each kind would go now, purging nothing."""
        now = self.clock()
        due: dict[str, int] = {}
        with self.store.session(write=False) as session:
            for kind in pq.PURGE_KINDS:
                cutoff = self.config.cutoff(kind, now)
                if cutoff is not None:
                    due[kind.name] = pq.count_due(session, kind, cutoff)
        return due
