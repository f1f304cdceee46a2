"""Write the intake of several concurrent requests in one SQLite transaction.

SQLite lets one writer in at a time and every commit is synced to disk, so
one transaction per request makes the web threads queue for the file and
pay a sync each. Here the threads of a process hand their intake to one
writer thread, which stores whatever has gathered with one lookup and one
insert per table (``intake_queries.record_intakes``) in a single
transaction, and answers each request when the commit is on disk. Every
request is still answered only after its own rows are durable; a request
refused (409) is refused alone, since its checks fail before any of its
rows are written.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bridge.store.intake_queries import IntakeWrite, record_intakes
from bridge.store.writers import FileTurn

if TYPE_CHECKING:
    from bridge.store.db import Store
    from bridge.store.models import IntakeOutcome

logger = logging.getLogger(__name__)

MAX_BATCH = 64


@dataclass
class _Job:
    """One request's write and the future its thread waits on."""

    write: IntakeWrite
    done: Future[IntakeOutcome] = field(default_factory=Future)


class GroupCommitter:
    """One writer thread per process that batches intake writes."""

    def __init__(self, store: Store, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        database = store.engine.url.database or ""
        on_file = database not in ("", ":memory:")
        self._file_turn = FileTurn(database) if on_file else None
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid = 0

    def write(self, write: IntakeWrite) -> IntakeOutcome:
        """Store ``write`` in the next batch; return its outcome once committed.

        Raises:
            ConflictError: an event id of the request came back with other
                content; nothing of the request was written.
        """
        self._ensure_thread()
        job = _Job(write)
        self._jobs.put(job)
        return job.done.result()

    def _ensure_thread(self) -> None:
        """Start the writer thread in this process (again after a fork)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._jobs = queue.SimpleQueue()
                thread = threading.Thread(
                    target=self._run, name="intake-writer", daemon=True
                )
                thread.start()
                self._pid = os.getpid()

    def _run(self) -> None:
        """Take the gathered jobs, write them together, answer each; forever."""
        jobs = self._jobs
        while True:
            batch = [jobs.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(jobs.get_nowait())
                except queue.Empty:
                    break
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Job]) -> None:
        """Write a batch in one transaction; on a failure, write jobs one by one."""
        try:
            with self._turn(), self.store.write_connection() as connection:
                outcomes = record_intakes(connection, [job.write for job in batch])
        except Exception as exc:  # noqa: BLE001 - each job is retried alone below
            if len(batch) == 1:
                logger.exception("intake write failed")
                self._fail(batch[0], exc)
                return
            logger.warning("intake batch of %d failed; writing one by one", len(batch))
            for job in batch:
                self._write_batch([job])
            return

        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                job.done.set_exception(outcome)
            else:
                job.done.set_result(outcome)

    def _turn(self) -> AbstractContextManager[None]:
        """Return the cross-process write turn (a no-op for a memory database)."""
        return self._file_turn.hold() if self._file_turn else nullcontext()

    @staticmethod
    def _fail(job: _Job, exc: Exception) -> None:
        """Answer a job whose write failed on its own with that failure.

        The web layer turns a database that cannot be reached into a 503
        and anything else into a 500 that says it was logged.
        """
        job.done.set_exception(exc)
