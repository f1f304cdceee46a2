"""Sign outbound deliveries the Standard Webhooks way.

A thin layer over the ``standardwebhooks`` package, which computes each
``v1`` signature (HMAC-SHA256 over ``msg_id.timestamp.body``). During a
secret rotation a delivery carries one signature per secret, current
first, so a subscriber verifies with either while it switches over.
"""

from __future__ import annotations

import base64
import binascii
import secrets as random_source
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
# Standard Webhooks asks for 24 to 64 random bytes; new secrets take 32.
SECRET_BYTES = 32
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64


def new_secret() -> str:
    """Return a fresh ``whsec_`` secret of 32 random bytes."""
    key = random_source.token_bytes(SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def check_secret(secret: str) -> str:
    """Return ``secret`` if it is ``whsec_`` and base64 of 24 to 64 bytes.

    Raises:
        ValueError: the secret has another shape; the message never
            repeats the secret.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a secret must start with {SECRET_PREFIX!r}")

    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"a secret must be {SECRET_PREFIX!r} then base64") from None

    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise ValueError(
            f"a secret must encode {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes;"
            f" this one has {len(key)}"
        )
    return secret


def signature_header(
    secrets: list[str], msg_id: str, timestamp: datetime, body: bytes
) -> str:
    """Return the ``webhook-signature`` value: one ``v1,<b64>`` per secret.

    Args:
        secrets: the signing secrets, current first (see
            ``subscription_queries.signing_secrets``).
        msg_id: the ``webhook-id`` sent with the body.
        timestamp: an aware datetime; whole seconds are signed.
        body: the exact bytes to be posted, UTF-8 JSON.

    Raises:
        ValueError: no secret, a naive timestamp, or a body not UTF-8.
    """
    if not secrets:
        raise ValueError("at least one secret is needed to sign")

    moment = _as_utc(timestamp)
    text = body.decode("utf-8")
    entries = [Webhook(secret).sign(msg_id, moment, text) for secret in secrets]
    return " ".join(entries)


def delivery_headers(
    secrets: list[str], msg_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    """Return the headers of one delivery: id, timestamp, signature, type.

    Raises:
        ValueError: as :func:`signature_header`.
    """
    moment = _as_utc(timestamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature_header(secrets, msg_id, moment, body),
        "content-type": "application/json",
    }


def _as_utc(timestamp: datetime) -> datetime:
    """Return an aware datetime in UTC, refusing a naive one.

    The package reads any datetime's clock time as UTC, so another zone
    would be signed hours off.
    """
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("the signing timestamp must be timezone-aware")
    return timestamp.astimezone(UTC)
