"""Run the bridge as a small cluster on loopback, one process per part.

The sandbox, each web process and each worker is a ``python -m bridge``
child in its own process group, logging to a file of its own, all on one
PostgreSQL database. Tests read the outcome from the database, the
sandbox's call log and the receiver's hits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

from bridge.demo_processes import Child
from tests.clitools import ROOT, bridge, clean_env, free_port, wait_for

SOURCE = "lms"
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - the sandbox's public default
STOP_SECONDS = 15


class Cluster:
    """Start, kill and stop the processes of one test, and read its state."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.children: list[Child] = []
        self.sandbox_port = free_port()
        self.sandbox_root = f"http://127.0.0.1:{self.sandbox_port}"
        self.elms_url = f"{self.sandbox_root}/demo/backend"
        self.admin_url = f"{self.sandbox_root}/_sandbox"
        self.env = clean_env(
            BRIDGE_DATABASE_URL=database_url,
            BRIDGE_SOURCES_FILE=str(self.write_sources()),
            BRIDGE_ELMS_URL=self.elms_url,
            BRIDGE_ELMS_TOKEN=SANDBOX_TOKEN,
            BRIDGE_ELMS_RETRIES="0",
            BRIDGE_DISPATCH_LEASE="10",
            BRIDGE_DISPATCH_BACKOFF="0.2",
            BRIDGE_DISPATCH_BACKOFF_MAX="1",
            BRIDGE_ALLOW_PRIVATE_TARGETS="127.0.0.0/8",
            BRIDGE_DELIVERY_TIMEOUT="5",
            BRIDGE_DELIVERY_SCHEDULE="0,1,2,5,10,30",
        )
        self.engine = create_engine(database_url)

    def write_sources(self) -> Path:
        """Write a sources file with one open xAPI source; return its path."""
        path = self.tmp_path / "sources.yaml"
        path.write_text(
            f"sources:\n  - name: {SOURCE}\n    format: xapi\n"
            "    auth: {type: none}\n"
        )
        return path

    # Processes

    def start(self, name: str, *args: str) -> Child:
        """Start ``python -m bridge ARGS`` in a process group of its own."""
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "bridge", *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def start_sandbox(self) -> Child:
        """Start the Open ELMS sandbox and wait until it answers."""
        child = self.start("sandbox", "sandbox", "--port", str(self.sandbox_port))
        wait_for(f"{self.admin_url}/faults")
        return child

    def start_web(self, name: str) -> str:
        """Start a web process (one gunicorn worker); return its base URL."""
        port = free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        self.start(name, *args)
        return f"http://127.0.0.1:{port}"

    def start_worker(self, name: str) -> Child:
        """Start a worker process."""
        return self.start(name, "worker")

    def kill(self, child: Child) -> None:
        """SIGKILL a process group: no handler runs, nothing is given back."""
        os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait(STOP_SECONDS)

    def stop_all(self) -> None:
        """Stop every process, and close the database connections."""
        self.stop(*self.children)
        self.engine.dispose()

    def stop_bridge(self) -> None:
        """Stop the web processes and workers; leave the sandbox serving."""
        self.stop(*(c for c in self.children if c.name != "sandbox"))

    def stop(self, *children: Child) -> None:
        """Ask the given processes to stop; kill those that linger."""
        running = [c for c in children if c.process.poll() is None]
        for child in running:
            os.killpg(child.process.pid, signal.SIGTERM)
        for child in running:
            try:
                child.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait(STOP_SECONDS)

    def worker_name(self, child: Child, timeout: float = 30) -> str:
        """Return the name a worker claims leases under, read from its log."""
        marker = "worker "
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in child.output().splitlines():
                if " dispatching to " in line and marker in line:
                    after = line.split(marker, 1)[1]
                    return after.split(":", 1)[0]
            time.sleep(0.1)
        raise AssertionError(f"{child.name} never started: {child.output()[-2000:]}")

    # Set-up through the product's own interfaces

    def subscribe(self, url: str, secret: str, event_types: list[str]) -> str:
        """Subscribe ``url`` with the CLI; return the subscription id."""
        args = ["subscriptions", "add", url, "--secret", secret]
        for event_type in event_types:
            args += ["--type", event_type]
        result = bridge(*args, env=self.env)
        assert result.returncode == 0, result.stderr
        return str(json.loads(result.stdout)["subscription"]["id"])

    def create_user(self, username: str, email: str) -> str:
        """Create a user in the sandbox through the documented API."""
        response = requests.post(
            f"{self.elms_url}/users/",
            data={"username": username, "email": email, "fname": "Scale"},
            headers={"Authorization": f"Basic {SANDBOX_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json())  # the sandbox's default shape: a bare number

    def learning(self) -> dict[str, str]:
        """Return the sandbox's learning resources, name to id."""
        response = requests.get(
            f"{self.elms_url}/learning/",
            headers={"Authorization": f"Basic {SANDBOX_TOKEN}"},
            timeout=10,
        )
        return {item["name"]: str(item["id"]) for item in response.json()}

    def user_ids(self) -> dict[str, str]:
        """Return the sandbox's users, email to id."""
        response = requests.get(
            f"{self.elms_url}/users/",
            headers={"Authorization": f"Basic {SANDBOX_TOKEN}"},
            timeout=10,
        )
        return {user["email"]: str(user["id"]) for user in response.json()}

    # Reading the outcome

    def calls(self) -> list[dict[str, Any]]:
        """Return the sandbox's call log, oldest first."""
        response = requests.get(f"{self.admin_url}/calls", timeout=30)
        return list(response.json()["calls"])

    def sandbox_progress(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Return the sandbox's progress records by (user, learning)."""
        records = requests.get(f"{self.admin_url}/state", timeout=30).json()
        return {(str(r["user_id"]), str(r["learning_id"])): r for r in records}

    def rows(self, sql: str, **params: Any) -> list[Any]:
        """Run one read query on the bridge's database; return its rows."""
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``check`` holds, or fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.5)
        raise AssertionError(f"not within {timeout:g}s: {what}")
