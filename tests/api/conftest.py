"""A bridge with the admin API on, served on loopback over a fresh SQLite file.

Events arrive through the real intake over HTTP; the outbound side is
seeded with the store's own queries, as the poller and the delivery
engine write it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import yaml

from bridge.app import create_app
from bridge.config import Settings
from bridge.store import delivery_queries as dq
from bridge.store import delivery_replay_queries as dr
from bridge.store import dispatch_queries
from bridge.store.db import Store, create_store
from bridge.store.migrate import upgrade
from bridge.store.poll_queries import insert_outbound_event
from tests.servers import serve_wsgi

TOKEN = "admin-token-7f3a9c"
LOOPBACK = ("127.0.0.0/8",)
COMPLETED_VERB = "http://adlnet.gov/expapi/verbs/completed"
SOURCES = [
    {"name": "open-xapi", "format": "xapi", "auth": {"type": "none"}},
    {
        "name": "guarded",
        "format": "xapi",
        "auth": {"type": "basic", "username": "player", "password": "file-pw-81"},
    },
]


@dataclass(frozen=True)
class AdminBridge:
    """A served bridge, its store, and a session that sends the admin token."""

    url: str
    store: Store
    settings: Settings
    api: requests.Session

    def at(self, path: str) -> str:
        """Return the full URL of an admin API path."""
        return f"{self.url}/api/v1{path}"


def serve_bridge(tmp_path: Any, token: str | None) -> Iterator[AdminBridge]:
    """Serve a bridge with the test sources and ``token`` as the admin token."""
    database_url = f"sqlite:///{tmp_path}/bridge.db"
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(yaml.safe_dump({"sources": SOURCES}))
    settings = Settings(
        database_url=database_url,
        sources_file=str(sources_file),
        admin_token=token,
        allow_private_targets=LOOPBACK,
    )
    upgrade(database_url)
    store = create_store(database_url)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    with serve_wsgi(create_app(settings, store=store)) as served:
        yield AdminBridge(served.url, store, settings, api)
    api.close()
    store.dispose()


@pytest.fixture
def bridge(tmp_path) -> Iterator[AdminBridge]:
    """Yield a running bridge whose admin API is on."""
    yield from serve_bridge(tmp_path, TOKEN)


def statement(course: str, *, scaled: float = 0.8) -> dict[str, Any]:
    """Return an xAPI completion statement about ``course``."""
    return {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": "mailto:learner1@example.com"},
        "verb": {"id": COMPLETED_VERB},
        "object": {"id": f"http://example.com/courses/{course}"},
        "result": {"completion": True, "score": {"scaled": scaled}},
        "timestamp": "2026-03-01T09:30:00Z",
    }


def post_statement(bridge: AdminBridge, course: str) -> str:
    """Post a statement to the open source; return the stored event's id."""
    response = requests.post(
        f"{bridge.url}/hooks/open-xapi",
        data=json.dumps(statement(course)),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    (event,) = response.json()["events"]
    return str(event["id"])


def fail_event(store: Store, event_id: str, *, status: str = "failed") -> None:
    """Dispatch an event as a worker does and record an Open ELMS 500 for it."""
    now = datetime.now(UTC) + timedelta(seconds=1)
    with store.session() as session:
        claimed = dispatch_queries.claim_due_events(
            session, worker="w-test", now=now, lease_seconds=60, limit=100
        )
        assert event_id in {row.id for row in claimed}
        dispatch_queries.record_call(
            session,
            event_id,
            method="POST",
            path="/learning/7/progress",
            status=500,
            error="Open ELMS answered 500",
            worker="w-test",
            now=now,
        )
        dispatch_queries.finish_event(
            session, event_id, worker="w-test", status=status, now=now,
            reason="gave up after retries",
        )  # fmt: skip
        others = [row.id for row in claimed if row.id != event_id]
        dispatch_queries.release_events(session, others, worker="w-test")


def announce(store: Store, inbound_event_id: str | None = None) -> list[str]:
    """Write a progress.completed event; return the deliveries it queued."""
    with store.session() as session:
        event_id = insert_outbound_event(
            session,
            event_type="progress.completed",
            payload={"type": "progress.completed", "data": {"learning_id": "7"}},
            user_id="42",
            learning_id="7",
            inbound_event_id=inbound_event_id,
            now=datetime.now(UTC),
        )
        session.flush()
        rows = dr.list_deliveries(session, limit=1000)
    return [row.id for row in rows if row.event_id == event_id]


def settle(store: Store, outcomes: dict[str, int]) -> None:
    """Send due deliveries as the engine does: status 2xx delivers, else fails."""
    now = datetime.now(UTC) + timedelta(seconds=1)
    with store.session() as session:
        jobs = dq.claim_due_deliveries(
            session,
            worker="w-test",
            now=now,
            lease_seconds=60,
            limit=1000,
            per_subscription=1000,
        )
        for job in jobs:
            status = outcomes.get(job.id, 200)
            dq.record_attempt(
                session, job.id, attempted_at=now, status_code=status,
                latency_ms=12.5, response_body=f"answer {status}", error=None,
            )  # fmt: skip
            if 200 <= status < 300:
                dq.mark_delivered(
                    session, job.id, worker="w-test", status=status, now=now
                )
            else:
                dq.mark_failed(
                    session, job.id, worker="w-test", now=now, status=status,
                    error=f"subscriber answered {status}",
                )  # fmt: skip


def subscribe(bridge: AdminBridge, **fields: Any) -> dict[str, Any]:
    """Create a subscription through the API and return the answer."""
    body = {"url": "http://127.0.0.1:9/hook", **fields}
    response = bridge.api.post(bridge.at("/subscriptions"), json=body, timeout=10)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer
