"""An event that breaks in an unexpected way costs itself an attempt, no more.

Before intake refused NUL characters, PostgreSQL took such an event (its
JSON escapes the character) and then refused the NUL in every query about
it: the dispatcher's pass ended there, pass after pass, and the events
claimed with it waited for ever. The same row, made here by hand, must now
fail alone.
"""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import update

from bridge.app import create_app
from bridge.store.db import create_store
from bridge.store.migrate import upgrade
from bridge.store.models import EventModel
from bridge.worker import build_dispatcher
from tests.jobs.conftest import Stack, stack_settings, statement
from tests.pg import create_pg_database, drop_pg_database
from tests.servers import serve_wsgi


@pytest.fixture
def pg_stack(tmp_path, sandbox):
    """Yield the web app, a dispatcher and the sandbox on a new PostgreSQL database."""
    url = create_pg_database()
    settings = stack_settings(tmp_path, sandbox, url, dispatch_max_attempts=2)
    upgrade(url)
    store = create_store(url)
    worker_store, dispatcher = build_dispatcher(settings)
    requests.delete(f"{sandbox.admin_url}/calls", timeout=5)
    try:
        with serve_wsgi(create_app(settings, store=store)) as served:
            yield Stack(served.url, store, dispatcher, sandbox, settings)
    finally:
        dispatcher.client.close()
        worker_store.dispose()
        store.dispose()
        drop_pg_database(url)


def event_id_of(response: requests.Response) -> str:
    [event] = response.json()["events"]
    return str(event["id"])


@pytest.mark.postgres
def test_an_event_the_database_refuses_fails_alone(pg_stack):
    broken = event_id_of(pg_stack.post(statement("completed", scaled=0.5)))
    fine = event_id_of(
        pg_stack.post(statement("completed", email="xapi-test@example.com", scaled=0.7))
    )
    with pg_stack.store.session() as session:
        session.execute(
            update(EventModel)
            .where(EventModel.id == broken)
            .values(activity={"iri": "http://example.com/course\u0000"})
        )

    pg_stack.drain()
    first = pg_stack.event(broken)

    # The backoff is a few hundredths of a second here, so one drain may
    # already have spent both attempts.
    assert pg_stack.event(fine).status == "dispatched"
    assert first.attempts >= 1
    assert first.last_error.startswith("unexpected DataError:")

    deadline = time.monotonic() + 10
    while pg_stack.event(broken).status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
        pg_stack.drain()
    last = pg_stack.event(broken)
    assert (last.status, last.attempts) == ("failed", 2)
    assert last.status_reason.startswith(
        "gave up after 2 attempts: unexpected DataError"
    )
