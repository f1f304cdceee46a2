"""Measure deliveries per second from the outbox to a local webhook sink.

Each scenario gets a fresh SQLite file, migrated as the worker migrates
it, with subscriptions added and outbound events written through the
bridge's own store functions (``record_transition`` writes each event and
one pending delivery per subscription). A ``Deliverer`` built from
settings then drains it in this process the way the worker drives it:
``run_once(wait=False, refill=True)`` on every tick of the dispatch interval.

The sink (``bench/sink_app.py``) runs under gunicorn in its own process
and answers 204 at once, or after ``--slow-seconds`` for the slow
subscriber. In the same run, a plain ``requests.Session`` loop posts the
same bodies, signed the same way, to the same sink: the baseline.

Run from the repository root::

    .venv/bin/python -m bench.deliver      # --events 150 --fast-subscribers 3
    .venv/bin/python -m bench.deliver --intervals 0.05 --rounds 4
    .venv/bin/python -m bench.deliver --fast-subscribers 1 --intervals 0.25
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench.deliver_outbox import Outbox, delivery_bodies, prepare_outbox, tally
from bench.deliver_report import (
    Drained,
    Plain,
    Round,
    report_header,
    report_medians,
    report_round,
)
from bench.ingest import clean_env, free_port, raise_interrupt, running
from bridge.config import DEFAULT_DISPATCH_INTERVAL, load_settings
from bridge.jobs.deliver import Deliverer, DeliveryConfig
from bridge.logs import TEXT_FORMAT, RedactingFilter
from bridge.signing import delivery_headers

HOST = "127.0.0.1"
LOWEST_INTERVAL = 0.05  # the smallest BRIDGE_DISPATCH_INTERVAL accepted
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0
CHECK_SECONDS = 0.1  # how often the drive loop asks the database if it is done
WARMUP_POSTS = 200


def parse_args() -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=150, help="outbound events")
    parser.add_argument(
        "--fast-subscribers", type=int, default=3, help="subscriptions answering 204"
    )
    parser.add_argument(
        "--slow-subscribers", type=int, default=1, help="in the second scenario"
    )
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument(
        "--intervals",
        default=f"{DEFAULT_DISPATCH_INTERVAL:g},{LOWEST_INTERVAL:g}",
        help="dispatch intervals to drive the deliverer at, comma-separated",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds per interval, then medians"
    )
    parser.add_argument("--concurrency", type=int, help="deliverer threads")
    parser.add_argument("--per-subscription", type=int, help="in flight per target")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="give up a drain after this"
    )
    return parser.parse_args()


def delivery_config(args: argparse.Namespace) -> DeliveryConfig:
    """Return the deliverer's config from settings that let loopback through."""
    settings = load_settings({"BRIDGE_ALLOW_PRIVATE_TARGETS": "127.0.0.0/8"})
    config = DeliveryConfig.from_settings(settings)
    if args.concurrency:
        config = replace(config, concurrency=args.concurrency)
    if args.per_subscription:
        config = replace(config, per_subscription=args.per_subscription)
    return config


@contextmanager
def serving_sink(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    """Run the sink in its own process group; yield its base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bench.sink_app",
        "--port",
        str(port),
        "--slow-seconds",
        str(args.slow_seconds),
    ]
    log_path = workdir / "sink.log"
    with log_path.open("wb") as log, running(command, clean_env(), log):
        base = f"http://{HOST}:{port}"
        wait_for_sink(base, log_path)
        yield base


def wait_for_sink(base: str, log_path: Path) -> None:
    """Return once the sink answers, after some warm-up posts."""
    deadline = time.monotonic() + START_TIMEOUT
    with requests.Session() as http:
        while True:
            try:
                http.get(f"{base}/counts", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise SystemExit(f"the sink did not start; log:\n{tail}") from None
                time.sleep(0.1)

        for _ in range(WARMUP_POSTS):
            http.post(f"{base}/fast/warmup", data=b"{}", timeout=REQUEST_TIMEOUT)


def log_to_file(path: Path) -> None:
    """Log at INFO to a file, as the worker logs each delivery to stderr."""
    handler = logging.FileHandler(path)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def post_plainly(outbox: Outbox, sink: str) -> Plain:
    """Post every fast delivery's body with one Session; return the figures.

    Bodies are built beforehand from the stored payloads, as the deliverer
    sends them; each post is signed in the loop with the subscription's
    secret, as the deliverer signs each attempt.
    """
    bodies = delivery_bodies(outbox)
    url = f"{sink}/fast/plain-{outbox.name}"
    ok = failed = 0
    started = time.perf_counter()
    with requests.Session() as http:
        for event_id, secret, body in bodies:
            headers = delivery_headers([secret], event_id, datetime.now(UTC), body)
            response = http.post(
                url, data=body, headers=headers, timeout=REQUEST_TIMEOUT
            )
            if response.status_code == 204:
                ok += 1
            else:
                failed += 1

    return Plain(ok, failed, time.perf_counter() - started)


def drain(
    outbox: Outbox, config: DeliveryConfig, interval: float, limit: float
) -> Drained:
    """Drive a deliverer on the dispatch tick until the fast deliveries are done."""
    deliverer = Deliverer(outbox.store, worker=f"bench-{outbox.name}", config=config)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    next_tick = next_check = started
    timed_out = False
    try:
        while True:
            now = time.monotonic()
            if now >= next_check:
                if tally(outbox, started_at).fast_pending == 0:
                    break
                next_check = now + CHECK_SECONDS
            if now - started > limit:
                timed_out = True
                break

            deliverer.run_once(wait=False, refill=True)
            next_tick = next_tick_after(next_tick, interval, time.monotonic())
            time.sleep(max(0.0, next_tick - time.monotonic()))

        at_drain = tally(outbox, started_at)
    finally:
        deliverer.close()

    return Drained(
        name=outbox.name,
        seconds=at_drain.fast_seconds,
        at_drain=at_drain,
        at_close=tally(outbox, started_at),
        sink_fast=sum(outbox.sink_counts().values()),
        timed_out=timed_out,
    )


def next_tick_after(tick: float, interval: float, now: float) -> float:
    """Return the first tick after ``now``; missed ones are run once, as coalesced.

    APScheduler's interval trigger keeps its grid and, with ``coalesce``,
    runs a late job once rather than once per missed tick.
    """
    missed = max(0, int((now - tick) // interval))
    return tick + (missed + 1) * interval


@contextmanager
def opened_outbox(
    args: argparse.Namespace, workdir: Path, sink: str, name: str, *, slow: int
) -> Iterator[Outbox]:
    """Yield a fresh outbox for one scenario; close its store afterwards."""
    outbox = prepare_outbox(
        workdir / f"{name}.db",
        name,
        sink,
        fast=args.fast_subscribers,
        slow=slow,
        events=args.events,
    )
    try:
        yield outbox
    finally:
        outbox.store.dispose()


def run_round(
    args: argparse.Namespace,
    config: DeliveryConfig,
    workdir: Path,
    sink: str,
    interval: float,
    step: int,
    number: int,
) -> Round:
    """Run the plain loop and both scenarios at one dispatch interval; print them.

    ``step`` (the interval's place) and ``number`` (the round's) keep the
    databases and sink paths of each round apart. Odd rounds drain the
    outbox with the slow subscriber first, so that whatever favours the
    first or the second drain (the disk flushing the previous one, the
    neighbours' load) cancels out over rounds.
    """
    with ExitStack() as boxes:
        fast_box = boxes.enter_context(
            opened_outbox(args, workdir, sink, f"fast-{step}-{number}", slow=0)
        )
        slow_box = boxes.enter_context(
            opened_outbox(
                args, workdir, sink, f"slow-{step}-{number}", slow=args.slow_subscribers
            )
        )
        plain = post_plainly(fast_box, sink)

        slow_first = number % 2 == 1
        order = [slow_box, fast_box] if slow_first else [fast_box, slow_box]
        drained = {
            box.name: drain(box, config, interval, args.timeout) for box in order
        }

    fast, slow = drained[fast_box.name], drained[slow_box.name]
    result = Round(interval, plain, fast, slow, slow_first)
    report_round(result)
    return result


def main() -> int:
    """Run both scenarios at each interval; print the figures."""
    args = parse_args()
    signal.signal(signal.SIGTERM, raise_interrupt)
    config = delivery_config(args)
    intervals = [float(part) for part in args.intervals.split(",") if part.strip()]

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        log_to_file(workdir / "bench.log")
        try:
            sink = stack.enter_context(serving_sink(args, workdir))
            report_header(args, config)
            for step, interval in enumerate(intervals):
                rounds = [
                    run_round(args, config, workdir, sink, interval, step, n)
                    for n in range(args.rounds)
                ]
                if len(rounds) > 1:
                    report_medians(rounds)
        except KeyboardInterrupt:
            print("interrupted; sink stopped", file=sys.stderr)
            return 130

    return 0


if __name__ == "__main__":
    sys.exit(main())
