"""Check the credentials of inbound requests, one verifier per auth type.

Every failure raises the same :class:`bridge.errors.AuthenticationError`, so a
caller learns nothing about which part was wrong; the real reason goes to the
log at info level, without the secret or the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug.datastructures import Authorization

from bridge.errors import AuthenticationError

logger = logging.getLogger(__name__)

AUTH_TYPES = (
    "none",
    "hmac",
    "standard-webhooks",
    "basic",
    "bearer",
    "scorm-cloud-form",
)
SECRET_FIELDS = ("password", "secret", "token")
HMAC_ENCODINGS = ("hex", "base64")
DEFAULT_SIGNATURE_HEADER = "X-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
FAILURE_MESSAGE = "authentication failed"
MASK = "***"

# The keys each auth type reads besides ``type``; a secret key may instead be
# written as ``<key>_env``.
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "hmac": (
        "secret",
        "header",
        "encoding",
        "prefix",
        "timestamp_header",
        "tolerance_seconds",
    ),
    "standard-webhooks": ("secret",),
    "basic": ("username", "password"),
    "bearer": ("token",),
    "scorm-cloud-form": ("username", "password"),
}

# Headers that may carry someone's credentials whatever the source expects;
# the bridge never stores them.
ALWAYS_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie"}
)

_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class AuthSpec:
    """How one source proves who it is: the type and the fields that type reads.

    Secrets hold their resolved values; ``env`` maps a secret field to the
    environment variable it was read from, so storage keeps the reference.
    """

    type: str
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    header: str = DEFAULT_SIGNATURE_HEADER
    encoding: str = "hex"
    prefix: str = ""
    timestamp_header: str = ""
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    env: dict[str, str] = field(default_factory=dict)

    def public_dict(self) -> dict[str, Any]:
        """Return the spec as a JSON-ready dict with every secret masked."""
        public: dict[str, Any] = {"type": self.type}
        for key in TYPE_FIELDS[self.type]:
            if key in self.env:
                public[f"{key}_env"] = self.env[key]
            elif key in SECRET_FIELDS:
                public[key] = MASK
            else:
                public[key] = getattr(self, key)

        return public

    def to_storage(self) -> dict[str, Any]:
        """Return the spec as written in a sources file, secrets included."""
        stored: dict[str, Any] = {"type": self.type}
        for key in TYPE_FIELDS[self.type]:
            if key in self.env:
                stored[f"{key}_env"] = self.env[key]
            else:
                stored[key] = getattr(self, key)

        return stored


def verify_request(
    auth: AuthSpec,
    *,
    headers: Mapping[str, str],
    body: bytes,
    form: Mapping[str, str],
    now: float | None = None,
    source: str = "",
) -> None:
    """Check one request's credentials against ``auth``.

    Args:
        auth: the source's auth spec.
        headers: the request headers, in any letter case.
        body: the raw request body, as signed.
        form: the decoded fields of a form-encoded body, else empty.
        now: the current unix time; defaults to the clock. The
            ``standard-webhooks`` type reads the clock itself.
        source: the source name, for the log line only.

    Raises:
        AuthenticationError: whatever failed, always with the same message.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    clock = time.time() if now is None else now
    reason = _VERIFIERS[auth.type](auth, lowered, body, form, clock)
    if reason is None:
        return

    logger.info("source %s: authentication failed: %s", source, reason)
    raise AuthenticationError(FAILURE_MESSAGE)


def credential_headers(auth: AuthSpec) -> set[str]:
    """Return the lower-cased header names to strip before a request is stored."""
    names = set(ALWAYS_CREDENTIAL_HEADERS)
    if auth.type == "hmac":
        names.add(auth.header.lower())
    elif auth.type == "standard-webhooks":
        names.add("webhook-signature")

    return names


def credential_form_fields(auth: AuthSpec) -> set[str]:
    """Return the form field names to strip before a request is stored."""
    if auth.type == "scorm-cloud-form":
        return {"password"}
    return set()


def sign_hmac(
    secret: str,
    body: bytes,
    *,
    encoding: str = "hex",
    prefix: str = "",
    timestamp: int | str | None = None,
) -> str:
    """Return the signature header value the ``hmac`` type expects for ``body``."""
    digest = _hmac_digest(secret, _signed_message(body, timestamp))
    if encoding == "base64":
        return prefix + base64.b64encode(digest).decode("ascii")
    return prefix + digest.hex()


def _signed_message(body: bytes, timestamp: int | str | None) -> bytes:
    """Return what the ``hmac`` type signs: the body, after the timestamp if any."""
    if timestamp is None:
        return body
    return f"{timestamp}.".encode("ascii") + body


def _hmac_digest(secret: str, message: bytes) -> bytes:
    """Return the HMAC-SHA256 of ``message`` under the text ``secret``."""
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def _same_text(given: str, expected: str) -> bool:
    """Compare two strings in constant time."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _verify_none(
    auth: AuthSpec,
    headers: dict[str, str],
    body: bytes,
    form: Mapping[str, str],
    now: float,
) -> str | None:
    """Accept every request; the source declared ``type: none``."""
    return None


def _verify_hmac(
    auth: AuthSpec,
    headers: dict[str, str],
    body: bytes,
    form: Mapping[str, str],
    now: float,
) -> str | None:
    """Check an HMAC-SHA256 signature header, and its timestamp if configured."""
    given = headers.get(auth.header.lower(), "")
    if not given:
        return f"no {auth.header} header"
    if not given.startswith(auth.prefix):
        return f"{auth.header} lacks the expected prefix"

    timestamp = None
    if auth.timestamp_header:
        timestamp = headers.get(auth.timestamp_header.lower(), "")
        stale = _check_timestamp(timestamp, now, auth.tolerance_seconds)
        if stale:
            return f"{auth.timestamp_header} {stale}"

    signature = _decode_signature(given[len(auth.prefix) :], auth.encoding)
    if signature is None:
        return f"{auth.header} is not {auth.encoding}"

    expected = _hmac_digest(auth.secret, _signed_message(body, timestamp))
    if not hmac.compare_digest(signature, expected):
        return f"{auth.header} does not match the body"
    return None


def _check_timestamp(value: str, now: float, tolerance: int) -> str | None:
    """Return why a unix-seconds timestamp is unusable, or None if it is fresh."""
    if not _TIMESTAMP.fullmatch(value):
        return "is missing or not unix seconds"

    skew = int(value) - now
    if skew < -tolerance:
        return f"is {int(-skew)} s old; tolerance is {tolerance} s"
    if skew > tolerance:
        return f"is {int(skew)} s ahead; tolerance is {tolerance} s"
    return None


def _decode_signature(text: str, encoding: str) -> bytes | None:
    """Return the signature bytes of hex or base64 ``text``, or None if malformed."""
    try:
        if encoding == "base64":
            return base64.b64decode(text, validate=True)
        return bytes.fromhex(text)
    except (binascii.Error, ValueError):
        return None


def _verify_standard_webhooks(
    auth: AuthSpec,
    headers: dict[str, str],
    body: bytes,
    form: Mapping[str, str],
    now: float,
) -> str | None:
    """Check ``webhook-*`` headers with the Standard Webhooks library."""
    try:
        Webhook(auth.secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError as error:
        return f"standard webhooks: {error}"
    except ValueError:
        # Raised by the library for a malformed signature list or a body
        # that is not UTF-8; both mean the request cannot be genuine.
        return "standard webhooks: malformed signature header or body"
    return None


def _verify_basic(
    auth: AuthSpec,
    headers: dict[str, str],
    body: bytes,
    form: Mapping[str, str],
    now: float,
) -> str | None:
    """Check HTTP Basic credentials."""
    credentials = Authorization.from_header(headers.get("authorization"))
    if credentials is None or credentials.type != "basic":
        return "no Basic authorization header"

    return _check_user(
        credentials.username or "", credentials.password or "", auth, "Basic"
    )


def _verify_bearer(
    auth: AuthSpec,
    headers: dict[str, str],
    body: bytes,
    form: Mapping[str, str],
    now: float,
) -> str | None:
    """Check a bearer token."""
    credentials = Authorization.from_header(headers.get("authorization"))
    if credentials is None or credentials.type != "bearer":
        return "no Bearer authorization header"

    if not _same_text(credentials.token or "", auth.token):
        return "wrong bearer token"
    return None


def _verify_scorm_cloud_form(
    auth: AuthSpec,
    headers: dict[str, str],
    body: bytes,
    form: Mapping[str, str],
    now: float,
) -> str | None:
    """Check the ``username`` and ``password`` fields of a SCORM Cloud postback."""
    if "username" not in form or "password" not in form:
        return "no username and password form fields"

    return _check_user(form["username"], form["password"], auth, "form")


def _check_user(username: str, password: str, auth: AuthSpec, where: str) -> str | None:
    """Compare both username and password in constant time, never short-cut."""
    user_ok = _same_text(username, auth.username)
    password_ok = _same_text(password, auth.password)
    if user_ok and password_ok:
        return None
    return f"wrong {where} username or password"


_Verifier = Callable[
    [AuthSpec, dict[str, str], bytes, Mapping[str, str], float], "str | None"
]

_VERIFIERS: dict[str, _Verifier] = {
    "none": _verify_none,
    "hmac": _verify_hmac,
    "standard-webhooks": _verify_standard_webhooks,
    "basic": _verify_basic,
    "bearer": _verify_bearer,
    "scorm-cloud-form": _verify_scorm_cloud_form,
}
