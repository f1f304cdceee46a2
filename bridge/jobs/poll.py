"""Poll: read tracked pairs' progress from Open ELMS and announce changes.

One pass expands watch scopes into tracked pairs (each scope on its first
pass, then again every ``watch_refresh`` seconds), claims the pairs due,
reads each one's progress, and records a transition, with cause ``elms``,
when it differs from what the bridge last saw. A pair's first poll is its
baseline: history before tracking began is not announced.

Cost: one ``GET learning/{lid}/{uid}`` per due pair, so a pass over N due
pairs makes N calls (plus, when a scope is expanded, one call for a user or
group scope and one ``GET users/`` for a learning scope). In progress pairs
are polled every minute, not attempted ones every five, completed ones only
by the daily reconciliation; ``max_calls``, ``rate`` and ``concurrency``
bound a pass. A 503 stops the pass (calls in flight finish, no new one
starts), and no worker polls again before its ``Retry-After``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from bridge.elms_shapes import Status
from bridge.errors import (
    ElmsAuthError,
    ElmsError,
    ElmsNotFoundError,
    ElmsTransportError,
    ElmsUnavailableError,
)
from bridge.jobs.dispatch import utc_now
from bridge.metrics import POLL_CALLS, POLL_CYCLES, POLL_SECONDS
from bridge.store import dispatch_queries as dq
from bridge.store import poll_queries as pq

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.elms import OpenElmsClient
    from bridge.elms_shapes import Progress
    from bridge.store.db import Store
    from bridge.store.poll_queries import TrackedPairRow, WatchScopeRow

logger = logging.getLogger(__name__)

BACKOFF_KEY = "poll_backoff"
# Errors every further call of the pass would meet too: the pass stops.
SITE_ERRORS = (ElmsUnavailableError, ElmsAuthError, ElmsTransportError)
Clock = Callable[[], datetime]
T = TypeVar("T")

DEFAULT_POLL_INTERVAL_IN_PROGRESS = 60.0
DEFAULT_POLL_INTERVAL_NOT_ATTEMPTED = 300.0
DEFAULT_POLL_RECONCILE_INTERVAL = 86400.0
DEFAULT_POLL_MAX_CALLS = 100
DEFAULT_POLL_RATE = 5.0
DEFAULT_POLL_CONCURRENCY = 4
DEFAULT_POLL_WATCH_REFRESH = 3600.0
DEFAULT_POLL_UNAVAILABLE_DELAY = 60.0  # a 503 that names no Retry-After


@dataclass(frozen=True)
class PollConfig:
    """The poller's intervals (seconds) and limits."""

    interval_in_progress: float = DEFAULT_POLL_INTERVAL_IN_PROGRESS
    interval_not_attempted: float = DEFAULT_POLL_INTERVAL_NOT_ATTEMPTED
    reconcile_interval: float = DEFAULT_POLL_RECONCILE_INTERVAL
    max_calls: int = DEFAULT_POLL_MAX_CALLS
    rate: float = DEFAULT_POLL_RATE
    concurrency: int = DEFAULT_POLL_CONCURRENCY
    watch_refresh: float = DEFAULT_POLL_WATCH_REFRESH
    lease_seconds: float = 120.0
    unavailable_delay: float = DEFAULT_POLL_UNAVAILABLE_DELAY
    retry_after_max: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PollConfig:
        """Return the poll settings from their ``BRIDGE_POLL_*`` variables."""
        return cls(
            interval_in_progress=settings.poll_interval_in_progress,
            interval_not_attempted=settings.poll_interval_not_attempted,
            reconcile_interval=settings.poll_reconcile_interval,
            max_calls=settings.poll_max_calls,
            rate=settings.poll_rate,
            concurrency=settings.poll_concurrency,
        )


class Pacer:
    """Space calls at least ``1 / rate`` seconds apart, sleeping as needed."""

    def __init__(
        self,
        rate: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spacing = 1.0 / rate if rate > 0 else 0.0
        self.monotonic = monotonic
        self.sleep = sleep
        self.next_at: float | None = None
        self.lock = threading.Lock()

    def wait(self) -> None:
        """Return when the next call is allowed."""
        with self.lock:
            now = self.monotonic()
            if self.next_at is not None and now < self.next_at:
                self.sleep(self.next_at - now)
                now = self.next_at
            self.next_at = now + self.spacing


class BudgetSpentError(Exception):
    """The pass made its ``max_calls`` calls; the rest waits for the next."""


class Poller:
    """Poll tracked pairs' progress in Open ELMS; one instance per worker."""

    def __init__(
        self,
        store: Store,
        client: OpenElmsClient,
        *,
        worker: str,
        intervals: PollConfig | None = None,
        clock: Clock = utc_now,
        pacer: Pacer | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.worker = worker
        self.config = intervals or PollConfig()
        self.clock = clock
        self.pacer = pacer or Pacer(self.config.rate)
        self.calls = 0
        self.transitions = 0
        self.counting = threading.Lock()  # calls and transitions, across threads
        self.expanded: dict[str, datetime] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.learning: dict[str, dict[str, Any]] = {}

    def run_once(self) -> int:
        """Run one pass; return how many outbound events it recorded."""
        now = self.clock()
        if self.is_backing_off(now):
            return 0

        self.calls, self.transitions = 0, 0
        started = time.monotonic()
        outcome = "done"
        try:
            self.expand_watches(now)
            self.poll_due(now)
        except BudgetSpentError:
            outcome = "budget_spent"
        except ElmsUnavailableError as exc:
            outcome = "backed_off"
            self.back_off(exc)
        except (ElmsAuthError, ElmsTransportError) as exc:
            outcome = "stopped"
            logger.warning("poll %s: pass stopped: %s", self.worker, exc)

        POLL_CYCLES.labels(outcome).inc()
        POLL_CALLS.labels(outcome).inc(self.calls)
        POLL_SECONDS.labels(outcome).observe(time.monotonic() - started)

        level = logging.INFO if self.calls else logging.DEBUG
        logger.log(
            level,
            "poll %s: %d call(s), %d transition(s)",
            self.worker,
            self.calls,
            self.transitions,
        )
        return self.transitions

    def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Make one Open ELMS call within the pass's budget and rate."""
        with self.counting:
            if self.calls >= self.config.max_calls:
                raise BudgetSpentError
            self.calls += 1
        self.pacer.wait()
        return method(*args, **kwargs)

    # Watch scopes

    def expand_watches(self, now: datetime) -> None:
        """Track the pairs of every scope not expanded lately."""
        with self.store.session(write=False) as session:
            watches = pq.list_watches(session)

        refresh = timedelta(seconds=self.config.watch_refresh)
        for watch in watches:
            last = self.expanded.get(watch.id)
            if last is not None and now - last < refresh:
                continue
            try:
                pairs = self.expand(watch)
            except SITE_ERRORS:
                raise
            except (ElmsError, ValueError) as exc:
                self.expanded[watch.id] = now  # tried again at the next refresh
                logger.warning("watch %s: cannot expand: %s", watch.id, exc)
                continue

            with self.store.session() as session:
                added = sum(
                    pq.track_pair(session, uid, lid, origin="watch", now=now)
                    for uid, lid in pairs
                )
            self.expanded[watch.id] = now
            logger.info(
                "watch %s (%s %s): %d pair(s), %d new",
                watch.id,
                watch.kind,
                watch.value,
                len(pairs),
                added,
            )

    def expand(self, watch: WatchScopeRow) -> list[tuple[str, str]]:
        """Return the (user, learning) pairs a watch scope covers now.

        A learning scope reads every user (``GET users/``) and keeps those
        the learning is assigned to: one call, but a large answer on a
        large site.
        """
        if watch.kind in ("user", "user_learning"):
            users = [self.call(self.client.get_user, watch.value)]
        elif watch.kind == "group":
            users = self.call(self.client.search_users, group_id=watch.value)
        else:
            users = self.call(self.client.list_users)

        pairs = []
        for user in users:
            for learning in self.learning_of(user):
                if watch.kind == "learning" and learning["id"] != watch.value:
                    continue
                pairs.append((str(user["id"]), learning["id"]))
        return pairs

    def learning_of(self, user: dict[str, Any]) -> list[dict[str, Any]]:
        """Return a user's assigned learning, remembering names for payloads."""
        user_id = str(user["id"])
        self.users[user_id] = {key: user.get(key) for key in ("email", "username")}
        listed = user.get("learning")
        if listed is None:
            listed = self.call(self.client.get_user, user_id).get("learning") or []

        found = []
        for item in listed:
            learning = {"id": str(item["id"]), "name": item.get("name")}
            self.learning[learning["id"]] = learning
            found.append(learning)
        return found

    # Pairs

    def poll_due(self, now: datetime) -> None:
        """Claim the due pairs, read each one's progress, record changes."""
        reconcile = now - timedelta(seconds=self.config.reconcile_interval)
        with self.store.session() as session:
            pairs = pq.claim_due_pairs(
                session,
                worker=self.worker,
                now=now,
                lease_seconds=self.config.lease_seconds,
                limit=max(0, self.config.max_calls - self.calls),
                reconcile_before=reconcile,
            )

        if not pairs:
            return

        # Up to ``concurrency`` calls at once, each still paced by ``rate``.
        # A 503, an auth failure or a dead connection stops the pass: the
        # calls not yet made are not made, and their pairs are given back.
        stop = threading.Event()
        site_errors: list[ElmsError] = []

        def poll_one(pair: TrackedPairRow) -> bool:
            if stop.is_set():
                return False
            try:
                progress = self.call(
                    self.client.get_progress, pair.learning_id, pair.user_id
                )
            except SITE_ERRORS as exc:
                stop.set()
                site_errors.append(exc)
                return False
            except ElmsError as exc:
                self.poll_later(pair, exc)
                return True
            written = self.record(pair, progress)
            with self.counting:
                self.transitions += written
            return True

        workers = min(self.config.concurrency, len(pairs))
        with ThreadPoolExecutor(workers, thread_name_prefix="poll") as pool:
            handled = list(pool.map(poll_one, pairs))

        skipped = zip(pairs, handled, strict=True)
        self.release([pair for pair, done in skipped if not done])
        if site_errors:
            raise site_errors[0]

    def record(self, pair: TrackedPairRow, progress: Progress) -> int:
        """Store a poll's result and announce a change; return events written."""
        now = self.clock()
        next_at = self.next_poll_at(progress.status, now)
        with self.store.session() as session:
            stored = pq.record_poll(
                session,
                pair,
                progress,
                worker=self.worker,
                now=now,
                next_poll_at=next_at,
            )
            if not stored:
                return 0
            ids = pq.record_transition(
                session,
                user_id=pair.user_id,
                learning_id=pair.learning_id,
                old_status=pair.status,
                old_score=pair.score,
                new_status=progress.status.value,
                new_score=progress.score,
                cause="elms",
                user=self.users.get(pair.user_id),
                learning=self.learning.get(pair.learning_id),
                now=now,
            )

        if ids:
            logger.info(
                "pair %s/%s: %s -> %s in Open ELMS; %d event(s)",
                pair.user_id,
                pair.learning_id,
                pair.status,
                progress.status.value,
                len(ids),
            )
        return len(ids)

    def next_poll_at(self, status: Status, now: datetime) -> datetime | None:
        """Return when to poll a pair next by its status; None once completed."""
        if status is Status.COMPLETED:
            return None
        if status is Status.IN_PROGRESS:
            return now + timedelta(seconds=self.config.interval_in_progress)
        return now + timedelta(seconds=self.config.interval_not_attempted)

    def poll_later(self, pair: TrackedPairRow, exc: ElmsError) -> None:
        """Give a pair whose poll failed back, due again after a while.

        A 404 (user or learning gone) waits for the reconciliation interval.
        """
        delay = self.config.interval_in_progress
        if isinstance(exc, ElmsNotFoundError):
            delay = self.config.reconcile_interval
        later = self.clock() + timedelta(seconds=delay)
        with self.store.session() as session:
            pq.release_pairs(session, [pair], worker=self.worker, next_poll_at=later)
        logger.warning(
            "pair %s/%s: poll got %s; next try in %.0fs",
            pair.user_id,
            pair.learning_id,
            exc,
            delay,
        )

    def release(self, pairs: list[TrackedPairRow]) -> None:
        """Give back claimed pairs this pass will not poll."""
        if not pairs:
            return
        with self.store.session() as session:
            pq.release_pairs(session, pairs, worker=self.worker)

    # Backing off after a 503

    def is_backing_off(self, now: datetime) -> bool:
        """Tell whether a 503 told every worker to wait until after now."""
        with self.store.session(write=False) as session:
            state = dq.read_state(session, BACKOFF_KEY)
        if state is None:
            return False
        return now < datetime.fromisoformat(state["until"])

    def back_off(self, exc: ElmsUnavailableError) -> None:
        """Stop polling, in every worker, for the 503's Retry-After."""
        delay = self.config.unavailable_delay
        if exc.retry_after is not None:
            delay = min(exc.retry_after, self.config.retry_after_max)
        now = self.clock()
        until = now + timedelta(seconds=delay)
        with self.store.session() as session:
            dq.write_state(session, BACKOFF_KEY, {"until": until.isoformat()}, now)
        logger.warning(
            "poll %s: Open ELMS answered 503; polling again in %.0fs",
            self.worker,
            delay,
        )
