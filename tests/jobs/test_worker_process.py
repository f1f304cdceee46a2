"""The worker as a real process: SIGKILL, SIGTERM, two workers on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import yaml

from bridge.app import create_app
from bridge.store import queries
from bridge.store.db import create_store
from bridge.store.migrate import upgrade
from tests.jobs.conftest import SOURCES, statement
from tests.pg import create_pg_database, drop_pg_database
from tests.servers import serve_wsgi

ROOT = Path(__file__).resolve().parents[2]
LEARNERS = [
    "learner1@example.com",
    "xapi-test@example.com",
    "user@example.com",
    "player-1@example.com",
    "guest@example.com",
    "admin@example.com",
]


class Bench:
    """A web app in this process, workers as child processes, one database."""

    def __init__(self, tmp_path: Path, sandbox, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.sandbox = sandbox
        self.database_url = database_url
        sources = tmp_path / "sources.yaml"
        sources.write_text(yaml.safe_dump({"sources": SOURCES}))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")},
            "BRIDGE_DATABASE_URL": database_url,
            "BRIDGE_SOURCES_FILE": str(sources),
            "BRIDGE_ELMS_URL": sandbox.base_url,
            "BRIDGE_ELMS_TOKEN": sandbox.token,
            "BRIDGE_ELMS_RETRIES": "0",
            "BRIDGE_DISPATCH_LEASE": "5",
            "BRIDGE_DISPATCH_BACKOFF": "0.1",
            "BRIDGE_DISPATCH_BACKOFF_MAX": "0.5",
            "BRIDGE_DISPATCH_BATCH": "5",
        }
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"worker-{len(self.workers)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "bridge", "worker"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.workers.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.kill()
                process.wait(10)

    def faults(self, **faults) -> None:
        requests.put(f"{self.sandbox.admin_url}/faults", json=faults, timeout=5)

    def put_calls(self) -> list[dict]:
        log = requests.get(f"{self.sandbox.admin_url}/calls", timeout=5).json()
        return [c for c in log["calls"] if c["method"] == "PUT"]

    def statuses(self, store) -> Counter:
        with store.session(write=False) as session:
            return Counter(queries.count_events_by_status(session))

    def wait_for(self, check, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.2)
        return False


@pytest.fixture
def bench_sqlite(tmp_path, sandbox):
    url = f"sqlite:///{tmp_path}/bridge.db"
    upgrade(url)
    bench = Bench(tmp_path, sandbox, url)
    store = create_store(url)
    requests.delete(f"{sandbox.admin_url}/calls", timeout=5)
    with serve_wsgi(create_app(bench_settings(bench), store=store)) as served:
        yield bench, store, served.url
    bench.stop_all()
    store.dispose()


def bench_settings(bench: Bench):
    from bridge.config import load_settings

    return load_settings(
        {k: v for k, v in bench.env.items() if k.startswith("BRIDGE_")}
    )


def post_completions(url: str, learners: list[str], course: str) -> None:
    for email in learners:
        body = statement("completed", email=email, course=course, scaled=0.8)
        response = requests.post(f"{url}/hooks/lms", json=body, timeout=10)
        assert response.status_code == 202, response.text


def test_worker_killed_mid_dispatch_loses_nothing(bench_sqlite):
    bench, store, url = bench_sqlite
    bench.faults(latency_ms=400)
    post_completions(url, LEARNERS, "Data Protection Essentials")

    first = bench.start_worker()
    assert bench.wait_for(lambda: len(bench.put_calls()) >= 2, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    done_before_kill = bench.statuses(store)["dispatched"]
    bench.start_worker()
    finished = bench.wait_for(
        lambda: bench.statuses(store)["dispatched"] == len(LEARNERS), timeout=90
    )

    assert first.returncode == -signal.SIGKILL
    assert done_before_kill < len(LEARNERS)
    assert finished, bench.statuses(store)
    state = requests.get(f"{bench.sandbox.admin_url}/state", timeout=5).json()
    completed = [r for r in state if r["status"] == "completed" and r["score"] == 80]
    completed_pairs = {(r["learning_id"], r["user_id"]) for r in completed}
    put_paths = {c["path"] for c in bench.put_calls() if c["status"] == 200}
    assert len(put_paths) == len(LEARNERS)
    assert all(path.endswith("/complete/80") for path in put_paths)
    assert {tuple(p.split("/")[1:3]) for p in put_paths} <= {
        (str(lid), str(uid)) for lid, uid in completed_pairs
    }


def test_sigterm_finishes_the_call_in_flight_and_exits(bench_sqlite):
    bench, store, url = bench_sqlite
    bench.faults(latency_ms=1500)
    post_completions(url, LEARNERS[:3], "Fire Safety Awareness")

    worker = bench.start_worker()
    assert bench.wait_for(
        lambda: any(
            c["path"].startswith("users")
            for c in requests.get(f"{bench.sandbox.admin_url}/calls", timeout=5).json()[
                "calls"
            ]
        ),
        timeout=30,
    )
    time.sleep(2.0)  # resolution done; a PUT is now in flight (1.5 s latency)
    worker.send_signal(signal.SIGTERM)
    code = worker.wait(30)

    statuses = bench.statuses(store)
    log = bench.logs[0].read_text()
    assert code == 0, log
    assert "stopping (signal 15)" in log
    assert statuses["dispatched"] >= 1
    assert statuses["dispatched"] + statuses["pending"] == 3
    dispatched_calls = [c for c in bench.put_calls() if c["status"] == 200]
    assert len(dispatched_calls) == statuses["dispatched"]


@pytest.mark.postgres
def test_two_workers_on_postgresql_never_send_an_item_twice(tmp_path, sandbox):
    url = create_pg_database()
    try:
        upgrade(url)
        bench = Bench(tmp_path, sandbox, url)
        store = create_store(url)
        requests.delete(f"{sandbox.admin_url}/calls", timeout=5)
        courses = [
            "Fire Safety Awareness",
            "Data Protection Essentials",
            "Manual Handling in Practice",
        ]
        with serve_wsgi(create_app(bench_settings(bench), store=store)) as served:
            for course in courses:
                post_completions(served.url, LEARNERS, course)
            total = len(courses) * len(LEARNERS)

            bench.start_worker()
            bench.start_worker()
            finished = bench.wait_for(
                lambda: bench.statuses(store)["dispatched"] == total, timeout=120
            )
        bench.stop_all()

        paths = Counter(c["path"] for c in bench.put_calls())
        store.dispose()
        assert finished
        assert len(paths) == total
        assert max(paths.values()) == 1
        assert sum("dispatching to" in log.read_text() for log in bench.logs) == 2
    finally:
        drop_pg_database(url)
