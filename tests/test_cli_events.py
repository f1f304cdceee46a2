"""``python -m bridge events ...`` after real requests to a running bridge.

One bridge web process (``serve --workers 1``) is started per module on a
fresh SQLite file; statements are posted to it over loopback, it is
stopped, and the CLI then reads what was stored.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import yaml

from tests.clitools import ROOT, bridge, clean_env, free_port, wait_for

PASSWORD = "guarded-pw-3318"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PASSED = "http://adlnet.gov/expapi/verbs/passed"
UNMAPPED = "http://example.com/verbs/bookmarked"


def statement(verb: str, scaled: float | None, course: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": "mailto:Learner1@Example.com"},
        "verb": {"id": verb},
        "object": {"id": f"http://example.com/courses/{course}"},
        "timestamp": "2026-03-01T09:30:00Z",
    }
    if scaled is not None:
        data["result"] = {"completion": True, "score": {"scaled": scaled}}
    return data


@dataclass(frozen=True)
class Posted:
    """One statement posted to the bridge and the event id it answered."""

    source: str
    body: str
    statement_id: str
    event_id: str


@dataclass(frozen=True)
class Stored:
    """What the running bridge accepted, and the environment to read it with."""

    env: dict[str, str]
    completed: Posted
    unmapped: Posted
    passed: Posted


def post(base: str, source: str, data: dict[str, Any], **kwargs: Any) -> Posted:
    body = json.dumps(data)
    response = requests.post(
        f"{base}/hooks/{source}",
        data=body,
        headers={"Content-Type": "application/json", "X-Trace-Id": "trace-77"},
        timeout=10,
        **kwargs,
    )
    assert response.status_code == 202, response.text
    (event,) = response.json()["events"]
    return Posted(source, body, data["id"], event["id"])


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Post three statements to a real bridge process; yield what it answered."""
    directory = tmp_path_factory.mktemp("events")
    sources = [
        {"name": "open", "format": "xapi", "auth": {"type": "none"}},
        {
            "name": "guarded",
            "format": "xapi",
            "auth": {"type": "basic", "username": "player", "password": PASSWORD},
        },
    ]
    sources_file = directory / "sources.yaml"
    sources_file.write_text(yaml.safe_dump({"sources": sources}))
    env = clean_env(
        BRIDGE_DATABASE_URL=f"sqlite:///{directory}/x.db",
        BRIDGE_SOURCES_FILE=str(sources_file),
    )
    port = free_port()
    log = (directory / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "serve", "--port", str(port)]
        + ["--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz")
        completed = post(base, "open", statement(COMPLETED, 0.85, "fire-safety"))
        unmapped = post(base, "open", statement(UNMAPPED, None, "fire-safety"))
        passed = post(
            base,
            "guarded",
            statement(PASSED, 0.9, "first-aid"),
            auth=("player", PASSWORD),
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()
    yield Stored(env, completed, unmapped, passed)


def listed(stored: Stored, *args: str) -> list[dict[str, Any]]:
    result = bridge("events", "list", *args, env=stored.env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_list_shows_every_event_newest_first_with_kind_and_score(stored):
    rows = listed(stored)

    assert [row["id"] for row in rows] == [
        stored.passed.event_id,
        stored.unmapped.event_id,
        stored.completed.event_id,
    ]
    assert [(r["source"], r["kind"], r["score"], r["status"]) for r in rows] == [
        ("guarded", "passed", 90.0, "pending"),
        ("open", "informational", None, "informational"),
        ("open", "completed", 85.0, "pending"),
    ]
    assert rows[2]["source_event_id"] == stored.completed.statement_id
    assert rows[2]["occurred_at"] == "2026-03-01T09:30:00+00:00"


def test_list_filters_by_status_and_source(stored):
    pending_open = listed(stored, "--status", "pending", "--source", "open")
    informational = listed(stored, "--status", "informational")
    guarded = listed(stored, "--source", "guarded")
    nothing = listed(stored, "--status", "dispatched", "--source", "open")

    assert [row["id"] for row in pending_open] == [stored.completed.event_id]
    assert [row["id"] for row in informational] == [stored.unmapped.event_id]
    assert [row["id"] for row in guarded] == [stored.passed.event_id]
    assert nothing == []


def test_list_pages_with_limit_and_before(stored):
    first = listed(stored, "--limit", "2")
    rest = listed(stored, "--limit", "2", "--before", first[-1]["id"])

    assert [row["id"] for row in first] == [
        stored.passed.event_id,
        stored.unmapped.event_id,
    ]
    assert [row["id"] for row in rest] == [stored.completed.event_id]


def test_show_gives_the_normalised_event_and_the_stored_request(stored):
    result = bridge("events", "show", stored.completed.event_id, env=stored.env)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["kind"] == "completed"
    assert shown["score"] == 85.0
    assert shown["status"] == "pending"
    assert shown["learner"] == {"email": "learner1@example.com"}
    assert shown["activity"]["iri"] == "http://example.com/courses/fire-safety"
    assert shown["request"]["method"] == "POST"
    assert shown["request"]["path"] == "/hooks/open"
    assert shown["request"]["content_type"] == "application/json"
    assert shown["request"]["body"] == stored.completed.body
    assert shown["request"]["headers"]["X-Trace-Id"] == "trace-77"


def test_show_of_an_authenticated_request_stores_no_authorization_header(stored):
    result = bridge("events", "show", stored.passed.event_id, env=stored.env)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    headers = {name.lower() for name in shown["request"]["headers"]}
    assert shown["kind"] == "passed"
    assert shown["score"] == 90.0
    assert shown["request"]["path"] == "/hooks/guarded"
    assert shown["request"]["body"] == stored.passed.body
    assert "x-trace-id" in headers
    assert "authorization" not in headers
    assert PASSWORD not in result.stdout


def test_show_of_an_unmapped_verb_explains_why_it_is_informational(stored):
    result = bridge("events", "show", stored.unmapped.event_id, env=stored.env)

    shown = json.loads(result.stdout)
    assert shown["kind"] == "informational"
    assert shown["score"] is None
    assert "bookmarked" in shown["note"]


def test_show_of_an_unknown_event_exits_1_with_one_error_line(stored):
    result = bridge("events", "show", "no-such-event", env=stored.env)

    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == ["error: no event no-such-event"]
