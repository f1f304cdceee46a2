"""Metrics and readiness across real processes: gunicorn workers, the worker.

``serve`` runs with two gunicorn workers; the worker runs as its own
process beside it, sharing the metrics directory as on one machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bridge.app import create_app
from bridge.config import load_settings
from bridge.outbound_types import ANY_EVENT_TYPE
from bridge.store import subscription_queries
from bridge.store.db import create_store
from bridge.store.migrate import upgrade
from tests.clitools import ROOT, clean_env, free_port, wait_for
from tests.jobs.conftest import SOURCES, statement
from tests.receiver import Receiver, serve_receiver
from tests.servers import serve_wsgi

COURSE = "Fire Safety Awareness"
COMPLETE = "PUT learning/{id}/{id}/complete/{score}"


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    """Run ``python -m bridge ARGS`` until the block ends; output to ``log``."""
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "bridge", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        child.terminate()
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


def bridge_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": SOURCES}))
    return clean_env(
        BRIDGE_DATABASE_URL=f"sqlite:///{tmp_path}/bridge.db",
        BRIDGE_SOURCES_FILE=str(sources),
        BRIDGE_METRICS_DIR=str(tmp_path / "metrics"),
        **extra,
    )


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of ``url``/metrics by (name, sorted labels)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def eventually(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def post_statement(url: str, request_id: str | None = None) -> requests.Response:
    body = statement("completed", course=COURSE, scaled=0.8)
    headers = {"X-Request-ID": request_id} if request_id else {}
    # No session: each request opens its own connection, so either worker
    # may accept it.
    return requests.post(f"{url}/hooks/lms", json=body, headers=headers, timeout=10)


def subscribe(database_url: str, url: str, secret: str) -> str:
    """Subscribe ``url`` to every event type; return the subscription id."""
    upgrade(database_url)
    store = create_store(database_url)
    with store.session() as session:
        row = subscription_queries.add_subscription(
            session, url=url, event_types=[ANY_EVENT_TYPE], secret=secret
        )
    store.dispose()
    return row.id


def test_two_gunicorn_workers_report_every_request_once(tmp_path):
    port = free_port()
    env = bridge_env(tmp_path, BRIDGE_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    web_dirs = tmp_path / "metrics"

    with process(["serve", "--workers", "2"], env, tmp_path / "web.log"):
        wait_for(f"{url}/healthz")
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            # Until both workers have answered some (each then has a file).
            while sent < 400 and len(list(web_dirs.glob("web-*/counter_*.db"))) < 2:
                answers = list(pool.map(lambda _: post_statement(url), range(20)))
                assert {a.status_code for a in answers} == {202}
                sent += len(answers)
        figures = samples(url)
        again = samples(url)

    labels = (("source", "lms"), ("status", "202"))
    answering = len(list(web_dirs.glob("web-*/counter_*.db")))
    assert answering == 2, (tmp_path / "web.log").read_text()
    assert figures[("bridge_inbound_requests_total", labels)] == sent
    assert again[("bridge_inbound_requests_total", labels)] == sent
    events = figures[("bridge_outbox_depth", (("queue", "events"),))]
    assert events == sent


def test_worker_figures_and_one_events_trail_reach_the_web_process(tmp_path, sandbox):
    port = free_port()
    env = bridge_env(
        tmp_path,
        BRIDGE_PORT=str(port),
        BRIDGE_ELMS_URL=sandbox.base_url,
        BRIDGE_ELMS_TOKEN=sandbox.token,
        BRIDGE_ALLOW_PRIVATE_TARGETS="127.0.0.0/8",
    )
    url = f"http://127.0.0.1:{port}"
    complete = (("endpoint", COMPLETE), ("status", "200"))

    with serve_receiver(Receiver()) as receiver:
        sub = subscribe(
            env["BRIDGE_DATABASE_URL"], receiver.url, receiver.receiver.secret
        )
        delivered = (("outcome", "delivered"), ("subscription", sub))
        with (
            process(["serve", "--workers", "2"], env, tmp_path / "web.log"),
            process(["worker"], env, tmp_path / "worker.log"),
        ):
            wait_for(f"{url}/healthz")
            answer = post_statement(url, request_id="trail-1")
            assert answer.status_code == 202
            reached = eventually(
                lambda: samples(url).get(("bridge_deliveries_total", delivered)) == 1
            )
            polled = eventually(
                lambda: (
                    ("bridge_poll_cycles_total", (("outcome", "done"),)) in samples(url)
                ),
                timeout=30,
            )
            figures = samples(url)
            readiness = requests.get(f"{url}/readyz", timeout=10)

    web_log = (tmp_path / "web.log").read_text()
    worker_log = (tmp_path / "worker.log").read_text()
    assert reached, worker_log
    assert polled, worker_log
    assert figures[("bridge_elms_calls_total", complete)] == 1
    seconds = ("bridge_elms_call_duration_seconds_count", (("endpoint", COMPLETE),))
    assert figures[seconds] == 1
    latency = ("bridge_delivery_duration_seconds_count", (("subscription", sub),))
    assert figures[latency] == 1
    assert figures[("bridge_outbox_depth", (("queue", "events"),))] == 0
    assert figures[("bridge_outbox_depth", (("queue", "deliveries"),))] == 0
    assert readiness.status_code == 200, readiness.text
    assert readiness.json()["checks"]["elms"]["ok"] is True

    # One event's trail: its POST, its Open ELMS call, its delivery.
    event_id = answer.json()["events"][0]["id"]
    assert "request trail-1: POST /hooks/lms from lms -> 202" in web_log
    assert f"events {event_id}" in web_log
    [dispatched] = [
        line
        for line in worker_log.splitlines()
        if f"event {event_id} (request trail-1): PUT learning/" in line
    ]
    announced = dispatched.rsplit("; announced ", 1)[1].split(",")
    assert len(announced) == 1
    assert f"of {announced[0]} to {sub}: attempt 1 got 200; delivered" in worker_log


def test_readyz_fails_while_the_worker_cannot_reach_open_elms(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/demo/backend"
    metrics_port = free_port()
    env = bridge_env(
        tmp_path,
        BRIDGE_WORKER_METRICS_PORT=str(metrics_port),
        BRIDGE_ELMS_URL=dead,
        BRIDGE_ELMS_TOKEN="token",  # noqa: S106 - nothing listens there
        BRIDGE_ELMS_RETRIES="0",
        BRIDGE_READY_ELMS_GRACE="0",
    )
    database_url = env["BRIDGE_DATABASE_URL"]
    upgrade(database_url)
    settings = load_settings({k: v for k, v in env.items() if k.startswith("BRIDGE_")})
    store = create_store(database_url)

    with (
        serve_wsgi(create_app(settings, store=store)) as web,
        process(["worker"], env, tmp_path / "worker.log"),
    ):
        assert post_statement(web.url).status_code == 202

        def elms_failing() -> bool:
            body = requests.get(f"{web.url}/readyz", timeout=10).json()
            return body["failed"] == ["elms"]

        # The heartbeat (every 10 s) carries the failure to the database.
        failing = eventually(elms_failing, timeout=40)
        answer = requests.get(f"{web.url}/readyz", timeout=10)
        # The worker's own port: what a scrape sees where the web cannot.
        figures = samples(f"http://127.0.0.1:{metrics_port}")
    store.dispose()

    assert failing, (tmp_path / "worker.log").read_text()
    assert answer.status_code == 503
    detail = answer.json()["checks"]["elms"]["detail"]
    assert "got no answer" in detail
    assert detail.endswith("last success: never")
    unanswered = [
        value
        for (name, labels), value in figures.items()
        if name == "bridge_elms_calls_total" and ("status", "0") in labels
    ]
    assert unanswered and min(unanswered) >= 1
    assert figures[("bridge_outbox_depth", (("queue", "events"),))] == 1
