"""Delivery: post outbound events to their subscribers, signed, until accepted.

A pass claims due deliveries and hands each to a bounded thread pool, so
a slow or dead subscriber holds one thread, not the others. Each attempt
re-checks the target (its name may resolve elsewhere by now), signs the
body the Standard Webhooks way and posts it without following redirects.

Outcomes follow the spec: 2xx is delivered; 410 disables the subscription
and fails what it still has pending; everything else (3xx, 4xx, 5xx,
timeouts, refused connections) is tried again on the configured schedule
with ±20 % jitter, and failed once the schedule is spent. On 429 and 503 a
``Retry-After`` is honoured, clamped between the schedule's next delay and
twice it, so a subscriber can slow the bridge down but not stall it. A
subscription failing without a break for longer than ``disable_after`` is
disabled and announced as ``bridge.subscription_disabled``.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from bridge import __version__
from bridge.config import (
    DEFAULT_DELIVERY_DISABLE_AFTER,
    DEFAULT_DELIVERY_SCHEDULE,
    DEFAULT_DELIVERY_TIMEOUT,
)
from bridge.errors import ElmsError
from bridge.jobs.dispatch import Clock, utc_now
from bridge.metrics import DELIVERIES, DELIVERY_SECONDS
from bridge.signing import delivery_headers
from bridge.ssrf import UnsafeTargetError, check_target
from bridge.store import delivery_queries as dq
from bridge.store.delivery_queries import RESPONSE_BODY_LIMIT, DeliveryJob
from bridge.store.subscription_queries import get_subscription, signing_secrets

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bridge.config import Settings
    from bridge.jobs.groups import GroupMembership
    from bridge.store.db import Store
    from bridge.store.subscription_queries import SubscriptionRow

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 16
DEFAULT_PER_SUBSCRIPTION = 4
DEFAULT_JITTER = 0.2  # ±20 %, as the Standard Webhooks reference schedule
THROTTLE_STATUSES = frozenset({429, 503})
GONE = 410
USER_AGENT = f"openelms-bridge/{__version__}"
MEMBERSHIP_RETRY_SECONDS = 60.0  # wait when Open ELMS cannot say who is in a group


def parse_schedule(text: str) -> tuple[float, ...]:
    """Return the delays of a comma-separated schedule, in seconds."""
    return tuple(float(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class DeliveryConfig:
    """The deliverer's knobs, from settings.

    ``schedule[n]`` is the wait before attempt ``n + 1``; the first entry
    (normally 0) is spent when the delivery is created, so a delivery gets
    ``len(schedule)`` attempts in all.
    """

    timeout: float = DEFAULT_DELIVERY_TIMEOUT
    schedule: tuple[float, ...] = parse_schedule(DEFAULT_DELIVERY_SCHEDULE)
    disable_after: float = DEFAULT_DELIVERY_DISABLE_AFTER
    allowed_targets: tuple[str, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    per_subscription: int = DEFAULT_PER_SUBSCRIPTION
    jitter: float = DEFAULT_JITTER

    @property
    def lease_seconds(self) -> float:
        """Return how long a claim lasts.

        It must outlast the attempt it covers, or another worker would send
        the same delivery while the first still waits for an answer; a
        connect and a read may each take the whole timeout.
        """
        return max(60.0, 4 * self.timeout + 30.0)

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        """Return the delivery settings."""
        return cls(
            timeout=settings.delivery_timeout,
            schedule=parse_schedule(settings.delivery_schedule),
            disable_after=settings.delivery_disable_after,
            allowed_targets=settings.allow_private_targets,
        )


class Verdict(enum.Enum):
    """What an attempt means for its delivery."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAIL = "fail"
    GONE = "gone"


@dataclass(frozen=True)
class AttemptResult:
    """What one POST gave: a status and the head of the body, or an error."""

    status: int | None = None
    body: bytes | None = None
    error: str | None = None
    latency_ms: float | None = None
    retry_after: float | None = None

    @property
    def summary(self) -> str:
        """Return the status code, or the error, for one log line."""
        return str(self.status) if self.status is not None else str(self.error)

    @property
    def verdict(self) -> Verdict:
        """Return what the attempt means: delivered, gone or worth a retry."""
        if self.status is None:
            return Verdict.RETRY
        if 200 <= self.status < 300:
            return Verdict.DELIVERED
        if self.status == GONE:
            return Verdict.GONE
        return Verdict.RETRY


def build_http_session(config: DeliveryConfig) -> requests.Session:
    """Return a session pooling as many connections as the deliverer sends."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=config.concurrency, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


class Deliverer:
    """Send due deliveries; one instance per worker process, shared by jobs."""

    def __init__(
        self,
        store: Store,
        *,
        worker: str,
        config: DeliveryConfig | None = None,
        clock: Clock = utc_now,
        session: requests.Session | None = None,
        membership: GroupMembership | None = None,
    ) -> None:
        self.store = store
        self.membership = membership
        self.worker = worker
        self.config = config or DeliveryConfig()
        self.clock = clock
        self.owns_http = session is None
        self.http = session or build_http_session(self.config)
        self.pool = ThreadPoolExecutor(
            max_workers=self.config.concurrency, thread_name_prefix="deliver"
        )
        self.in_flight: set[Future[None]] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.refilling = False
        self.refill_lock = threading.Lock()

    def run_once(self, *, wait: bool = True, refill: bool = False) -> int:
        """Claim due deliveries for the free threads and send them; return how many.

        Args:
            wait: True to return once every claimed delivery is recorded;
                False (the scheduler's way) to return at once and leave them
                sending, so the next pass can fill threads freed meanwhile.
            refill: True (the worker's way) to claim again each time a
                delivery is recorded, from then on, instead of waiting for
                the next pass: a pass takes at most ``per_subscription`` of
                one subscriber, so a backlog would otherwise drain at that
                many per tick.
        """
        if refill:
            self.refilling = True
        free = self.config.concurrency - self.busy()
        if free <= 0 or self.stopping.is_set():
            return 0
        jobs = self.claim(free)
        if not jobs:
            return 0

        subscriptions = self.load_subscriptions(jobs)
        futures = [
            self.submit(job, subscriptions.get(job.subscription_id)) for job in jobs
        ]

        if wait:
            self.wait_for(futures)
        logger.debug("deliver %s: %d claimed", self.worker, len(jobs))
        return len(jobs)

    def claim(self, limit: int) -> list[DeliveryJob]:
        """Lease up to ``limit`` due deliveries to this worker."""
        with self.store.session() as session:
            return dq.claim_due_deliveries(
                session,
                worker=self.worker,
                now=self.clock(),
                lease_seconds=self.config.lease_seconds,
                limit=limit,
                per_subscription=self.config.per_subscription,
            )

    def load_subscriptions(self, jobs: list[DeliveryJob]) -> dict[str, SubscriptionRow]:
        """Return the subscriptions of claimed jobs, for their secrets."""
        found: dict[str, SubscriptionRow] = {}
        with self.store.session(write=False) as session:
            for subscription_id in {job.subscription_id for job in jobs}:
                row = get_subscription(session, subscription_id)
                if row is not None:
                    found[subscription_id] = row
        return found

    def submit(
        self, job: DeliveryJob, subscription: SubscriptionRow | None
    ) -> Future[None]:
        """Hand one delivery to the pool and track it until it is recorded."""
        future = self.pool.submit(self.deliver_safely, job, subscription)
        with self.lock:
            self.in_flight.add(future)
        future.add_done_callback(self.forget)
        return future

    def forget(self, future: Future[None]) -> None:
        """Stop tracking a finished delivery, and fill its thread if asked to."""
        with self.lock:
            self.in_flight.discard(future)
        if self.refilling and not self.stopping.is_set():
            self.refill()

    def refill(self) -> None:
        """Claim for the free threads now, one claim at a time.

        A thread that finds another claiming leaves its slot to that claim
        (or the next one): while claims are slow, more slots gather for each,
        so a long backlog does not cost one claim query per delivery. The
        chain ends when a claim finds nothing due; the next pass starts it.
        """
        if not self.refill_lock.acquire(blocking=False):
            return
        try:
            self.run_once(wait=False)
        except Exception:  # noqa: BLE001 - the next pass claims anyway
            if not self.stopping.is_set():
                logger.exception("deliver %s: refill claim failed", self.worker)
        finally:
            self.refill_lock.release()

    def busy(self) -> int:
        """Return how many deliveries are being sent now."""
        with self.lock:
            return len(self.in_flight)

    def wait_for(self, futures: list[Future[None]] | None = None) -> None:
        """Block until the given deliveries (default: all in flight) are recorded."""
        if futures is None:
            with self.lock:
                futures = list(self.in_flight)
        wait(futures)

    def close(self) -> None:
        """Let deliveries in flight finish, then stop the pool."""
        self.stopping.set()
        self.pool.shutdown(wait=True)
        if self.owns_http:
            self.http.close()

    # One delivery

    def deliver_safely(
        self, job: DeliveryJob, subscription: SubscriptionRow | None
    ) -> None:
        """Deliver one job; log an unexpected error and let its lease expire."""
        try:
            self.deliver(job, subscription)
        except Exception:
            logger.exception(
                "delivery %s: unexpected error; retried when its lease ends", job.id
            )

    def deliver(self, job: DeliveryJob, subscription: SubscriptionRow | None) -> None:
        """Check the target, sign, post and record one delivery."""
        if subscription is None:
            self.release(job)
            return
        if not self.passes_group_filter(job, subscription):
            return
        try:
            check_target(job.url, self.config.allowed_targets)
        except UnsafeTargetError as exc:
            result = AttemptResult(error=f"target refused: {exc.reason}")
            self.record(job, self.clock(), result, Verdict.FAIL)
            return

        attempted_at = self.clock()
        body = encode_body(job.payload)
        secrets = signing_secrets(subscription, attempted_at)
        headers = delivery_headers(secrets, job.event_id, attempted_at, body)
        result = post(self.http, job.url, body, headers, self.config.timeout)

        self.record(job, attempted_at, result, result.verdict)

    def passes_group_filter(
        self, job: DeliveryJob, subscription: SubscriptionRow
    ) -> bool:
        """Return True to send; otherwise settle or postpone the delivery here.

        Events about no user (the bridge's own notices) pass, as they pass
        a learning filter. Without a way to ask Open ELMS (no membership
        reader given) the filter cannot be applied, and the event is sent.
        """
        group = subscription.user_group_id
        user_id = user_of(job.payload)
        if group is None or user_id is None or self.membership is None:
            return True

        now = self.clock()
        try:
            member = self.membership.contains(group, user_id)
        except ElmsError as exc:
            reason = f"group {group} membership unknown: {exc}"
            until = now + timedelta(seconds=MEMBERSHIP_RETRY_SECONDS)
            with self.store.session() as session:
                dq.postpone(
                    session,
                    job.id,
                    worker=self.worker,
                    now=now,
                    until=until,
                    reason=reason,
                )
            logger.warning("delivery %s: postponed: %s", job.id, reason)
            return False
        if member:
            return True

        reason = f"user {user_id} is not in group {group}"
        with self.store.session() as session:
            dq.mark_filtered(
                session, job.id, worker=self.worker, now=now, reason=reason
            )
        logger.info("delivery %s: filtered out: %s", job.id, reason)
        return False

    def release(self, job: DeliveryJob) -> None:
        """Give back a claimed delivery without an attempt."""
        with self.store.session() as session:
            dq.release_deliveries(session, [job.id], worker=self.worker)

    # Outcomes

    def record(
        self,
        job: DeliveryJob,
        attempted_at: datetime,
        result: AttemptResult,
        verdict: Verdict,
    ) -> None:
        """Store the attempt and the delivery's next step, and log one line."""
        now = self.clock()
        with self.store.session() as session:
            dq.record_attempt(
                session,
                job.id,
                attempted_at=attempted_at,
                status_code=result.status,
                latency_ms=result.latency_ms,
                response_body=result.body,
                error=result.error,
            )
            if verdict is Verdict.DELIVERED:
                self.record_delivered(session, job, result, now)
            elif verdict is Verdict.GONE:
                self.record_gone(session, job, result, now)
            else:
                self.record_failure(session, job, result, verdict, now)

    def record_delivered(
        self, session: Session, job: DeliveryJob, result: AttemptResult, now: datetime
    ) -> None:
        """Mark the delivery done and end the subscription's run of failures."""
        status = int(result.status or 0)
        owned = dq.mark_delivered(
            session, job.id, worker=self.worker, status=status, now=now
        )
        dq.note_success(session, job.subscription_id, now)
        self.log_attempt(logging.INFO, job, result, "delivered", owned, "delivered")

    def record_gone(
        self, session: Session, job: DeliveryJob, result: AttemptResult, now: datetime
    ) -> None:
        """Fail the delivery and disable its subscription: the subscriber left."""
        reason = "the subscriber answered 410 Gone"
        self.fail(session, job, result, now, error=reason, why="subscription gone")
        dq.disable_and_announce(session, job.subscription_id, reason=reason, now=now)

    def record_failure(
        self,
        session: Session,
        job: DeliveryJob,
        result: AttemptResult,
        verdict: Verdict,
        now: datetime,
    ) -> None:
        """Retry on schedule, or fail; disable a subscription failing too long."""
        failing_since = dq.note_failure(session, job.subscription_id, now)
        delay = self.next_delay(job.attempts + 1, result.retry_after)

        if failing_since is not None and self.failing_too_long(failing_since, now):
            reason = f"failing without a success since {failing_since.isoformat()}"
            self.fail(session, job, result, now, error=reason, why=reason)
            dq.disable_and_announce(
                session, job.subscription_id, reason=reason, now=now
            )
        elif verdict is Verdict.FAIL:
            self.fail(session, job, result, now, error=result.summary, why="refused")
        elif delay is None:
            attempts = job.attempts + 1
            error = f"gave up after {attempts} attempts; last: {result.summary}"
            self.fail(session, job, result, now, error=error, why="schedule spent")
        else:
            self.retry_later(session, job, result, now, delay)

    def retry_later(
        self,
        session: Session,
        job: DeliveryJob,
        result: AttemptResult,
        now: datetime,
        delay: float,
    ) -> None:
        """Queue the delivery for its next attempt after ``delay`` seconds."""
        owned = dq.schedule_retry(
            session,
            job.id,
            worker=self.worker,
            now=now,
            next_attempt_at=now + timedelta(seconds=delay),
            status=result.status,
            error=result.summary,
        )
        step = f"retry in {round(delay, 3)}s"
        self.log_attempt(logging.WARNING, job, result, step, owned, "retry")

    def fail(
        self,
        session: Session,
        job: DeliveryJob,
        result: AttemptResult,
        now: datetime,
        *,
        error: str,
        why: str,
    ) -> None:
        """Park the delivery as failed (``error`` kept), to be replayed by hand."""
        owned = dq.mark_failed(
            session,
            job.id,
            worker=self.worker,
            now=now,
            status=result.status,
            error=error,
        )
        step = f"failed: {why}"
        self.log_attempt(logging.ERROR, job, result, step, owned, "failed")

    def log_attempt(
        self,
        level: int,
        job: DeliveryJob,
        result: AttemptResult,
        step: str,
        owned: bool,
        outcome: str,
    ) -> None:
        """Count the attempt, and log its line: what it got and what comes next."""
        DELIVERIES.labels(job.subscription_id, outcome).inc()
        if result.latency_ms is not None:
            DELIVERY_SECONDS.labels(job.subscription_id).observe(
                result.latency_ms / 1000
            )

        if not owned:
            step = "lease lost meanwhile, so another worker may send it again"
            level = logging.WARNING
        logger.log(
            level,
            "delivery %s of %s to %s: attempt %d got %s; %s",
            job.id,
            job.event_id,
            job.subscription_id,
            job.attempts + 1,
            result.summary,
            step,
        )

    def next_delay(self, attempts: int, retry_after: float | None) -> float | None:
        """Return the wait before the next attempt, or None once all are spent."""
        schedule = self.config.schedule
        if attempts >= len(schedule):
            return None
        base = schedule[attempts]
        if retry_after is not None:
            return min(max(retry_after, base), 2 * base)
        spread = self.config.jitter
        return base * random.uniform(1 - spread, 1 + spread)

    def failing_too_long(self, failing_since: datetime, now: datetime) -> bool:
        """Say whether a subscription has failed for longer than allowed."""
        return (now - failing_since).total_seconds() > self.config.disable_after


def user_of(payload: dict[str, Any]) -> str | None:
    """Return the id of the user an event is about, or None for a notice."""
    user = payload.get("user")
    if isinstance(user, dict) and user.get("id") is not None:
        return str(user["id"])
    return None


def encode_body(payload: dict[str, Any]) -> bytes:
    """Return the body of an event: compact JSON with sorted keys, UTF-8.

    The same payload always gives the same bytes, so every attempt and
    every retry carries an identical, identically signed body.
    """
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return text.encode("utf-8")


def post(
    http: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> AttemptResult:
    """POST one delivery and translate whatever happens into a result."""
    started = time.monotonic()
    try:
        response = http.post(
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout:
        return AttemptResult(
            error=f"timeout after {timeout:g}s", latency_ms=elapsed(started)
        )
    except requests.RequestException as exc:
        return AttemptResult(error=describe_failure(exc), latency_ms=elapsed(started))

    with response:
        head = read_head(response)
        retry_after = None
        if response.status_code in THROTTLE_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return AttemptResult(
        status=response.status_code,
        body=head,
        latency_ms=elapsed(started),
        retry_after=retry_after,
    )


def read_head(response: requests.Response) -> bytes | None:
    """Return at most the first KiB of an answer; the rest is never read."""
    try:
        return next(response.iter_content(RESPONSE_BODY_LIMIT), b"")
    except requests.RequestException:
        return None  # the status already came; a broken body does not change it


def elapsed(started: float) -> float:
    """Return milliseconds since ``started`` (a monotonic reading)."""
    return round((time.monotonic() - started) * 1000, 1)


def describe_failure(exc: requests.RequestException) -> str:
    """Return a short reason for a failed request, without URL or headers.

    requests' own messages repeat the URL, which may carry a token.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return f"connection failed: {cause.strerror}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return f"request failed: {type(exc).__name__}"


def parse_retry_after(value: str | None) -> float | None:
    """Return a ``Retry-After`` in seconds, from delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - utc_now()).total_seconds())
