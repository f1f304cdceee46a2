"""Logging: text and JSON lines, secrets never written."""

from __future__ import annotations

import json
import logging

import pytest

from bridge.logs import configure_logging, redact


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("headers {'Authorization': 'Basic 12345'}", "12345"),
        ("Authorization: Bearer abc.def", "abc.def"),
        ("token=s3cr3t&x=1", "s3cr3t"),
        ('{"password": "hunter2"}', "hunter2"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjU"),
        ("postgresql://app:pw123@db/bridge", "pw123"),
    ],
)
def test_redact_masks_credentials(text, secret):
    assert secret not in redact(text)
    assert "***" in redact(text)


def test_json_format_writes_one_object_a_line(capsys):
    configure_logging("INFO", "json")

    logging.getLogger("bridge.test").info("event %s stored", "e-1", extra={"n": 2})

    line = capsys.readouterr().err.strip()
    entry = json.loads(line)
    assert entry["message"] == "event e-1 stored"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "bridge.test"
    assert entry["n"] == 2


def test_text_format_masks_a_token_passed_as_argument(capsys):
    configure_logging("DEBUG", "text")

    logging.getLogger("bridge.test").debug("sending Authorization: %s", "Basic tok9")

    err = capsys.readouterr().err
    assert "tok9" not in err
    assert "DEBUG bridge.test: sending Authorization: ***" in err


def test_control_characters_from_client_data_cannot_forge_a_line(capsys):
    configure_logging("INFO", "text")

    logging.getLogger("bridge.test").info(
        "user %s", "7\n2026-12-03 CRITICAL forged\x00"
    )

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "user 7\\n2026-12-03 CRITICAL forged\\x00" in err
