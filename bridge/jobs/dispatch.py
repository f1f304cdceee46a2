"""Dispatch: turn stored events into Open ELMS progress calls, once each.

One pass claims due events, and for each: resolves learner and activity,
holds the (user, learning) pair, decides the call with the progress rules,
makes it, and records the outcome. Transport errors, 500 and 503 are tried
again later on a stored schedule; 400, 404, 412 and 501 fail the event;
401 and 403 pause all dispatch until a probe succeeds. A worker killed at
any point loses nothing: its leases expire and the event is sent again,
which is harmless since start and complete are idempotent in Open ELMS and
the rules are checked against the stored pair state.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bridge.adapters.cmi5 import is_move_on_satisfied
from bridge.errors import ElmsAuthError, ElmsError, ElmsResponseError, InboundError
from bridge.events import Kind
from bridge.outbound import announce_event_failed, announce_inbound
from bridge.rules import COMPLETING_KINDS, Action, Decision, PairState, Policy, decide
from bridge.store import dispatch_queries as dq
from bridge.store.models import EventStatus

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.elms import OpenElmsClient
    from bridge.registry import SourceRegistry
    from bridge.resolve import Resolver
    from bridge.sources import Source
    from bridge.store.db import Store
    from bridge.store.models import EventRow

logger = logging.getLogger(__name__)

PAIR_BUSY_DELAY = 0.5  # seconds before retrying an event whose pair is held
UNEXPECTED_DETAIL = 200  # characters of an unexpected error kept on the event
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class DispatchConfig:
    """The dispatcher's knobs, from settings."""

    batch: int = 20
    lease_seconds: float = 60.0
    max_attempts: int = 12
    backoff: float = 5.0
    backoff_max: float = 3600.0
    retry_after_max: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchConfig:
        """Return the dispatch settings."""
        return cls(
            batch=settings.dispatch_batch,
            lease_seconds=settings.dispatch_lease,
            max_attempts=settings.dispatch_max_attempts,
            backoff=settings.dispatch_backoff,
            backoff_max=settings.dispatch_backoff_max,
            retry_after_max=settings.elms_retry_after_max,
        )


class Dispatcher:
    """Apply due events to Open ELMS; one instance per worker process."""

    def __init__(
        self,
        store: Store,
        client: OpenElmsClient,
        resolver: Resolver,
        registry: SourceRegistry,
        *,
        worker: str,
        config: DispatchConfig | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.client = client
        self.resolver = resolver
        self.registry = registry
        self.worker = worker
        self.config = config or DispatchConfig()
        self.clock = clock
        self.stopping = threading.Event()

    def run_once(self) -> int:
        """Claim a batch of due events and apply them; return how many."""
        if self.is_paused():
            return 0
        with self.store.session() as session:
            events = dq.claim_due_events(
                session,
                worker=self.worker,
                now=self.clock(),
                lease_seconds=self.config.lease_seconds,
                limit=self.config.batch,
            )

        done = 0
        for event in events:
            if self.stopping.is_set() or self.is_paused():
                self.release([e.id for e in events[done:]])
                break
            self.apply_safely(event)
            done += 1

        if events:
            logger.debug(
                "dispatch %s: applied %d of %d claimed", self.worker, done, len(events)
            )
        return done

    def drain(self, max_seconds: float = 5.0) -> int:
        """Run passes until no work is due, the time is up, or a stop comes."""
        deadline = self.clock() + timedelta(seconds=max_seconds)
        total = 0
        while not self.stopping.is_set() and self.clock() < deadline:
            applied = self.run_once()
            total += applied
            if applied == 0:
                break
        return total

    def release(self, event_ids: list[str]) -> None:
        """Give back claimed events this worker will not apply."""
        with self.store.session() as session:
            dq.release_events(session, event_ids, worker=self.worker)

    # One event

    def apply_safely(self, event: EventRow) -> None:
        """Apply one event; an unexpected error costs that event an attempt.

        Without this, one event that always fails the same way (a value the
        database refuses, a bug) would end every pass and hold back the
        events claimed with it, pass after pass. As an attempt with backoff,
        a passing fault is retried and a lasting one ends the event failed.
        """
        try:
            self.apply(event)
        except Exception as exc:  # noqa: BLE001 - logged, and the event retried
            logger.exception("%s: unexpected error while applying it", named(event))
            first_line = (str(exc).splitlines() or [""])[0][:UNEXPECTED_DETAIL]
            reason = RuntimeError(f"unexpected {type(exc).__name__}: {first_line}")
            try:
                self.schedule_retry(event, reason)
            except Exception:  # noqa: BLE001 - its lease runs out instead
                logger.exception("%s: could not record the failure", named(event))

    def apply(self, event: EventRow) -> None:
        """Resolve, decide, call and record one claimed event."""
        source = self.source_of(event)
        try:
            resolution = self.resolver.resolve(
                learner=event.learner, activity=event.activity, source=source
            )
        except ElmsError as exc:
            self.handle_failure(event, exc, call=None)
            return
        if not resolution.resolved:
            self.finish(event, EventStatus.UNRESOLVED, reason=resolution.reason)
            logger.error("%s unresolved: %s", named(event), resolution.reason)
            return

        user_id = str(resolution.user_id)
        learning_id = str(resolution.learning_id)
        self.apply_to_pair(event, source, user_id, learning_id)

    def apply_to_pair(
        self, event: EventRow, source: Source | None, user_id: str, learning_id: str
    ) -> None:
        """Hold the pair, decide, make the call and store the new state."""
        now = self.clock()
        with self.store.session() as session:
            state = dq.hold_pair(
                session,
                user_id,
                learning_id,
                worker=self.worker,
                now=now,
                lease_seconds=self.config.lease_seconds,
            )
        if state is None:
            self.retry_soon(event, "pair held by another worker")
            return

        kind, note = self.effective_kind(event)
        decision = decide(
            state, kind, event.score, event.occurred_at, policy_of(source)
        )
        if note:
            decision = Decision(
                decision.action,
                decision.score,
                f"{note}; {decision.reason}",
                decision.state,
            )

        call = describe_call(decision, learning_id, user_id)
        try:
            self.send(decision, learning_id, user_id)
        except ElmsError as exc:
            self.release_pair(user_id, learning_id, None, event.id)
            self.handle_failure(event, exc, call=call)
            return

        self.complete_event(event, decision, call, user_id, learning_id, state)

    def send(self, decision: Decision, learning_id: str, user_id: str) -> None:
        """Make the Open ELMS call a decision names, if any."""
        if decision.action is Action.START:
            self.client.start(learning_id, user_id)
        elif decision.action is Action.COMPLETE:
            self.client.complete(learning_id, user_id, decision.score)

    def complete_event(
        self,
        event: EventRow,
        decision: Decision,
        call: str | None,
        user_id: str,
        learning_id: str,
        before: PairState,
    ) -> None:
        """Store pair state, call, final status and announcements at once.

        The transition is announced to subscribers in the same transaction,
        after Open ELMS accepted the call, so it is announced exactly once.
        """
        now = self.clock()
        status = (
            EventStatus.SKIPPED
            if decision.action is Action.SKIP
            else EventStatus.DISPATCHED
        )
        announced: list[str] = []
        with self.store.session() as session:
            if call is not None:
                method, path = call.split(" ", 1)
                dq.record_call(
                    session,
                    event.id,
                    method=method,
                    path=path,
                    status=200,
                    error=None,
                    worker=self.worker,
                    now=now,
                )
            dq.release_pair(
                session,
                user_id,
                learning_id,
                worker=self.worker,
                state=decision.state,
                event_id=event.id,
                now=now,
            )
            finished = dq.finish_event(
                session,
                event.id,
                worker=self.worker,
                status=status.value,
                now=now,
                reason=decision.reason,
                elms_call=call,
                user_id=user_id,
                learning_id=learning_id,
                count_attempt=call is not None,
            )
            if finished and call is not None:
                announced = announce_inbound(
                    session,
                    user_id=user_id,
                    learning_id=learning_id,
                    old=before,
                    new=decision.state,
                    inbound_event_id=event.id,
                    now=now,
                )
        logger.info(
            "%s: %s (%s); announced %s",
            named(event),
            call or "no call",
            decision.reason,
            ",".join(announced) or "nothing",
        )

    def effective_kind(self, event: EventRow) -> tuple[str, str | None]:
        """Return the kind the rules see, after cmi5's moveOn, and why it changed."""
        move_on = event.extra.get("move_on")
        if event.kind not in COMPLETING_KINDS or not move_on:
            return event.kind, None
        if event.extra.get("satisfied") or not event.registration:
            return event.kind, None

        with self.store.session(write=False) as session:
            related = dq.registration_events(session, event.source, event.registration)
        launched = [e for e in related if e.extra.get("move_on_from") == "launched"]
        if launched:
            move_on = launched[0].extra.get("move_on", move_on)
        seen = {Kind(e.kind) for e in related if e.kind in COMPLETING_KINDS}
        seen.add(Kind(event.kind))

        if is_move_on_satisfied(str(move_on), seen):
            return event.kind, None
        return "started", f"moveOn {move_on} not yet satisfied"

    # Failures

    def handle_failure(self, event: EventRow, exc: ElmsError, call: str | None) -> None:
        """Record a failed call and retry, fail, or pause, by the error's class."""
        now = self.clock()
        if call is not None:
            method, path = call.split(" ", 1)
            status = exc.status if isinstance(exc, ElmsResponseError) else None
            with self.store.session() as session:
                dq.record_call(
                    session,
                    event.id,
                    method=method,
                    path=path,
                    status=status,
                    error=str(exc),
                    worker=self.worker,
                    now=now,
                )

        if isinstance(exc, ElmsAuthError):
            self.pause(str(exc))
            # Due again at once: the pause holds it back until a probe succeeds.
            self.retry_soon(event, str(exc), delay=0.0)
            return
        if not exc.retryable:
            self.finish(event, EventStatus.FAILED, reason=str(exc), error=str(exc))
            logger.error("%s failed: %s", named(event), exc)
            return
        self.schedule_retry(event, exc)

    def schedule_retry(self, event: EventRow, exc: Exception) -> None:
        """Try again after a backoff, or fail the event past the attempt limit."""
        attempts = event.attempts + 1
        if attempts >= self.config.max_attempts:
            reason = f"gave up after {attempts} attempts: {exc}"
            self.finish(event, EventStatus.FAILED, reason=reason, error=str(exc))
            logger.error("%s failed: %s", named(event), reason)
            return

        delay = backoff_delay(attempts, self.config.backoff, self.config.backoff_max)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            delay = max(delay, min(float(retry_after), self.config.retry_after_max))
        now = self.clock()
        with self.store.session() as session:
            dq.schedule_retry(
                session,
                event.id,
                worker=self.worker,
                now=now,
                next_attempt_at=now + timedelta(seconds=delay),
                error=str(exc),
            )
        logger.warning(
            "%s: attempt %d got %s; retry in %.1fs",
            named(event),
            attempts,
            exc,
            delay,
        )

    def retry_soon(
        self, event: EventRow, why: str, delay: float = PAIR_BUSY_DELAY
    ) -> None:
        """Put an event back for another look shortly, without counting it."""
        now = self.clock()
        later = now + timedelta(seconds=delay)
        with self.store.session() as session:
            dq.schedule_retry(
                session,
                event.id,
                worker=self.worker,
                now=now,
                next_attempt_at=later,
                error=why,
                count_attempt=False,
            )

    def finish(
        self,
        event: EventRow,
        status: EventStatus,
        *,
        reason: str | None,
        error: str | None = None,
    ) -> None:
        """Record a final status for an event; announce it if it failed."""
        now = self.clock()
        with self.store.session() as session:
            finished = dq.finish_event(
                session,
                event.id,
                worker=self.worker,
                status=status.value,
                now=now,
                reason=reason,
                error=error,
                count_attempt=error is not None,
            )
            if finished and status in (EventStatus.FAILED, EventStatus.UNRESOLVED):
                announce_event_failed(
                    session, event, now, status=status.value, reason=reason
                )

    def release_pair(
        self, user_id: str, learning_id: str, state: Any, event_id: str
    ) -> None:
        """End this worker's hold on a pair, keeping its state."""
        with self.store.session() as session:
            dq.release_pair(
                session,
                user_id,
                learning_id,
                worker=self.worker,
                state=state,
                event_id=event_id,
                now=self.clock(),
            )

    # Pause on 401/403

    def is_paused(self) -> bool:
        """Return whether dispatch is paused by an authentication failure."""
        with self.store.session(write=False) as session:
            return dq.read_state(session, dq.PAUSE_KEY) is not None

    def pause(self, reason: str) -> None:
        """Pause all dispatch; only the worker that pauses it logs the error."""
        value = {"reason": reason, "since": self.clock().isoformat()}
        with self.store.session() as session:
            already = dq.read_state(session, dq.PAUSE_KEY) is not None
            if not already:
                dq.write_state(session, dq.PAUSE_KEY, value, self.clock())
        if not already:
            logger.error(
                "dispatch paused: Open ELMS refused the token (%s); "
                "every call would fail until it is fixed",
                reason,
            )

    def probe(self) -> bool:
        """While paused, try one cheap call; resume dispatch if it succeeds."""
        if not self.is_paused():
            return True
        try:
            self.client.list_learning()
        except ElmsError as exc:
            logger.debug("dispatch still paused: probe got %s", exc)
            return False
        with self.store.session() as session:
            dq.write_state(session, dq.PAUSE_KEY, None, self.clock())
        logger.info("dispatch resumed: Open ELMS accepted the token again")
        return True

    def source_of(self, event: EventRow) -> Source | None:
        """Return the event's source, or None if it was removed since."""
        try:
            return self.registry.get(event.source).source
        except InboundError:
            return None


def named(event: EventRow) -> str:
    """Return how log lines name an event: its id and its request's id.

    The request id is the X-Request-ID of the POST that carried the event,
    so an operator can follow the event from that request's line.
    """
    if event.correlation_id is None:
        return f"event {event.id}"
    return f"event {event.id} (request {event.correlation_id})"


def policy_of(source: Source | None) -> Policy:
    """Return the progress policy of a source (defaults without one)."""
    return Policy.from_options(source.options) if source else Policy()


def describe_call(decision: Decision, learning_id: str, user_id: str) -> str | None:
    """Return the call a decision makes, as ``METHOD path``, or None."""
    if decision.action is Action.SKIP:
        return None
    path = f"learning/{learning_id}/{user_id}/{decision.action.value}"
    if decision.action is Action.COMPLETE and decision.score is not None:
        path += f"/{int(round(decision.score))}"
    return f"PUT {path}"


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Return the wait before attempt ``attempt + 1``: exponential, jittered.

    Half the exponential step is fixed and half random, so retries spread
    out without ever collapsing to zero.
    """
    step = min(cap, base * (2 ** (attempt - 1)))
    return step / 2 + random.uniform(0, step / 2)
