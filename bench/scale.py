"""Measure what a second web process and a second worker add on PostgreSQL.

Ingest: two ``bridge serve`` processes (one gunicorn worker each) on one
fresh database; the same client load goes first to one of them, then split
across both. Drain: a fresh database with a pre-filled outbox of completion
statements, one per (learner, course) pair of the sandbox, applied by one
worker, then the same on another fresh database by two. Prints each
figure, the ratios two over one and the machine's CPU count.

Run from the repository root, with PostgreSQL on 127.0.0.1:5432::

    .venv/bin/python -m bench.scale --seconds 10 --events 800
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from bench.ingest import (
    HOST,
    SOURCE,
    WARMUP_SECONDS,
    Figures,
    Target,
    clean_env,
    free_port,
    post_until,
    raise_interrupt,
    running,
    wait_until_answering,
    write_sources,
)
from bridge.config import DEFAULT_WEB_THREADS

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - the sandbox's public default
COURSES = 8  # the sandbox's seeded learning resources
DRAIN_TIMEOUT = 600.0
AUTH = {"Authorization": f"Basic {SANDBOX_TOKEN}"}


@dataclass(frozen=True)
class Drain:
    """How fast some workers applied a pre-filled outbox."""

    workers: int
    calls: int
    seconds: float

    @property
    def rate(self) -> float:
        """Return calls per second, first call to last."""
        return self.calls / self.seconds if self.seconds else float("nan")


def parse_args() -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per ingest run")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_WEB_THREADS,
        help="threads per gunicorn worker (BRIDGE_WEB_THREADS)",
    )
    parser.add_argument(
        "--events", type=int, default=800, help="outbox size per drain run"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="one-then-two rounds of each bench"
    )
    return parser.parse_args()


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty PostgreSQL database; drop it at the end."""
    name = f"bridge_bench_{uuid.uuid4().hex[:12]}"
    admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def admin(statement: str) -> None:
    """Run one statement on the server's admin database, autocommitted."""
    engine = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        message = f"PostgreSQL at 127.0.0.1:5432 unreachable: {reason}"
        raise SystemExit(message) from None
    finally:
        engine.dispose()


def count_events(engine: Engine, status: str | None = None) -> int:
    """Return how many events a database holds, optionally of one status."""
    query = "SELECT count(*) FROM events"
    if status:
        query += " WHERE status = :status"
    with engine.connect() as connection:
        return int(connection.execute(text(query), {"status": status}).scalar_one())


def start_web(stack: ExitStack, env: dict[str, str], workdir: Path, name: str) -> str:
    """Start ``bridge serve`` with one gunicorn worker; return its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "bridge", "serve", "--host", HOST]
    command += ["--port", str(port), "--workers", "1"]
    log_path = workdir / f"{name}.log"
    log = stack.enter_context(log_path.open("wb"))
    stack.enter_context(running(command, env, log))
    wait_until_answering(f"http://{HOST}:{port}/healthz", log_path)
    return f"http://{HOST}:{port}"


# Ingest


def drive_split(targets: list[Target], seconds: float, concurrency: int) -> Figures:
    """Post from ``concurrency`` threads, dealt round the targets, for ``seconds``."""
    total = Figures("+".join(t.name for t in targets), seconds=seconds)
    started = time.monotonic()
    deadline = started + seconds
    with ThreadPoolExecutor(concurrency) as pool:
        runs = [
            pool.submit(post_until, targets[i % len(targets)], deadline)
            for i in range(concurrency)
        ]
        for run in runs:
            total.add(run.result())

    total.seconds = time.monotonic() - started
    return total


def bench_ingest(
    args: argparse.Namespace, workdir: Path
) -> list[tuple[Figures, Figures]]:
    """Load one web process, then two, ``rounds`` times, on one fresh database."""
    with fresh_database() as url, ExitStack() as stack:
        env = clean_env(
            BRIDGE_DATABASE_URL=url,
            BRIDGE_SOURCES_FILE=str(write_sources(workdir)),
            BRIDGE_WEB_THREADS=str(args.threads),
        )
        bases = [start_web(stack, env, workdir, f"web-{n}") for n in (1, 2)]
        targets = [
            Target(f"web-{n}", f"{base}/hooks/{SOURCE}", 202)
            for n, base in enumerate(bases, 1)
        ]
        answered = drive_split(targets, WARMUP_SECONDS, args.concurrency).answered
        rounds = []
        for _ in range(args.rounds):
            one = drive_split(targets[:1], args.seconds, args.concurrency)
            two = drive_split(targets, args.seconds, args.concurrency)
            rounds.append((one, two))
            answered += one.answered + two.answered
        engine = create_engine(url)
        stored = count_events(engine)
        engine.dispose()

    print(f"ingest: {stored} events stored for {answered} answers 202")
    return rounds


# Drain


def create_learners(elms_url: str, count: int) -> list[str]:
    """Create ``count`` learners in the sandbox; return their emails."""
    emails = [f"bench-{uuid.uuid4().hex[:10]}@example.org" for _ in range(count)]
    with requests.Session() as session:
        for email in emails:
            form = {"username": email.split("@")[0], "email": email, "fname": "B"}
            response = session.post(
                f"{elms_url}/users/", data=form, headers=AUTH, timeout=10
            )
            response.raise_for_status()
    return emails


def completions(emails: list[str], courses: list[str]) -> list[bytes]:
    """Return one completion statement per (learner, course), new ids each."""
    bodies = []
    for email in emails:
        for course in courses:
            statement = {
                "id": str(uuid.uuid4()),
                "actor": {"mbox": f"mailto:{email}", "objectType": "Agent"},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
                "object": {
                    "id": f"http://example.com/bench/{uuid.uuid4().hex[:8]}",
                    "definition": {"name": {"en-US": course}},
                },
                "result": {"completion": True, "score": {"scaled": 0.9}},
                "timestamp": "2026-12-01T09:00:00Z",
            }
            bodies.append(json.dumps(statement).encode())
    return bodies


def fill(base: str, bodies: list[bytes], concurrency: int) -> None:
    """Post every statement; stop the bench if one is not accepted."""
    url = f"{base}/hooks/{SOURCE}"
    headers = {"Content-Type": "application/json"}

    def post(body: bytes) -> int:
        return requests.post(url, data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(post, bodies))
    refused = [s for s in statuses if s != 202]
    if refused:
        raise SystemExit(f"filling the outbox: {len(refused)} answers not 202")


def drain_with(
    workers: int,
    bodies: list[bytes],
    sandbox: str,
    args: argparse.Namespace,
    workdir: Path,
) -> Drain:
    """Fill a fresh outbox, let ``workers`` workers apply it, time the calls."""
    with fresh_database() as url, ExitStack() as stack:
        env = clean_env(
            BRIDGE_DATABASE_URL=url,
            BRIDGE_SOURCES_FILE=str(write_sources(workdir)),
            BRIDGE_ELMS_URL=f"{sandbox}/demo/backend",
            BRIDGE_ELMS_TOKEN=SANDBOX_TOKEN,
        )
        base = start_web(stack, env, workdir, f"fill-{workers}")
        fill(base, bodies, args.concurrency)
        requests.delete(f"{sandbox}/_sandbox/calls", timeout=10)

        command = [sys.executable, "-m", "bridge", "worker"]
        for number in range(workers):
            log_path = workdir / f"worker-{workers}-{number}.log"
            log = stack.enter_context(log_path.open("wb"))
            stack.enter_context(running(command, env, log))
        wait_until_drained(url)
        calls = requests.get(f"{sandbox}/_sandbox/calls", timeout=30).json()["calls"]

    times = [datetime.fromisoformat(c["time"]) for c in calls if c["method"] == "PUT"]
    seconds = (max(times) - min(times)).total_seconds() if len(times) > 1 else 0.0
    return Drain(workers, len(times), seconds)


def wait_until_drained(url: str) -> None:
    """Return once no event is pending; stop the bench after DRAIN_TIMEOUT."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    engine = create_engine(url)
    try:
        while count_events(engine, "pending"):
            if time.monotonic() > deadline:
                raise SystemExit(f"the outbox did not drain in {DRAIN_TIMEOUT:g}s")
            time.sleep(0.25)
    finally:
        engine.dispose()


def bench_drain(args: argparse.Namespace, workdir: Path) -> list[tuple[Drain, Drain]]:
    """Drain as many events with one worker, then with two, ``rounds`` times."""
    port = free_port()
    sandbox = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "bridge", "sandbox", "--port", str(port)]
    log_path = workdir / "sandbox.log"
    with log_path.open("wb") as log, running(command, clean_env(), log):
        wait_until_answering(f"{sandbox}/_sandbox/faults", log_path)
        emails = create_learners(f"{sandbox}/demo/backend", -(-args.events // COURSES))
        learning = requests.get(
            f"{sandbox}/demo/backend/learning/", headers=AUTH, timeout=10
        ).json()
        courses = [item["name"] for item in learning]
        rounds = []
        for _ in range(args.rounds):
            bodies = completions(emails, courses)[: args.events]
            one = drain_with(1, bodies, sandbox, args, workdir)
            bodies = completions(emails, courses)[: args.events]
            two = drain_with(2, bodies, sandbox, args, workdir)
            rounds.append((one, two))
    return rounds


# Report


def report(
    args: argparse.Namespace,
    ingest: list[tuple[Figures, Figures]],
    drains: list[tuple[Drain, Drain]],
) -> None:
    """Print every round's figures, then the ratios two over one."""
    print(
        f"scale bench: PostgreSQL, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; web processes of 1 gunicorn worker "
        f"x {args.threads} threads, {args.concurrency} client threads, "
        f"{args.seconds:g} s per ingest run, {args.events} events per drain run"
    )
    heading = f"{'answered':>9} {'failed':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    print(f"{'round ingest':<20} {heading}")
    for number, pair in enumerate(ingest, 1):
        for name, figures in zip(("1 web", "2 web"), pair, strict=True):
            print_ingest(f"{number}     {name}", figures)
    for number, (one, two) in enumerate(drains, 1):
        print(
            f"{number} drain: 1 worker {one.calls} calls in {one.seconds:.1f} s "
            f"= {one.rate:.1f}/s; 2 workers {two.calls} calls in "
            f"{two.seconds:.1f} s = {two.rate:.1f}/s"
        )

    one_in, two_in = (total_of([pair[i] for pair in ingest]) for i in (0, 1))
    drain_one, drain_two = (
        sum(pair[i].calls for pair in drains) / sum(pair[i].seconds for pair in drains)
        for i in (0, 1)
    )
    each = ", ".join(f"{two.rate / one.rate:.2f}" for one, two in drains)
    print(
        f"ratios two/one over all rounds: ingest {two_in.rate / one_in.rate:.2f} "
        f"(p99 x{two_in.percentile(99) / one_in.percentile(99):.2f}), "
        f"drain {drain_two / drain_one:.2f} (per round {each}); "
        f"os.cpu_count() = {os.cpu_count()}"
    )


def print_ingest(name: str, figures: Figures) -> None:
    """Print one ingest run's row."""
    failed = sum(figures.failures.values())
    print(
        f"{name:<20} {figures.answered:>9} {failed:>7} {figures.rate:>8.1f} "
        f"{figures.percentile(50):>8.2f} {figures.percentile(99):>8.2f}"
    )
    if figures.failures:
        print(f"  failures: {dict(figures.failures)}")


def total_of(runs: list[Figures]) -> Figures:
    """Return the figures of several runs as one."""
    total = Figures(runs[0].name, seconds=sum(run.seconds for run in runs))
    for run in runs:
        total.add(run)
    return total


def main() -> int:
    """Run the ingest and the drain benchmarks; print the figures."""
    args = parse_args()
    signal.signal(signal.SIGTERM, raise_interrupt)
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        try:
            ingest = bench_ingest(args, workdir)
            drains = bench_drain(args, workdir)
        except KeyboardInterrupt:
            print("interrupted; servers stopped", file=sys.stderr)
            return 130
    report(args, ingest, drains)
    return 0


if __name__ == "__main__":
    sys.exit(main())
