"""The bridge as an operator runs it: sandbox, web and worker as child processes.

Each test gets its own database (a SQLite file, or a fresh PostgreSQL
database), ``python -m bridge sandbox`` and ``python -m bridge serve`` on
free loopback ports, and a webhook receiver served in this process. Tests
start the worker themselves, so they choose what is stored before it runs.
Every child is stopped at the end, killed if it does not stop in time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import yaml
from flask import Response, request

from bridge.demo_processes import Child
from bridge.store.db import Store, create_store
from tests.clitools import ROOT, bridge, clean_env, free_port, wait_for
from tests.jobs.conftest import SOURCES
from tests.pg import create_pg_database, drop_pg_database
from tests.receiver import Receiver, Running, payload_of, serve_receiver

T = TypeVar("T")

SANDBOX_TOKEN = "e2e-sandbox-token"  # noqa: S105 - the test sandbox's token
SANDBOX_SITE = "demo"
STOP_GRACE_SECONDS = 10.0

# Short schedules so a test sees several poll passes and retries in seconds.
# The worker's poll job still ticks every 5 s (jobs/scheduler.POLL_TICK_SECONDS).
FAST_SETTINGS = {
    "BRIDGE_ELMS_RETRIES": "0",
    "BRIDGE_WEB_WORKERS": "1",
    "BRIDGE_DISPATCH_LEASE": "5",
    "BRIDGE_DISPATCH_BACKOFF": "0.1",
    "BRIDGE_DISPATCH_BACKOFF_MAX": "0.5",
    "BRIDGE_POLL_INTERVAL_IN_PROGRESS": "1",
    "BRIDGE_POLL_INTERVAL_NOT_ATTEMPTED": "1",
    "BRIDGE_POLL_RATE": "50",
    "BRIDGE_DELIVERY_SCHEDULE": "0,1,2,4",
    # The longest timeout that keeps a delivery lease at its 60 s floor.
    "BRIDGE_DELIVERY_TIMEOUT": "7.5",
    "BRIDGE_ALLOW_PRIVATE_TARGETS": "127.0.0.0/8",
}


@dataclass(frozen=True)
class Arrival:
    """One request as it reached the receiver, before any planned hang."""

    webhook_id: str | None
    at: datetime


class ArrivalReceiver(Receiver):
    """A receiver that also notes each request the moment it arrives.

    The base receiver records a hit once it answers, so a request it is
    told to hang on shows up only later; a test killing the sender while
    the request hangs needs to know it arrived.
    """

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        super().__init__()

    def receive(self) -> Response:
        """Note the arrival, then verify, record and answer as planned."""
        arrival = Arrival(request.headers.get("webhook-id"), datetime.now(UTC))
        with self.lock:
            self.arrivals.append(arrival)
        return super().receive()

    def arrived(self) -> list[Arrival]:
        """Return the arrivals so far, oldest first."""
        with self.lock:
            return list(self.arrivals)

    def payloads(self) -> list[dict[str, Any]]:
        """Return the body of every answered request, parsed, in answer order."""
        return [payload_of(hit) for hit in self.snapshot()]


@dataclass
class Bridge:
    """The running parts of one test and the ways to drive and read them."""

    tmp_path: Path
    env: dict[str, str]
    web_url: str
    sandbox_root: str
    receiver: Running
    store: Store
    children: list[Child] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        """Return the sandbox's admin base (``/_sandbox``)."""
        return f"{self.sandbox_root}/_sandbox"

    @property
    def hooks(self) -> ArrivalReceiver:
        """Return the receiver subscribers' deliveries go to."""
        receiver = self.receiver.receiver
        assert isinstance(receiver, ArrivalReceiver)
        return receiver

    # Processes

    def spawn(self, name: str, *args: str) -> Child:
        """Start ``python -m bridge ARGS`` in the test's folder, output to a log."""
        log = self.tmp_path / f"{name}-{len(self.children)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our interpreter, our args
                [sys.executable, "-m", "bridge", *args],
                cwd=self.tmp_path,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def start_worker(self) -> Child:
        """Start a worker process."""
        return self.spawn("worker", "worker")

    def cli(self, *args: str) -> Any:
        """Run one CLI command against the test's database; return its JSON."""
        result = bridge(*args, env=self.env)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def check_alive(self) -> None:
        """Fail the test, quoting its log, if a child exited on its own."""
        for child in self.children:
            code = child.process.poll()
            if code is not None and code >= 0:
                raise AssertionError(f"{child.name} exited {code}:\n{child.tail()}")

    def logs(self) -> str:
        """Return the end of every child's log, for a failure message."""
        return "\n".join(f"--- {c.name}\n{c.tail()}" for c in self.children)

    def stop(self) -> None:
        """Ask every live child to stop; kill those that do not in time."""
        live = [c for c in self.children if c.process.poll() is None]
        for child in live:
            child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in live:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(STOP_GRACE_SECONDS)

    # Waiting

    def eventually(self, check: Callable[[], T], what: str, timeout: float = 45.0) -> T:
        """Return ``check()`` once it is truthy; fail, with logs, after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g}s\n{self.logs()}")
            time.sleep(0.2)

    # Inbound side and the sandbox

    def post_statement(self, body: dict[str, Any], source: str = "lms") -> str:
        """Post one xAPI statement to the web process; return the event id."""
        url = f"{self.web_url}/hooks/{source}"
        response = requests.post(url, json=body, timeout=10)
        assert response.status_code == 202, response.text
        return str(response.json()["events"][0]["id"])

    def set_progress(
        self, learning_id: str, user_id: str, status: str, score: int | None
    ) -> None:
        """Change progress inside Open ELMS, past the bridge."""
        response = requests.put(
            f"{self.admin_url}/progress/{learning_id}/{user_id}",
            json={"status": status, "score": score},
            timeout=5,
        )
        assert response.status_code == 200, response.text

    def calls(self) -> list[dict[str, Any]]:
        """Return the documented calls the sandbox received, oldest first."""
        response = requests.get(f"{self.admin_url}/calls", timeout=5)
        return list(response.json()["calls"])

    def subscribe(self, *types: str) -> str:
        """Subscribe the receiver, with its secret, through the CLI."""
        options = [f"--type={event_type}" for event_type in types]
        secret = self.hooks.secret
        out = self.cli(
            "subscriptions", "add", self.receiver.url, f"--secret={secret}", *options
        )
        return str(out["subscription"]["id"])


def write_sources(folder: Path) -> Path:
    """Write the inbound sources the tests post to (xAPI, no auth)."""
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": SOURCES}))
    return path


def bridge_env(tmp_path: Path, database_url: str, sandbox_port: int) -> dict[str, str]:
    """Return the children's environment: only BRIDGE_* settings of this test."""
    elms_url = f"http://127.0.0.1:{sandbox_port}/{SANDBOX_SITE}/backend"
    return clean_env(
        PYTHONPATH=str(ROOT),
        BRIDGE_DATABASE_URL=database_url,
        BRIDGE_ELMS_URL=elms_url,
        BRIDGE_ELMS_TOKEN=SANDBOX_TOKEN,
        BRIDGE_SOURCES_FILE=str(write_sources(tmp_path)),
        BRIDGE_PORT=str(free_port()),
        **FAST_SETTINGS,
    )


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield an empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/bridge.db"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def running(tmp_path: Path, database_url: str) -> Iterator[Bridge]:
    """Yield sandbox and web processes and a receiver; the worker is not started."""
    sandbox_port = free_port()
    env = bridge_env(tmp_path, database_url, sandbox_port)
    with serve_receiver(ArrivalReceiver()) as receiver:
        parts = Bridge(
            tmp_path,
            env,
            web_url=f"http://127.0.0.1:{env['BRIDGE_PORT']}",
            sandbox_root=f"http://127.0.0.1:{sandbox_port}",
            receiver=receiver,
            store=create_store(database_url),
        )
        try:
            parts.spawn(
                "sandbox",
                "sandbox",
                f"--port={sandbox_port}",
                f"--token={SANDBOX_TOKEN}",
            )
            parts.spawn("web", "serve")
            wait_for(f"{parts.admin_url}/faults")
            wait_for(f"{parts.web_url}/healthz")
            parts.check_alive()
            yield parts
        finally:
            parts.stop()
            parts.store.dispose()
