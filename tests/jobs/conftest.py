"""A bridge web app, a dispatcher and a sandbox, all real, on loopback."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import yaml

from bridge.app import create_app
from bridge.config import Settings
from bridge.store import queries
from bridge.store.db import Store, create_store
from bridge.store.migrate import upgrade
from bridge.worker import build_dispatcher
from tests.servers import serve_wsgi

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
COURSE = "Fire Safety Awareness"  # a seeded sandbox course, found by name

SOURCES = [
    {"name": "lms", "format": "xapi", "auth": {"type": "none"}},
    {
        "name": "best",
        "format": "xapi",
        "auth": {"type": "none"},
        "options": {"score_policy": "best"},
    },
    {
        "name": "by-id",
        "format": "xapi",
        "auth": {"type": "none"},
        "options": {"elms_home_pages": ["http://lms.example"]},
    },
]


def statement(
    verb: str,
    *,
    email: str = "learner1@example.com",
    course: str = COURSE,
    iri: str | None = None,
    scaled: float | None = None,
    minutes: int = 0,
    **changes: Any,
) -> dict[str, Any]:
    """Return an xAPI statement of ``verb`` by a learner on a course."""
    made: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": f"mailto:{email}"},
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}"},
        "object": {
            "id": iri or f"http://example.com/courses/{uuid.uuid4().hex[:8]}",
            "definition": {"name": {"en-US": course}},
        },
        "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(),
    }
    if scaled is not None:
        made["result"] = {"score": {"scaled": scaled}, "completion": True}
    made.update(copy.deepcopy(changes))
    return made


@dataclass
class Stack:
    """The running parts of one test."""

    url: str
    store: Store
    dispatcher: Any
    sandbox: Any
    settings: Settings
    admin: str = field(init=False)

    def __post_init__(self) -> None:
        self.admin = self.sandbox.admin_url

    def post(self, body: Any, source: str = "lms") -> requests.Response:
        response = requests.post(f"{self.url}/hooks/{source}", json=body, timeout=10)
        assert response.status_code == 202, response.text
        return response

    def drain(self) -> int:
        return self.dispatcher.drain(max_seconds=30)

    def calls(self, method: str = "PUT") -> list[dict[str, Any]]:
        log = requests.get(f"{self.admin}/calls", timeout=5).json()["calls"]
        return [c for c in log if c["method"] == method]

    def progress(self) -> dict[tuple[str, str], dict[str, Any]]:
        state = requests.get(f"{self.admin}/state", timeout=5).json()
        records = state if isinstance(state, list) else state["progress"]
        return {(str(r["learning_id"]), str(r["user_id"])): r for r in records}

    def faults(self, **faults: Any) -> None:
        response = requests.put(f"{self.admin}/faults", json=faults, timeout=5)
        response.raise_for_status()

    def event(self, event_id: str) -> Any:
        with self.store.session(write=False) as session:
            return queries.get_event(session, event_id)

    def user_id(self, email: str) -> str:
        users = requests.get(
            f"{self.sandbox.base_url}/users/",
            params={"email": email},
            headers={"Authorization": f"Basic {self.sandbox.token}"},
            timeout=5,
        ).json()
        return str(users[0]["id"])

    def learning_id(self, name: str = COURSE) -> str:
        learning = requests.get(
            f"{self.sandbox.base_url}/learning/",
            headers={"Authorization": f"Basic {self.sandbox.token}"},
            timeout=5,
        ).json()
        return str(next(item["id"] for item in learning if item["name"] == name))


def stack_settings(tmp_path, sandbox, database_url: str, **overrides: Any) -> Settings:
    """Return settings for a test stack with short, test-sized schedules."""
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(yaml.safe_dump({"sources": SOURCES}))
    values: dict[str, Any] = {
        "database_url": database_url,
        "sources_file": str(sources_file),
        "elms_url": sandbox.base_url,
        "elms_token": sandbox.token,
        "elms_retries": 0,
        "dispatch_backoff": 0.05,
        "dispatch_backoff_max": 0.2,
        "dispatch_lease": 5.0,
        "resolve_cache_ttl": 60.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def stack(tmp_path, sandbox):
    """Yield the web app, a dispatcher and the sandbox on a fresh database."""
    settings = stack_settings(tmp_path, sandbox, f"sqlite:///{tmp_path}/bridge.db")
    upgrade(settings.database_url)
    store = create_store(settings.database_url)
    worker_store, dispatcher = build_dispatcher(settings)
    requests.delete(f"{sandbox.admin_url}/calls", timeout=5)
    with serve_wsgi(create_app(settings, store=store)) as served:
        yield Stack(served.url, store, dispatcher, sandbox, settings)
    dispatcher.client.close()
    worker_store.dispose()
    store.dispose()


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
