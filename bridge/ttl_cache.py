"""A small time-to-live cache that computes a missing key once.

The resolver asks Open ELMS for the same user or the list of learning
resources from many threads at once; with this cache the first thread
asks and the others wait for its answer instead of asking again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

# Entries kept before expired ones are swept out.
CACHE_SWEEP_SIZE = 10_000


class TtlCache:
    """Keep values for a time each, and compute a missing key only once.

    A thread that misses while another computes the same key waits for
    that result (or its exception) instead of computing it again.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._flights: dict[Hashable, Future[Any]] = {}

    def get(
        self, key: Hashable, compute: Callable[[], T], ttl: Callable[[T], float]
    ) -> T:
        """Return the cached value of ``key``, computing it once if missing."""
        with self._lock:
            kept = self._values.get(key)
            if kept is not None and kept[0] > self.clock():
                return kept[1]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Future()

        if not leader:
            return flight.result()
        return self._compute(key, flight, compute, ttl)

    def _compute(
        self,
        key: Hashable,
        flight: Future[Any],
        compute: Callable[[], T],
        ttl: Callable[[T], float],
    ) -> T:
        """Compute ``key`` as the leading thread and hand the result to waiters."""
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._flights[key]
            flight.set_exception(exc)
            raise

        seconds = ttl(value)
        with self._lock:
            if seconds > 0:
                self._values[key] = (self.clock() + seconds, value)
                self._sweep()
            del self._flights[key]
        flight.set_result(value)
        return value

    def discard(self, key: Hashable) -> None:
        """Forget the value of one key."""
        with self._lock:
            self._values.pop(key, None)

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._values.clear()

    def _sweep(self) -> None:
        """Drop expired values, then the oldest, when too many are kept."""
        if len(self._values) <= CACHE_SWEEP_SIZE:
            return
        now = self.clock()
        for key in [k for k, (expires, _) in self._values.items() if expires <= now]:
            del self._values[key]
        while len(self._values) > CACHE_SWEEP_SIZE // 2:
            del self._values[next(iter(self._values))]
