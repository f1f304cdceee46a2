"""X-Request-ID over real HTTP: echoed, made when missing or unsafe, logged."""

from __future__ import annotations

import logging
import re

import pytest
import requests

from bridge.web.access import accepted_request_id
from tests.web.test_hooks import post, statement

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_a_sane_request_id_is_echoed_and_logged_with_the_event_ids(
    bridge_server, caplog
):
    caplog.set_level(logging.INFO, logger="bridge.web.access")

    response = post(
        bridge_server,
        "open-xapi",
        statement(),
        headers={"X-Request-ID": "lms-7f3a:42"},
    )

    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "lms-7f3a:42"
    event_id = response.json()["events"][0]["id"]
    intake_id = response.json()["request_id"]
    lines = [r for r in caplog.records if r.name == "bridge.web.access"]
    assert len(lines) == 1
    message = lines[0].getMessage()
    expected = "request lms-7f3a:42: POST /hooks/open-xapi from open-xapi -> 202"
    assert message.startswith(expected)
    assert f"intake {intake_id} (1 new)" in message
    assert message.endswith(f"events {event_id}")
    assert lines[0].event_ids == [event_id]


def test_a_request_without_an_id_gets_a_new_one(bridge_server, caplog):
    caplog.set_level(logging.INFO, logger="bridge.web.access")

    first = post(bridge_server, "open-xapi", statement())
    second = post(bridge_server, "open-xapi", statement())

    made = first.headers["X-Request-ID"]
    assert GENERATED.fullmatch(made)
    assert second.headers["X-Request-ID"] != made
    assert any(r.getMessage().startswith(f"request {made}:") for r in caplog.records)


@pytest.mark.parametrize(
    "given",
    ["has space", "x" * 129, "semi;colon", "-leading-dash", "ünïcode"],
)
def test_an_unsafe_request_id_is_replaced(bridge_server, given):
    response = requests.get(
        f"{bridge_server.url}/healthz",
        headers={"X-Request-ID": given.encode()},
        timeout=5,
    )

    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


def test_errors_carry_the_request_id_too(bridge_server, caplog):
    caplog.set_level(logging.INFO, logger="bridge.web.access")

    response = post(
        bridge_server, "no-such-source", statement(), headers={"X-Request-ID": "r-404"}
    )

    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "r-404"
    lines = [r.getMessage() for r in caplog.records if r.name == "bridge.web.access"]
    assert len(lines) == 1
    assert "request r-404: POST /hooks/no-such-source from unknown -> 404" in lines[0]


def test_request_id_rules():
    assert accepted_request_id("a" * 128) == "a" * 128
    assert accepted_request_id("0f8e-4b2c/trace=1+2") == "0f8e-4b2c/trace=1+2"
    assert GENERATED.fullmatch(accepted_request_id(""))
    assert GENERATED.fullmatch(accepted_request_id(None))
