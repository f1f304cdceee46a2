"""Take turns at a SQLite file across processes without sleeping.

A SQLite writer that finds the file locked waits in SQLite's busy handler,
which sleeps in growing steps (up to 100 ms) before it looks again; with
two web processes most of a slow request's time went to such sleeps while
the lock sat free. Writers take turns on ``flock`` of a file beside the
database instead, and the kernel wakes the next one as soon as the holder
is done.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FileTurn:
    """One writer at a time for one SQLite file, across processes."""

    def __init__(self, database: str) -> None:
        self.path = Path(database + ".writelock")
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the file's write turn for the block (not re-entrant)."""
        with self._lock:
            descriptor = self._descriptor()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)

    def _descriptor(self) -> int:
        """Return this process's descriptor of the lock file, opened once.

        A forked child opens its own: a descriptor shared across a fork
        shares its lock too.
        """
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd
