"""PostgreSQL under concurrency and outage: one event per statement, no 500.

PostgreSQL takes writers side by side, so two requests can both find
nothing stored and both insert; the loser must check again and answer as
a repeat. Copies formatted differently are different requests with the
same event, which races on a second unique key. A database that is gone
is the sender's cue to try again later: a 503, not a 500.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bridge.app import create_app
from bridge.config import Settings
from bridge.store.db import create_store
from bridge.store.migrate import upgrade
from tests.pg import create_pg_database, drop_pg_database
from tests.servers import serve_wsgi
from tests.web.conftest import SOURCES, RunningBridge, write_sources
from tests.web.test_hooks import statement, stored_counts

THREADS = 12
ROUNDS = 6


@pytest.fixture
def pg_bridge(tmp_path) -> Iterator[RunningBridge]:
    """Yield a running bridge with the test sources on a new PostgreSQL database."""
    url = create_pg_database()
    sources_file = write_sources(tmp_path / "sources.yaml", SOURCES)
    settings = Settings(database_url=url, sources_file=str(sources_file))
    upgrade(url)
    store = create_store(url)
    try:
        with serve_wsgi(create_app(settings, store=store)) as served:
            yield RunningBridge(served.url, store, settings)
    finally:
        store.dispose()
        drop_pg_database(url)


@pytest.mark.postgres
def test_concurrent_copies_of_a_statement_store_one_event_and_never_500(pg_bridge):
    statuses: Counter[int] = Counter()
    event_ids: set[str] = set()
    for _ in range(ROUNDS):
        body = statement(id=str(uuid.uuid4()))
        copies = [
            json.dumps(body, indent=2 if n % 2 else None).encode()
            for n in range(THREADS)
        ]
        gate = threading.Barrier(THREADS)

        def send(data: bytes, gate: threading.Barrier = gate) -> requests.Response:
            gate.wait()
            return requests.post(
                f"{pg_bridge.url}/hooks/open-xapi",
                data=data,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )

        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(send, copies))
        statuses.update(answer.status_code for answer in answers)
        round_ids = {answer.json()["events"][0]["id"] for answer in answers}
        assert len(round_ids) == 1
        event_ids |= round_ids

    assert statuses == {202: THREADS * ROUNDS}
    assert stored_counts(pg_bridge) == (ROUNDS, ROUNDS)
    assert len(event_ids) == ROUNDS


@pytest.mark.postgres
def test_a_database_gone_is_503_with_retry_after_not_500(pg_bridge):
    drop_pg_database(pg_bridge.settings.database_url)

    answer = requests.post(
        f"{pg_bridge.url}/hooks/open-xapi", json=statement(), timeout=30
    )

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json() == {
        "error": "unavailable",
        "message": "the database cannot be reached; nothing was stored, try again",
    }
