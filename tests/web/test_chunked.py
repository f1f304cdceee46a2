"""Chunked bodies: no length up front, so the limit must hold while reading."""

from __future__ import annotations

import json
import uuid

import requests

from tests.web.test_hooks import stored_counts

LIMIT = 1024 * 1024  # the default BRIDGE_MAX_BODY_BYTES of the test bridge


def chunks(data: bytes, size: int = 65536):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def padded_statement(length: int) -> bytes:
    """Return a valid statement padded with spaces to ``length`` bytes."""
    statement = {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": "mailto:learner1@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "http://example.com/courses/chunked"},
    }
    body = json.dumps(statement).encode()
    return body + b" " * (length - len(body))


def post_chunked(bridge, data: bytes) -> requests.Response:
    return requests.post(
        f"{bridge.url}/hooks/open-xapi",
        data=chunks(data),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


def test_a_chunked_body_past_the_limit_is_413_not_cut_and_kept(bridge_server):
    answer = post_chunked(bridge_server, padded_statement(LIMIT) + b"junk" * 10000)

    assert answer.status_code == 413
    assert answer.json()["error"] == "payload_too_large"
    assert stored_counts(bridge_server) == (0, 0)


def test_a_chunked_body_of_exactly_the_limit_is_taken(bridge_server):
    answer = post_chunked(bridge_server, padded_statement(LIMIT))

    assert answer.status_code == 202, answer.text
    assert stored_counts(bridge_server) == (1, 1)
