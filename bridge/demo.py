"""Run every sample payload through a live bridge and check what Open ELMS got.

``python -m bridge demo`` starts the sandbox, the web process and the worker
on free loopback ports, with a fresh SQLite database in a temporary folder
and the demo configuration of ``deploy/demo`` (sources, mappings, and the
learners the sandbox seed lacks). It then posts each sample listed in the
expectations file, in that order, and waits until no event is pending
before the next: the progress rules depend on what a (learner, learning)
pair saw before, so the order is part of the expectation. Each event's
final status and call are read from the store, each call is looked up in
the sandbox's call log, and everything is compared with the expectations.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests
import yaml

from bridge.demo_checks import (
    Answer,
    EventOutcome,
    Expectation,
    SampleRun,
    judge,
    load_expectations,
)
from bridge.demo_outbound import (
    DemoReceiver,
    outbound_of,
    outbound_problems,
    wait_delivered,
)
from bridge.demo_processes import (
    LOOPBACK,
    ChildProcesses,
    DemoError,
    free_port,
    signals_stop_the_demo,
)
from bridge.demo_table import render_table
from bridge.elms import OpenElmsClient
from bridge.errors import ConfigError
from bridge.store import queries
from bridge.store.db import create_store
from bridge.store.migrate import upgrade
from bridge.store.models import EventStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bridge.store.models import EventRow

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "deploy" / "demo"
DEFAULT_SAMPLES = ROOT.parent / "shared" / "samples"
DEFAULT_EXPECTATIONS = DEMO_DIR / "expectations.yaml"

SANDBOX_SITE = "demo"
DRAIN_TIMEOUT = 30.0
POLL_SECONDS = 0.05
REQUEST_TIMEOUT = 30.0
# The worker looks for new events this often; the default (0.25 s) would
# make a demo of 46 one-at-a-time samples noticeably slower.
DISPATCH_INTERVAL = "0.1"

__all__ = [
    "DEFAULT_EXPECTATIONS",
    "DEFAULT_SAMPLES",
    "DemoError",
    "DemoOptions",
    "run_demo",
]


@dataclass(frozen=True)
class DemoOptions:
    """What to run: the samples, the expectations, and what to print."""

    samples_dir: Path = DEFAULT_SAMPLES
    expectations_file: Path = DEFAULT_EXPECTATIONS
    config_dir: Path = DEMO_DIR
    keep: bool = False
    as_json: bool = False


def run_demo(
    options: DemoOptions,
    echo: Callable[[str], None] = print,
    note: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> int:
    """Run the demo and print its rows; return 0 when every sample is as expected.

    ``echo`` prints the rows; ``note`` tells the user what is going on.

    Raises:
        ConfigError: the expectations or the samples folder are wrong.
        DemoError: a process did not start or died, or a stop signal came.
    """
    expectations = load_expectations(options.expectations_file)
    check_samples_folder(options.samples_dir, expectations)

    workdir = Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    bench = DemoBench(workdir, options.config_dir)
    try:
        with signals_stop_the_demo():
            bench.start()
            note(
                f"demo: posting {len(expectations)} samples to {bench.web_url} "
                f"(Open ELMS sandbox at {bench.elms_url})"
            )
            runs = [bench.run_sample(e, options.samples_dir) for e in expectations]
            bench.collect_outbound(runs)
    finally:
        bench.stop()
        if options.keep:
            note(f"demo: kept {workdir} (database and process logs)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    for run in runs:
        judge(run)
    print_runs(runs, options.as_json, echo)
    return 0 if all(run.ok for run in runs) else 1


def check_samples_folder(samples_dir: Path, expectations: list[Expectation]) -> None:
    """Check that the folder holds exactly the samples the expectations list.

    Samples sit in one folder per format; Markdown files are their notes.

    Raises:
        ConfigError: the folder is missing, or a file is missing or unlisted.
    """
    if not samples_dir.is_dir():
        raise ConfigError([f"samples folder {samples_dir} does not exist"])

    present = {
        path.relative_to(samples_dir).as_posix()
        for path in samples_dir.glob("*/**/*")
        if path.is_file() and path.suffix != ".md"
    }
    listed = {expectation.file for expectation in expectations}
    problems = [f"{name}: listed but not in {samples_dir}" for name in listed - present]
    problems += [
        f"{name}: in {samples_dir} but has no expectation" for name in present - listed
    ]
    if problems:
        raise ConfigError(sorted(problems))


def print_runs(
    runs: list[SampleRun], as_json: bool, echo: Callable[[str], None]
) -> None:
    """Print the runs as a table with a summary, or as JSON lines."""
    if as_json:
        for run in runs:
            echo(json.dumps(run.to_dict()))
        return

    for line in render_table(runs):
        echo(line)


class DemoBench:
    """The sandbox, web and worker of one demo run, and the store they share."""

    def __init__(self, workdir: Path, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.processes = ChildProcesses(workdir, cwd=ROOT)
        self.database_url = f"sqlite:///{workdir / 'bridge.db'}"
        self.store = create_store(self.database_url)
        self.token = secrets.token_urlsafe(16)
        self.sandbox_port = free_port()
        self.web_port = free_port()
        self.sandbox_root = f"http://{LOOPBACK}:{self.sandbox_port}"
        self.elms_url = f"{self.sandbox_root}/{SANDBOX_SITE}/backend"
        self.web_url = f"http://{LOOPBACK}:{self.web_port}"
        self.first_seen: dict[str, str] = {}
        self.receiver = DemoReceiver()

    # Start and stop

    def start(self) -> None:
        """Migrate the fresh database, start every part and wait until ready."""
        # Migrated here, once: web and worker would otherwise both upgrade
        # the new database at the same moment.
        upgrade(self.database_url)
        env = self.child_env()

        sandbox = ["sandbox", "--port", str(self.sandbox_port), "--site", SANDBOX_SITE]
        self.processes.spawn("sandbox", sandbox, env)
        self.processes.wait_ready("sandbox", f"{self.sandbox_root}/_sandbox/faults")
        self.create_users()
        self.receiver.start()
        self.receiver.subscribe(self.store)

        web = ["serve", "--host", LOOPBACK, "--port", str(self.web_port)]
        self.processes.spawn("web", [*web, "--workers", "1"], env)
        self.processes.spawn("worker", ["worker"], env)
        self.processes.wait_ready("web", f"{self.web_url}/healthz")
        logger.info(
            "demo: bridge at %s, Open ELMS sandbox at %s", self.web_url, self.elms_url
        )

    def stop(self) -> None:
        """Stop every part and close the store."""
        self.processes.stop()
        self.receiver.stop()
        self.store.dispose()

    def child_env(self) -> dict[str, str]:
        """Return the children's environment: no inherited BRIDGE_* setting."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
        env.update(
            {
                "BRIDGE_DATABASE_URL": self.database_url,
                "BRIDGE_SOURCES_FILE": str(self.config_dir / "sources.yaml"),
                "BRIDGE_MAPPINGS_FILE": str(self.config_dir / "mappings.yaml"),
                "BRIDGE_ELMS_URL": self.elms_url,
                "BRIDGE_ELMS_TOKEN": self.token,
                "BRIDGE_SANDBOX_TOKEN": self.token,
                "BRIDGE_DISPATCH_INTERVAL": DISPATCH_INTERVAL,
                # The demo's receiver listens on loopback.
                "BRIDGE_ALLOW_PRIVATE_TARGETS": f"{LOOPBACK}/32",
            }
        )
        return env

    def create_users(self) -> None:
        """Create in the sandbox the learners of ``users.yaml``."""
        users = read_users(self.config_dir / "users.yaml")
        with OpenElmsClient(self.elms_url, self.token, retries=0) as client:
            for fields in users:
                user_id = client.create_user(**fields)
                logger.info("demo: sandbox user %s is %s", user_id, fields["username"])

    # One sample

    def run_sample(self, expectation: Expectation, samples_dir: Path) -> SampleRun:
        """Post one sample, wait until its events are applied, read what came of it."""
        run = SampleRun(expectation)
        for body in expectation.request_bodies(samples_dir):
            run.answers.append(self.post(expectation, body))

        self.wait_drained()
        logged = self.logged_calls()
        for event_id in listed_event_ids(run.answers):
            run.events.append(self.outcome_of(event_id, expectation.file, logged))
        return run

    def collect_outbound(self, runs: list[SampleRun]) -> None:
        """Wait for the deliveries, then note each sample's outbound events.

        An event stored once for two samples is counted on the first.
        """
        if not wait_delivered(self.store, DRAIN_TIMEOUT):
            logger.warning("demo: deliveries still pending after %ss", DRAIN_TIMEOUT)
        with self.session() as session:
            for run in runs:
                sample = run.expectation.file
                own = [
                    event_id
                    for event_id in listed_event_ids(run.answers)
                    if self.first_seen.get(event_id) == sample
                ]
                run.outbound = outbound_of(session, own, self.receiver)
                failed = sum(1 for event_id in own if ended_failed(session, event_id))
                run.problems.extend(outbound_problems(run.outbound, failed))

    def post(self, expectation: Expectation, body: bytes) -> Answer:
        """Post one request of a sample to its source's hook.

        Raises:
            DemoError: the bridge did not answer.
        """
        headers = {"Content-Type": expectation.content_type, **expectation.headers}
        url = f"{self.web_url}/hooks/{expectation.source}"
        try:
            response = requests.post(
                url,
                params=expectation.query,
                data=body,
                headers=headers,
                timeout=REQUEST_TIMEOUT,
            )
        except requests.RequestException as exc:
            self.processes.check_alive()
            message = f"{expectation.file}: the bridge did not answer: {exc}"
            raise DemoError(message) from exc

        try:
            answer = response.json()
        except ValueError:
            answer = {"message": response.text[:200]}
        return Answer(response.status_code, answer if isinstance(answer, dict) else {})

    def wait_drained(self) -> None:
        """Wait until no event is pending; return anyway after DRAIN_TIMEOUT."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            with self.session() as session:
                counts = queries.count_events_by_status(session)
            if not counts.get(EventStatus.PENDING.value):
                return
            self.processes.check_alive()
            time.sleep(POLL_SECONDS)
        logger.warning("demo: events still pending after %ss", DRAIN_TIMEOUT)

    def outcome_of(
        self, event_id: str, sample: str, logged: set[tuple[str, str]]
    ) -> EventOutcome:
        """Return what became of one event, as the store and the sandbox say.

        An event an earlier sample already produced (the same report sent
        another way) is stored once; its call shows on that sample's row.
        """
        with self.session() as session:
            row = queries.get_event(session, event_id)
        if row is None:
            return EventOutcome("-", None, "none (event not found in the store)")

        earlier = self.first_seen.setdefault(event_id, sample)
        if earlier != sample:
            call = f"none (same event as {earlier}; stored once)"
            return EventOutcome(row.kind, row.score, call)

        call = describe_outcome(row)
        dispatched = row.status == EventStatus.DISPATCHED
        in_log = not dispatched or tuple(call.split(" ", 1)) in logged
        return EventOutcome(row.kind, row.score, call, in_call_log=in_log)

    def logged_calls(self) -> set[tuple[str, str]]:
        """Return the (method, path) of each call the sandbox answered with 2xx."""
        url = f"{self.sandbox_root}/_sandbox/calls"
        answer = requests.get(url, timeout=REQUEST_TIMEOUT)
        answer.raise_for_status()
        return {
            (call["method"], call["path"])
            for call in answer.json()["calls"]
            if 200 <= int(call["status"]) < 300
        }

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a read-only session on the demo's store."""
        with self.store.session(write=False) as session:
            yield session


def read_users(path: Path) -> list[dict[str, str]]:
    """Return the users of a demo users file.

    Raises:
        ConfigError: the file is not a ``users`` list of mappings with a username.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: is not valid YAML: {exc}"]) from exc

    users = document.get("users") if isinstance(document, dict) else None
    valid = isinstance(users, list) and all(
        isinstance(user, dict) and user.get("username") for user in users
    )
    if not valid:
        raise ConfigError([f"{path}: expected a `users` list, each with a username"])
    return [{str(k): str(v) for k, v in user.items()} for user in users or []]


def listed_event_ids(answers: list[Answer]) -> list[str]:
    """Return the event ids the 2xx answers listed, in order."""
    return [
        str(event["id"])
        for answer in answers
        if 200 <= answer.status < 300
        for event in answer.body.get("events", [])
    ]


def ended_failed(session: Session, event_id: str) -> bool:
    """Tell whether an event ended failed or unresolved (and so is announced)."""
    row = queries.get_event(session, event_id)
    failed = (EventStatus.FAILED, EventStatus.UNRESOLVED)
    return row is not None and row.status in failed


def describe_outcome(row: EventRow) -> str:
    """Return an event's call as ``PUT path``, or ``none (why)``/``failed (why)``."""
    reason = row.status_reason or row.last_error or ""
    if row.status == EventStatus.DISPATCHED and row.elms_call:
        return row.elms_call
    if row.status == EventStatus.INFORMATIONAL:
        return (
            f"none (informational: {row.note})" if row.note else "none (informational)"
        )
    if row.status == EventStatus.SKIPPED:
        return f"none ({reason})"
    if row.status == EventStatus.FAILED:
        return f"failed ({reason})"
    if row.status == EventStatus.PENDING:
        return f"none (still pending after {DRAIN_TIMEOUT:g}s)"
    return f"none ({row.status}: {reason})"
