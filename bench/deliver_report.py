"""Figures of ``bench/deliver.py`` and how they are printed.

A round at one dispatch interval holds three runs over the same events:
the plain ``requests.Session`` loop, the deliverer with fast subscribers
only, and the deliverer with a slow subscriber beside them. On a shared
machine one round can swing by half either way, so ``--rounds`` repeats
it and the medians are printed too.
"""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge.config import DEFAULT_DISPATCH_INTERVAL

if TYPE_CHECKING:
    import argparse

    from bench.deliver_outbox import Tally
    from bridge.jobs.deliver import DeliveryConfig


@dataclass(frozen=True)
class Drained:
    """How one deliverer run went: the tallies and the time taken."""

    name: str
    seconds: float
    at_drain: Tally
    at_close: Tally
    sink_fast: int
    timed_out: bool

    @property
    def rate(self) -> float:
        """Return fast deliveries recorded per second until the fast ones drained."""
        return self.at_drain.fast_delivered / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Plain:
    """What the plain Session loop did: posts answered 204, others, seconds."""

    ok: int
    failed: int
    seconds: float

    @property
    def rate(self) -> float:
        """Return posts answered 204 per second."""
        return self.ok / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Round:
    """The three runs of one round at one dispatch interval."""

    interval: float
    plain: Plain
    fast: Drained
    slow: Drained
    slow_first: bool


def report_header(args: argparse.Namespace, config: DeliveryConfig) -> None:
    """Print what was run and on what."""
    print(
        f"deliver bench: {args.events} events x {args.fast_subscribers} fast "
        f"subscribers (204 at once), + {args.slow_subscribers} answering after "
        f"{args.slow_seconds:g} s in the second scenario; deliverer "
        f"{config.concurrency} threads, {config.per_subscription} in flight per "
        f"subscription; SQLite; sink: gunicorn gthread 1 worker; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )


def report_round(result: Round) -> None:
    """Print the plain loop and both deliverer runs of one round."""
    interval, plain, fast, slow = (
        result.interval,
        result.plain,
        result.fast,
        result.slow,
    )
    default = " (the default)" if interval == DEFAULT_DISPATCH_INTERVAL else ""
    order = ", slow drained first" if result.slow_first else ""
    print(f"dispatch interval {interval:g} s{default}{order}:")

    not_ok = f" ({plain.failed} not 204)" if plain.failed else ""
    print(
        f"  {'plain Session loop':<18} {plain.ok:>5} in {plain.seconds:6.2f} s"
        f" = {plain.rate:5.0f}/s{not_ok}"
    )

    print(
        f"{describe_run('bridge, fast only', fast)}:"
        f" bridge/plain {ratio(fast.rate, plain.rate):.2f}"
    )
    at_close = slow.at_close
    print(
        f"{describe_run('bridge, + slow', slow)}:"
        f" x{ratio(slow.rate, fast.rate):.2f} of fast only;"
        f" slow delivered {slow.at_drain.slow_delivered} meanwhile,"
        f" {at_close.slow_delivered} of {at_close.slow_total} at close"
    )
    for run in (fast, slow):
        problems = run.at_close.describe_problems(run.sink_fast)
        if problems or run.timed_out:
            print(f"  {run.name}: {'timed out; ' if run.timed_out else ''}{problems}")


def describe_run(label: str, run: Drained) -> str:
    """Return the start of a deliverer run's line: count, time, rate."""
    return (
        f"  {label:<18} {run.at_drain.fast_delivered:>5} in {run.seconds:6.2f} s"
        f" = {run.rate:5.0f}/s"
    )


def report_medians(rounds: list[Round]) -> None:
    """Print the median rates and ratios of several rounds at one interval."""
    plain = statistics.median(r.plain.rate for r in rounds)
    fast = statistics.median(r.fast.rate for r in rounds)
    slow = statistics.median(r.slow.rate for r in rounds)
    beside = sorted(ratio(r.slow.rate, r.fast.rate) for r in rounds)
    print(
        f"median of {len(rounds)} rounds at {rounds[0].interval:g} s: plain "
        f"{plain:.0f}/s, fast only {fast:.0f}/s (bridge/plain "
        f"{ratio(fast, plain):.2f}), + slow {slow:.0f}/s (x{ratio(slow, fast):.2f}; "
        f"per round x{beside[0]:.2f} to x{beside[-1]:.2f})"
    )


def ratio(part: float, whole: float) -> float:
    """Return part / whole, or NaN when whole is zero."""
    return part / whole if whole else float("nan")
