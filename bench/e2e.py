"""Measure how long an inbound statement takes to reach Open ELMS.

Starts the sandbox, the web process and one worker on 127.0.0.1 with a
fresh SQLite file, then sends xAPI completions to the bridge at a steady
rate while, in the same run and at the same rate, a direct
``OpenElmsClient.complete`` call goes to the sandbox. A bridge statement's
latency runs from just before its POST to the time the sandbox logged the
matching call (both UTC wall clock on this machine; the sandbox keeps
milliseconds). The direct latency is the client's own round trip.

Each statement names one of 56 (learner, course) pairs and a score that
differs from the pair's previous one, so every Open ELMS call path
``learning/L/U/complete/S`` is unique in the run; the source's
``score_policy: latest`` and increasing timestamps make each one a call.

Run from the repository root::

    .venv/bin/python -m bench.e2e --rate 20 --seconds 10
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from bench.ingest import clean_env, free_port, raise_interrupt, running
from bridge.config import DEFAULT_DISPATCH_BATCH, DEFAULT_DISPATCH_INTERVAL
from bridge.elms import OpenElmsClient
from bridge.errors import ElmsError

HOST = "127.0.0.1"
SITE = "bench"
TOKEN = "bench-token"  # noqa: S105 - the local sandbox's token
SOURCE = "e2e"
GOAL_MS = 1000.0  # "a new event reaches Open ELMS within a second"
WARMUP_SECONDS = 1.0
START_TIMEOUT = 30.0
DRAIN_TIMEOUT = 30.0
POLL_SECONDS = 0.05
REQUEST_TIMEOUT = 10.0
SENDER_THREADS = 16
SCORES = 100

# 7 and 8 are coprime, so pair k = (learner k % 7, course k % 8) visits all
# 56 pairs, and any 8 in a row name every learner and every course.
BRIDGE_LEARNERS = (
    "learner1@example.com",
    "xapi-test@example.com",
    "user@example.com",
    "player-1@example.com",
    "guest@example.com",
    "admin@example.com",
    "teampb@example.com",
)
DIRECT_LEARNERS = (
    "member.one@example.org",
    "lti.learner@example.org",
    "essay@example.org",
    "xapi.account@example.org",
    "scorm.profile@example.org",
    "commit@example.org",
    "student@example.org",
)
COURSES = (
    "Fire Safety Awareness",
    "Data Protection Essentials",
    "Manual Handling in Practice",
    "Customer Conversations That Work",
    "Information Security Policy",
    "Leading Effective Teams",
    "Infection Prevention and Control",
    "Golf Explained: Rules and Etiquette",
)
PAIRS = len(BRIDGE_LEARNERS) * len(COURSES)


@dataclass(frozen=True)
class Completion:
    """One planned completion: learner, course, their Open ELMS ids, score."""

    index: int
    email: str
    course: str
    user_id: str
    learning_id: str
    score: int

    @property
    def path(self) -> str:
        """Return the Open ELMS call path this completion leads to."""
        return f"learning/{self.learning_id}/{self.user_id}/complete/{self.score}"


@dataclass(frozen=True)
class Post:
    """What happened to one statement sent to the bridge."""

    completion: Completion
    statement_id: str
    sent_at: float
    answer_ms: float
    status: int | str


@dataclass(frozen=True)
class Stack:
    """Where the running parts answer."""

    hook_url: str
    elms_url: str
    admin_url: str
    database: Path
    logs: Path


class Catalogue:
    """Map emails and course names to the sandbox's ids; plan completions."""

    def __init__(self, client: OpenElmsClient) -> None:
        emails = BRIDGE_LEARNERS + DIRECT_LEARNERS
        self.users = {email: find_user_id(client, email) for email in emails}
        learning = client.list_learning()
        self.learning = {str(item["name"]): str(item["id"]) for item in learning}

    def plan(self, index: int, emails: tuple[str, ...]) -> Completion:
        """Return completion ``index``: its pair cycles, its score moves on."""
        email = emails[index % len(emails)]
        course = COURSES[index % len(COURSES)]
        lap = index // math.lcm(len(emails), len(COURSES))
        return Completion(
            index=index,
            email=email,
            course=course,
            user_id=self.users[email],
            learning_id=self.learning[course],
            score=lap % SCORES + 1,
        )


def parse_args() -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="statements/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed run")
    parser.add_argument(
        "--dispatch-interval",
        type=float,
        default=None,
        help="the worker's BRIDGE_DISPATCH_INTERVAL (default: the product's)",
    )
    args = parser.parse_args()

    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    total = round(args.rate * (WARMUP_SECONDS + args.seconds)) + len(COURSES)
    if total > PAIRS * SCORES:
        parser.error(f"at most {PAIRS * SCORES} statements keep call paths unique")
    return args


def find_user_id(client: OpenElmsClient, email: str) -> str:
    """Return the sandbox id of the one user with ``email``."""
    (user,) = client.search_users(email=email)
    return str(user["id"])


def statement_of(completion: Completion, base: datetime) -> dict[str, object]:
    """Return an xAPI completion statement for a planned completion."""
    occurred = base + timedelta(seconds=completion.index)
    return {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": f"mailto:{completion.email}", "objectType": "Agent"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {
            "id": f"http://example.com/bench/courses/{completion.learning_id}",
            "definition": {"name": {"en-US": completion.course}},
        },
        "result": {"completion": True, "score": {"scaled": completion.score / 100}},
        "timestamp": occurred.isoformat(),
    }


# Starting and stopping the parts


def write_sources(directory: Path) -> Path:
    """Write a sources file with one open xAPI source; return its path."""
    path = directory / "sources.yaml"
    path.write_text(
        "sources:\n"
        f"  - name: {SOURCE}\n"
        "    format: xapi\n"
        "    auth: {type: none}\n"
        "    options: {score_policy: latest}\n"
    )
    return path


def wait_for_ok(url: str, log_path: Path) -> None:
    """Return once ``url`` answers 200; fail after START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)

    raise SystemExit(f"{url} not ready in {START_TIMEOUT:g}s\n{tail(log_path)}")


def tail(log_path: Path, size: int = 2000) -> str:
    """Return the end of a log file, for an error message."""
    return f"--- {log_path.name}:\n{log_path.read_text(errors='replace')[-size:]}"


@contextmanager
def started_stack(args: argparse.Namespace, workdir: Path) -> Iterator[Stack]:
    """Run sandbox, web process and worker; stop them all on exit."""
    sandbox_port, web_port = free_port(), free_port()
    root = f"http://{HOST}:{sandbox_port}"
    stack = Stack(
        hook_url=f"http://{HOST}:{web_port}/hooks/{SOURCE}",
        elms_url=f"{root}/{SITE}/backend",
        admin_url=f"{root}/_sandbox",
        database=workdir / "bridge.db",
        logs=workdir,
    )
    env = clean_env(
        BRIDGE_DATABASE_URL=f"sqlite:///{stack.database}",
        BRIDGE_SOURCES_FILE=str(write_sources(workdir)),
        BRIDGE_ELMS_URL=stack.elms_url,
        BRIDGE_ELMS_TOKEN=TOKEN,
    )
    if args.dispatch_interval is not None:
        env["BRIDGE_DISPATCH_INTERVAL"] = str(args.dispatch_interval)
    bridge = [sys.executable, "-m", "bridge"]

    with ExitStack() as processes:
        sandbox = ["sandbox", "--port", str(sandbox_port), "--token", TOKEN]
        start(processes, bridge + sandbox + ["--site", SITE], env, workdir / "sb.log")
        wait_for_ok(f"{stack.admin_url}/calls", workdir / "sb.log")

        serve = ["serve", "--host", HOST, "--port", str(web_port), "--workers", "2"]
        start(processes, bridge + serve, env, workdir / "web.log")
        wait_for_ok(f"http://{HOST}:{web_port}/healthz", workdir / "web.log")

        start(processes, bridge + ["worker"], env, workdir / "worker.log")
        yield stack


def start(
    processes: ExitStack, command: list[str], env: dict[str, str], log: Path
) -> None:
    """Start a server whose output goes to ``log``; stop it with ``processes``."""
    handle = processes.enter_context(log.open("wb"))
    processes.enter_context(running(command, env, handle))


# Sending at a steady rate


def pace(
    pool: ThreadPoolExecutor,
    rate: float,
    indexes: range,
    jobs: list[Callable[[int], object]],
) -> list[list[Future[object]]]:
    """Submit every job for index n at (n - first) / rate s from now."""
    begun = time.monotonic()
    submitted: list[list[Future[object]]] = [[] for _ in jobs]
    for n, index in enumerate(indexes):
        delay = begun + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for job, futures in zip(jobs, submitted, strict=True):
            futures.append(pool.submit(job, index))
    return submitted


def post_statement(
    session: requests.Session, url: str, completion: Completion, base: datetime
) -> Post:
    """Post one completion statement to the bridge; note when it left."""
    body = statement_of(completion, base)
    sent_at = time.time()
    started = time.perf_counter()
    try:
        response = session.post(url, json=body, timeout=REQUEST_TIMEOUT)
        status: int | str = response.status_code
    except requests.RequestException as exc:
        status = type(exc).__name__

    answer_ms = (time.perf_counter() - started) * 1000
    return Post(completion, str(body["id"]), sent_at, answer_ms, status)


def call_direct(client: OpenElmsClient, completion: Completion) -> float | str:
    """Complete a pair straight in the sandbox; return ms, or the failure."""
    started = time.perf_counter()
    try:
        client.complete(completion.learning_id, completion.user_id, completion.score)
    except ElmsError as exc:
        return type(exc).__name__
    return (time.perf_counter() - started) * 1000


# Reading the sandbox's call log


class CallWatcher:
    """Follow the sandbox's call log and note when each wanted path arrived."""

    def __init__(self, admin_url: str) -> None:
        self.url = f"{admin_url}/calls"
        self.cursor = 0
        self.seen: dict[str, float] = {}

    def poll(self) -> None:
        """Read the calls logged since the last poll."""
        page = requests.get(
            self.url, params={"since": self.cursor}, timeout=REQUEST_TIMEOUT
        ).json()
        self.cursor = int(page["next"])
        for call in page["calls"]:
            if call["method"] == "PUT" and call["status"] == 200:
                logged = datetime.fromisoformat(call["time"]).timestamp()
                self.seen.setdefault(call["path"], logged)

    def wait_for(self, paths: set[str], timeout: float) -> set[str]:
        """Poll until every path was called or time is up; return the missing."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            missing = paths - self.seen.keys()
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(POLL_SECONDS)


# One run


@dataclass
class Results:
    """The timed run's raw figures."""

    posts: list[Post]
    direct: list[float | str]
    arrived: dict[str, float]

    def bridge_ms(self) -> list[float]:
        """Return POST-to-call latencies of the matched statements."""
        return [
            (self.arrived[p.completion.path] - p.sent_at) * 1000
            for p in self.posts
            if p.completion.path in self.arrived
        ]

    def rate(self) -> float:
        """Return the statements sent per second, from first to last send."""
        times = [p.sent_at for p in self.posts]
        span = max(times) - min(times) if len(times) > 1 else 0.0
        return (len(times) - 1) / span if span else float("nan")

    def direct_ms(self) -> list[float]:
        """Return the round trips of the direct calls that succeeded."""
        return [d for d in self.direct if isinstance(d, float)]


def run(args: argparse.Namespace, stack: Stack) -> Results:
    """Warm the stack up, then send for ``args.seconds``; return the figures."""
    client = OpenElmsClient(stack.elms_url, TOKEN, retries=0, pool_size=SENDER_THREADS)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=SENDER_THREADS))
    catalogue = Catalogue(client)
    base = datetime.now(UTC) - timedelta(days=1)
    watcher = CallWatcher(stack.admin_url)

    def to_bridge(index: int) -> Post:
        return post_statement(
            session, stack.hook_url, catalogue.plan(index, BRIDGE_LEARNERS), base
        )

    def to_sandbox(index: int) -> float | str:
        return call_direct(client, catalogue.plan(index, DIRECT_LEARNERS))

    jobs: list[Callable[[int], object]] = [to_bridge, to_sandbox]
    warmup = range(max(len(COURSES), round(args.rate * WARMUP_SECONDS)))
    timed = range(warmup.stop, warmup.stop + round(args.rate * args.seconds))
    with ThreadPoolExecutor(SENDER_THREADS) as pool, client, session:
        warm_posts = collect(pace(pool, args.rate, warmup, jobs)[0])
        settle(watcher, warm_posts, stack.logs)

        posts, direct = pace(pool, args.rate, timed, jobs)
        results = Results(collect(posts), collect(direct), {})

    wanted = {p.completion.path for p in results.posts if p.status == 202}
    watcher.wait_for(wanted, DRAIN_TIMEOUT)
    results.arrived = watcher.seen
    return results


def collect(futures: list[Future[object]]) -> list:
    """Return the results of futures, in order."""
    return [future.result() for future in futures]


def settle(watcher: CallWatcher, posts: list[Post], logs: Path) -> None:
    """Wait for the warm-up statements to reach the sandbox, or stop."""
    refused = [p for p in posts if p.status != 202]
    if refused:
        raise SystemExit(f"warm-up POST answered {refused[0].status}\n{tail_all(logs)}")

    missing = watcher.wait_for({p.completion.path for p in posts}, START_TIMEOUT)
    if missing:
        raise SystemExit(f"warm-up calls never arrived: {sorted(missing)[:3]}...")


def tail_all(logs: Path) -> str:
    """Return the ends of the web and worker logs."""
    return "\n".join(tail(logs / name) for name in ("web.log", "worker.log"))


# Where the time went, from the bridge's own records


def stored_at(database: Path) -> dict[str, float]:
    """Return when each event was stored, by statement id (epoch seconds)."""
    uri = f"file:{database}?mode=ro"
    with sqlite3.connect(uri, uri=True) as connection:
        rows = connection.execute(
            "SELECT source_event_id, created_at FROM events WHERE source = ?",
            (SOURCE,),
        ).fetchall()
    return {
        event_id: datetime.fromisoformat(created).replace(tzinfo=UTC).timestamp()
        for event_id, created in rows
    }


def stages(results: Results, stored: dict[str, float]) -> dict[str, list[float]]:
    """Split each matched statement's latency at the time it was stored."""
    split: dict[str, list[float]] = {"POST answered": [], "stored -> call": []}
    for post in results.posts:
        arrived = results.arrived.get(post.completion.path)
        if arrived is None or post.statement_id not in stored:
            continue
        split["POST answered"].append(post.answer_ms)
        split["stored -> call"].append((arrived - stored[post.statement_id]) * 1000)
    return split


# Report


def percentile(values: list[float], which: int) -> float:
    """Return the value below which ``which`` percent of ``values`` fall."""
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=100)[which - 1]


def row(name: str, values: list[float]) -> str:
    """Return one table line: count, p50, p99 and max in ms."""
    top = max(values, default=float("nan"))
    return (
        f"{name:<22} {len(values):>6} {percentile(values, 50):>9.1f} "
        f"{percentile(values, 99):>9.1f} {top:>9.1f}"
    )


def report(
    args: argparse.Namespace, results: Results, stored: dict[str, float]
) -> None:
    """Print the figures of both paths, their ratios and the goal's verdict."""
    interval = args.dispatch_interval or DEFAULT_DISPATCH_INTERVAL
    print(
        f"e2e bench: {args.rate:g}/s for {args.seconds:g} s after "
        f"{WARMUP_SECONDS:g} s warm-up; web 2 gunicorn workers, 1 bridge worker "
        f"(dispatch every {interval:g} s, batch {DEFAULT_DISPATCH_BATCH}), "
        f"SQLite, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    accepted = sum(1 for p in results.posts if p.status == 202)
    bridge, direct = results.bridge_ms(), results.direct_ms()
    print(
        f"sent {len(results.posts)} statements at "
        f"{results.rate():.1f}/s, {accepted} answered 202; "
        f"matched {len(bridge)} calls in the sandbox, "
        f"{accepted - len(bridge)} missing after {DRAIN_TIMEOUT:g} s"
    )
    print_failures(results)

    print(f"{'latency':<22} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    print(row("bridge POST -> call", bridge))
    print(row("direct client call", direct))
    for name, values in stages(results, stored).items():
        print(row(f"  {name}", values))

    p50, p99 = percentile(bridge, 50), percentile(bridge, 99)
    print(
        f"ratio bridge/direct: p50 x{p50 / percentile(direct, 50):.1f}, "
        f"p99 x{p99 / percentile(direct, 99):.1f}"
    )
    print(
        f"goal (in Open ELMS within {GOAL_MS:g} ms): p50 {verdict(p50)}, "
        f"p99 {verdict(p99)}"
    )


def print_failures(results: Results) -> None:
    """Print what went wrong on either path, if anything did."""
    refused = [str(p.status) for p in results.posts if p.status != 202]
    failed = [d for d in results.direct if isinstance(d, str)]
    if refused:
        print(f"bridge answers other than 202: {sorted(set(refused))}")
    if failed:
        print(f"direct calls failed: {len(failed)} ({sorted(set(failed))})")


def verdict(value: float) -> str:
    """Return whether a latency meets the goal, in words."""
    return "met" if value < GOAL_MS else "missed"


def main() -> int:
    """Start the stack, measure both paths, print the figures."""
    args = parse_args()
    signal.signal(signal.SIGTERM, raise_interrupt)

    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        try:
            with started_stack(args, workdir) as stack:
                results = run(args, stack)
            stored = stored_at(stack.database)
        except KeyboardInterrupt:
            print("interrupted; servers stopped", file=sys.stderr)
            return 130

    report(args, results, stored)
    return 0


if __name__ == "__main__":
    sys.exit(main())
