"""The local receiver: real signed deliveries over HTTP, verified and logged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import requests
from click.testing import CliRunner

from bridge.cli.receiver import receiver
from bridge.jobs.deliver import encode_body
from bridge.receiver import create_app
from bridge.signing import delivery_headers, new_secret
from tests.servers import serve_wsgi

SECRET = new_secret()
COMPLETED = {
    "type": "progress.completed",
    "time": "2026-12-03T10:00:00+00:00",
    "user": {"id": "2", "email": "learner1@example.com"},
    "learning": {"id": "15", "name": "Fire safety"},
    "status": "completed",
    "score": 85.0,
    "previous": {"status": "in_progress", "score": None},
    "cause": "inbound",
    "inbound_event_id": "evt-1",
}


def post(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    """Post a delivery to a served receiver, as the worker does."""
    return requests.post(url + "/", data=body, headers=headers, timeout=5)


def signed(body: bytes, msg_id: str, secret: str = SECRET) -> dict[str, str]:
    """Return the headers the bridge sends with ``body``, signed now."""
    return delivery_headers([secret], msg_id, datetime.now(UTC), body)


def receiver_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return the receiver's log lines so far."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "bridge.receiver"
    ]


def test_valid_delivery_gets_204_and_one_log_line(caplog):
    caplog.set_level(logging.INFO, logger="bridge.receiver")
    body = encode_body(COMPLETED)

    with serve_wsgi(create_app(SECRET)) as served:
        response = post(served.url, body, signed(body, "msg_valid"))

    assert response.status_code == 204
    assert receiver_lines(caplog) == [
        "receiver: msg_valid progress.completed user=2 learning=15"
        " status=completed score=85.0 cause=inbound (signature ok)"
    ]


def test_tampered_body_gets_401_and_no_ok_line(caplog):
    caplog.set_level(logging.INFO, logger="bridge.receiver")
    body = encode_body(COMPLETED)
    headers = signed(body, "msg_tampered")
    tampered = body.replace(b"85.0", b"99.0")

    with serve_wsgi(create_app(SECRET)) as served:
        response = post(served.url, tampered, headers)

    assert response.status_code == 401
    assert receiver_lines(caplog) == [
        "receiver: msg_tampered rejected: signature does not verify"
    ]


def test_delivery_signed_with_another_secret_gets_401():
    body = encode_body(COMPLETED)

    with serve_wsgi(create_app(SECRET)) as served:
        response = post(served.url, body, signed(body, "msg_other", new_secret()))

    assert response.status_code == 401


def test_unsigned_delivery_gets_401():
    body = encode_body(COMPLETED)

    with serve_wsgi(create_app(SECRET)) as served:
        response = post(served.url, body, {"content-type": "application/json"})

    assert response.status_code == 401


def test_event_without_user_or_learning_logs_dashes(caplog):
    caplog.set_level(logging.INFO, logger="bridge.receiver")
    failed = {
        "type": "bridge.event_failed",
        "inbound_event_id": "evt-9",
        "status": "unresolved",
        "reason": "no such user",
    }
    body = encode_body(failed)

    with serve_wsgi(create_app(SECRET)) as served:
        response = post(served.url, body, signed(body, "msg_failed"))

    assert response.status_code == 204
    assert receiver_lines(caplog) == [
        "receiver: msg_failed bridge.event_failed user=- learning=-"
        " status=unresolved score=- cause=- (signature ok)"
    ]


def test_receiver_command_refuses_a_malformed_secret():
    result = CliRunner().invoke(receiver, ["--port", "0", "--secret", "nope"])

    assert result.exit_code == 2
    assert "start with 'whsec_'" in result.output
