"""Measure sustained xAPI intake of the bridge against a bare Flask endpoint.

Both run under gunicorn with the same options (``gthread``, the bridge's
thread count, the worker count given here) on 127.0.0.1, one after the
other, so they never share the CPU. Every statement carries a new uuid,
so each bridge answer stands for a durable write to a fresh SQLite file.

Run from the repository root::

    .venv/bin/python bench/ingest.py --seconds 10 --concurrency 8 --workers 2
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import requests

from bridge.config import DEFAULT_WEB_THREADS

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SOURCE = "bench"
WARMUP_SECONDS = 1.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 10.0
GOAL = 0.5
HEADERS = {"Content-Type": "application/json"}


@dataclass
class Figures:
    """What one endpoint did during one timed run."""

    name: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def answered(self) -> int:
        """Return how many requests got the expected status."""
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        """Return the expected answers per second."""
        return self.answered / self.seconds

    def percentile(self, which: int) -> float:
        """Return the latency in ms below which ``which`` percent fall."""
        if self.answered < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100)[which - 1]

    def add(self, other: Figures) -> None:
        """Fold the figures of another thread into these."""
        self.latencies_ms.extend(other.latencies_ms)
        self.failures.update(other.failures)


@dataclass(frozen=True)
class Target:
    """An endpoint under test: where to post and what success looks like."""

    name: str
    url: str
    expected: int


def parse_args() -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per endpoint")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_WEB_THREADS,
        help="threads per gunicorn worker, for both servers (BRIDGE_WEB_THREADS)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    return parser.parse_args()


def free_port() -> int:
    """Return a TCP port on the loopback that is free right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """Return this process's environment without BRIDGE_* plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(extra)
    return env


def write_sources(directory: Path) -> Path:
    """Write a sources file with one open xAPI source; return its path."""
    path = directory / "sources.yaml"
    document = {
        "sources": [{"name": SOURCE, "format": "xapi", "auth": {"type": "none"}}]
    }
    path.write_text(json.dumps(document))  # JSON is valid YAML
    return path


@contextmanager
def running(command: list[str], env: dict[str, str], log: IO[bytes]) -> Iterator[None]:
    """Run a server in its own process group; stop the whole group on exit."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask a server's process group to stop; kill it if it lingers."""
    if process.poll() is not None:
        return

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)


def wait_until_answering(url: str, log_path: Path) -> None:
    """Return once ``url`` answers HTTP at all; fail after START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)

    tail = log_path.read_text(errors="replace")[-2000:]
    raise SystemExit(f"{url} did not answer in {START_TIMEOUT}s; log:\n{tail}")


def statement_body() -> bytes:
    """Return one xAPI completion statement with a new id."""
    statement = {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": "mailto:learner1@example.com", "objectType": "Agent"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "http://example.com/courses/fire-safety"},
        "result": {"completion": True, "score": {"scaled": 0.85}},
        "timestamp": "2026-01-01T10:00:00Z",
    }
    return json.dumps(statement).encode()


def post_until(target: Target, deadline: float) -> Figures:
    """Post statements on one session until ``deadline``; time each answer."""
    figures = Figures(target.name, seconds=0.0)
    with requests.Session() as session:
        while time.monotonic() < deadline:
            body = statement_body()
            started = time.perf_counter()
            try:
                response = session.post(
                    target.url, data=body, headers=HEADERS, timeout=REQUEST_TIMEOUT
                )
            except requests.RequestException as exc:
                figures.failures[type(exc).__name__] += 1
                continue

            elapsed_ms = (time.perf_counter() - started) * 1000
            if response.status_code == target.expected:
                figures.latencies_ms.append(elapsed_ms)
            else:
                figures.failures[str(response.status_code)] += 1

    return figures


def drive(target: Target, seconds: float, concurrency: int) -> Figures:
    """Post from ``concurrency`` threads for ``seconds``; return the totals."""
    total = Figures(target.name, seconds=seconds)
    started = time.monotonic()
    deadline = started + seconds
    with ThreadPoolExecutor(concurrency) as pool:
        runs = [pool.submit(post_until, target, deadline) for _ in range(concurrency)]
        for run in runs:
            total.add(run.result())

    total.seconds = time.monotonic() - started
    return total


def measure(target: Target, args: argparse.Namespace) -> tuple[Figures, Figures]:
    """Return the warm-up figures and the timed figures of one endpoint."""
    warmup = drive(target, WARMUP_SECONDS, args.concurrency)
    timed = drive(target, args.seconds, args.concurrency)
    return warmup, timed


def bench_bare(args: argparse.Namespace, workdir: Path) -> tuple[Figures, Figures]:
    """Serve the bare app, load it, stop it; return its figures."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bench.bare_app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(args.workers),
    ]
    log_path = workdir / "bare.log"
    env = clean_env(BRIDGE_WEB_THREADS=str(args.threads))
    with log_path.open("wb") as log, running(command, env, log):
        wait_until_answering(f"http://{HOST}:{port}/", log_path)
        target = Target("bare", f"http://{HOST}:{port}/hooks/{SOURCE}", 204)
        return measure(target, args)


def bench_bridge(
    args: argparse.Namespace, workdir: Path
) -> tuple[Figures, Figures, int]:
    """Serve the bridge, load it, stop it; return its figures and stored events."""
    port = free_port()
    database = workdir / "bridge.db"
    env = clean_env(
        BRIDGE_WEB_THREADS=str(args.threads),
        BRIDGE_DATABASE_URL=f"sqlite:///{database}",
        BRIDGE_SOURCES_FILE=str(write_sources(workdir)),
    )
    command = [
        sys.executable,
        "-m",
        "bridge",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(args.workers),
    ]
    log_path = workdir / "bridge.log"
    with log_path.open("wb") as log, running(command, env, log):
        wait_until_answering(f"http://{HOST}:{port}/healthz", log_path)
        target = Target("bridge", f"http://{HOST}:{port}/hooks/{SOURCE}", 202)
        warmup, timed = measure(target, args)

    return warmup, timed, count_events(database)


def count_events(database: Path) -> int:
    """Return how many events the bridge's database holds."""
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT count(*) FROM events").fetchone()
    return int(count)


def report(
    args: argparse.Namespace,
    bare: Figures,
    bridge: Figures,
    stored: int,
    answered: int,
) -> None:
    """Print the figures of both endpoints and their ratios."""
    print(
        f"ingest bench: {args.seconds:g} s per endpoint after {WARMUP_SECONDS:g} s "
        f"warm-up, {args.concurrency} client threads, gunicorn gthread "
        f"{args.workers} workers x {args.threads} threads, SQLite, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    columns = ("answered", "failed", "req/s", "p50 ms", "p99 ms")
    widths = (9, 7, 9, 8, 8)
    heading = " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    print(f"{'endpoint':<8} {heading}")
    for figures in (bare, bridge):
        failed = sum(figures.failures.values())
        print(
            f"{figures.name:<8} {figures.answered:>9} {failed:>7} "
            f"{figures.rate:>9.1f} {figures.percentile(50):>8.2f} "
            f"{figures.percentile(99):>8.2f}"
        )
        if figures.failures:
            print(f"  failures: {dict(figures.failures)}")

    ratio = bridge.rate / bare.rate if bare.rate else float("nan")
    verdict = "met" if ratio >= GOAL else "missed"
    print(
        f"bridge/bare: throughput {ratio:.2f} (goal >= {GOAL}: {verdict}); "
        f"latency p50 x{bridge.percentile(50) / bare.percentile(50):.2f}, "
        f"p99 x{bridge.percentile(99) / bare.percentile(99):.2f}"
    )
    print(f"bridge stored {stored} events for {answered} answers 202")


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so the servers are stopped."""
    raise KeyboardInterrupt


def main() -> int:
    """Run both endpoints, print the figures; return the exit status."""
    args = parse_args()
    signal.signal(signal.SIGTERM, raise_interrupt)

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        try:
            _, bare = bench_bare(args, workdir)
            bridge_warmup, bridge, stored = bench_bridge(args, workdir)
        except KeyboardInterrupt:
            print("interrupted; servers stopped", file=sys.stderr)
            return 130

    answered = bridge_warmup.answered + bridge.answered
    report(args, bare, bridge, stored, answered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
