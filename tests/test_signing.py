"""Signing: Standard Webhooks headers that the reference verifier accepts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from bridge.signing import (
    check_secret,
    delivery_headers,
    new_secret,
    signature_header,
)

BODY = b'{"type":"progress.completed","data":{"user_id":"7","score":92.5}}'
MSG_ID = "msg_2fQ1"


def now() -> datetime:
    """Return the present; the verifier refuses timestamps 5 minutes off."""
    return datetime.now(UTC)


def test_new_secret_is_whsec_and_32_random_bytes():
    first, second = new_secret(), new_secret()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second
    assert check_secret(first) == first


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("abc", "start with"),
        ("whsec_not base64!", "base64"),
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), "24 to 64"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64"),
    ],
)
def test_check_secret_refuses_wrong_shapes_without_echoing_them(secret, problem):
    with pytest.raises(ValueError, match=problem) as caught:
        check_secret(secret)

    assert secret not in str(caught.value)


def test_delivery_headers_verify_with_the_reference_library():
    secret = new_secret()
    sent_at = now()

    headers = delivery_headers([secret], MSG_ID, sent_at, BODY)

    assert headers["webhook-id"] == MSG_ID
    assert headers["webhook-timestamp"] == str(int(sent_at.timestamp()))
    assert headers["content-type"] == "application/json"
    assert Webhook(secret).verify(BODY, headers)["data"]["score"] == 92.5


def test_during_rotation_each_secret_verifies_and_a_stranger_does_not():
    current, previous = new_secret(), new_secret()

    headers = delivery_headers([current, previous], MSG_ID, now(), BODY)

    entries = headers["webhook-signature"].split(" ")
    assert len(entries) == 2
    assert all(entry.startswith("v1,") for entry in entries)
    for secret in (current, previous):
        Webhook(secret).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_current_secret_signs_first():
    current, previous = new_secret(), new_secret()
    sent_at = now()

    both = signature_header([current, previous], MSG_ID, sent_at, BODY)
    alone = signature_header([current], MSG_ID, sent_at, BODY)

    assert both.split(" ")[0] == alone


def test_a_tampered_body_or_id_fails_verification():
    secret = new_secret()
    headers = delivery_headers([secret], MSG_ID, now(), BODY)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"92.5", b"99.5"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_other"})


def test_a_timestamp_in_another_zone_signs_the_same_instant():
    secret = new_secret()
    sent_at = now()
    elsewhere = sent_at.astimezone(timezone(timedelta(hours=-5)))

    headers = delivery_headers([secret], MSG_ID, elsewhere, BODY)

    assert headers["webhook-timestamp"] == str(int(sent_at.timestamp()))
    Webhook(secret).verify(BODY, headers)


def test_signing_refuses_naive_timestamps_and_no_secrets():
    with pytest.raises(ValueError, match="timezone-aware"):
        signature_header([new_secret()], MSG_ID, datetime(2026, 3, 1), BODY)
    with pytest.raises(ValueError, match="at least one secret"):
        signature_header([], MSG_ID, now(), BODY)
