"""Tests of per-source inbound authentication."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from standardwebhooks.webhooks import Webhook
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bridge.auth import (
    AuthSpec,
    credential_form_fields,
    credential_headers,
    sign_hmac,
    verify_request,
)
from bridge.errors import AuthenticationError

NOW = 1_760_000_000.0
BODY = b'{"verb":"completed","score":0.9}'
HMAC_SECRET = "hmac-shared-secret"
WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()

HMAC = AuthSpec(type="hmac", secret=HMAC_SECRET)
HMAC_STAMPED = AuthSpec(
    type="hmac",
    secret=HMAC_SECRET,
    header="X-Hub-Signature-256",
    encoding="base64",
    prefix="sha256=",
    timestamp_header="X-Timestamp",
    tolerance_seconds=300,
)
BASIC = AuthSpec(type="basic", username="player", password="s3cret")
BEARER = AuthSpec(type="bearer", token="tok-123")
FORM = AuthSpec(type="scorm-cloud-form", username="cloud", password="pw")
STANDARD = AuthSpec(type="standard-webhooks", secret=WHSEC)


def check(
    auth: AuthSpec,
    headers: dict[str, str] | None = None,
    body: bytes = BODY,
    form: dict[str, str] | None = None,
    now: float | None = NOW,
) -> None:
    verify_request(
        auth,
        headers=headers or {},
        body=body,
        form=form or {},
        now=now,
        source="test-source",
    )


def assert_rejected(auth: AuthSpec, **kwargs: Any) -> None:
    with pytest.raises(AuthenticationError) as caught:
        check(auth, **kwargs)
    assert str(caught.value) == "authentication failed"
    assert caught.value.status == 401


def standard_headers(
    body: bytes, *, secret: str = WHSEC, sent: datetime | None = None
) -> dict[str, str]:
    sent = sent or datetime.now(tz=UTC)
    signature = Webhook(secret).sign("msg_1", sent, body.decode())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": signature,
    }


# --- none -----------------------------------------------------------------


def test_none_accepts_a_request_without_credentials() -> None:
    assert check(AuthSpec(type="none")) is None


# --- hmac -----------------------------------------------------------------


def test_sign_hmac_matches_a_known_hmac_sha256_value() -> None:
    # Reference value of RFC 4231 test case 2 (key "Jefe").
    message = b"what do ya want for nothing?"
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

    assert sign_hmac("Jefe", message, encoding="hex", prefix="") == expected


def test_sign_hmac_prefixes_and_encodes_base64_over_timestamp_and_body() -> None:
    hex_value = sign_hmac("Jefe", b"1700.body", encoding="hex", prefix="")
    signed = sign_hmac(
        "Jefe", b"body", encoding="base64", prefix="sha256=", timestamp=1700
    )

    assert signed == "sha256=" + base64.b64encode(bytes.fromhex(hex_value)).decode()


def test_hmac_accepts_the_right_hex_signature_in_any_header_case() -> None:
    signature = sign_hmac(HMAC_SECRET, BODY, encoding="hex", prefix="")

    check(HMAC, headers={"x-signature": signature})
    check(HMAC, headers={"X-SIGNATURE": signature.upper()})


def test_hmac_accepts_prefixed_base64_signature_with_fresh_timestamp() -> None:
    stamp = str(int(NOW) - 299)
    signature = sign_hmac(
        HMAC_SECRET, BODY, encoding="base64", prefix="sha256=", timestamp=stamp
    )

    check(
        HMAC_STAMPED,
        headers={"X-Hub-Signature-256": signature, "X-Timestamp": stamp},
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Signature": ""},
        {"X-Signature": sign_hmac("other-secret", BODY, encoding="hex", prefix="")},
        {"X-Signature": sign_hmac(HMAC_SECRET, BODY, encoding="base64", prefix="")},
        {"X-Signature": "zz" * 32},
        {"Other-Header": sign_hmac(HMAC_SECRET, BODY, encoding="hex", prefix="")},
    ],
    ids=["missing", "empty", "wrong-secret", "wrong-encoding", "not-hex", "elsewhere"],
)
def test_hmac_rejects_bad_or_missing_signatures(headers: dict[str, str]) -> None:
    assert_rejected(HMAC, headers=headers)


def test_hmac_rejects_a_tampered_body() -> None:
    signature = sign_hmac(HMAC_SECRET, BODY, encoding="hex", prefix="")

    assert_rejected(HMAC, headers={"X-Signature": signature}, body=BODY + b" ")


def stamped_headers(stamp: str, *, prefix: str = "sha256=") -> dict[str, str]:
    signature = sign_hmac(
        HMAC_SECRET, BODY, encoding="base64", prefix=prefix, timestamp=stamp
    )
    return {"X-Hub-Signature-256": signature, "X-Timestamp": stamp}


@pytest.mark.parametrize(
    "stamp",
    [str(int(NOW) - 301), str(int(NOW) + 301), "", "17e8", "-5"],
    ids=["stale", "future", "empty", "not-integer", "negative"],
)
def test_hmac_rejects_timestamps_outside_tolerance_or_malformed(stamp: str) -> None:
    assert_rejected(HMAC_STAMPED, headers=stamped_headers(stamp))


def test_hmac_rejects_a_missing_timestamp_header() -> None:
    headers = stamped_headers(str(int(NOW)))
    del headers["X-Timestamp"]

    assert_rejected(HMAC_STAMPED, headers=headers)


def test_hmac_rejects_a_signature_without_the_prefix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stamp = str(int(NOW))
    caplog.set_level(logging.INFO, logger="bridge.auth")

    assert_rejected(HMAC_STAMPED, headers=stamped_headers(stamp, prefix=""))

    assert caplog.records[0].getMessage() == (
        "source test-source: authentication failed: "
        "X-Hub-Signature-256 lacks the expected prefix"
    )


def test_hmac_rejects_a_timestamp_changed_after_signing() -> None:
    headers = stamped_headers(str(int(NOW)))
    headers["X-Timestamp"] = str(int(NOW) + 1)

    assert_rejected(HMAC_STAMPED, headers=headers)


# --- standard-webhooks ----------------------------------------------------


def test_standard_webhooks_accepts_the_libraries_own_signature() -> None:
    check(STANDARD, headers=standard_headers(BODY), now=None)


def test_standard_webhooks_accepts_one_valid_signature_among_several() -> None:
    headers = standard_headers(BODY)
    old_key = "whsec_" + base64.b64encode(b"o" * 32).decode()
    stale = standard_headers(BODY, secret=old_key)["webhook-signature"]
    headers["webhook-signature"] = f"{stale} {headers['webhook-signature']}"

    check(STANDARD, headers=headers, now=None)


def test_standard_webhooks_rejects_a_tampered_body() -> None:
    headers = standard_headers(BODY)

    assert_rejected(STANDARD, headers=headers, body=BODY.replace(b"0.9", b"1.0"))


def test_standard_webhooks_rejects_another_secret() -> None:
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()

    assert_rejected(STANDARD, headers=standard_headers(BODY, secret=other))


@pytest.mark.parametrize("shift", [-301, 301], ids=["stale", "future"])
def test_standard_webhooks_rejects_timestamps_beyond_five_minutes(
    shift: int,
) -> None:
    sent = datetime.now(tz=UTC) + timedelta(seconds=shift)

    assert_rejected(STANDARD, headers=standard_headers(BODY, sent=sent), now=None)


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "v1"},
        {"webhook-signature": "v1,***notbase64***"},
        {"webhook-id": ""},
    ],
    ids=["no-comma", "not-base64", "no-id"],
)
def test_standard_webhooks_rejects_malformed_headers(change: dict[str, str]) -> None:
    headers = {**standard_headers(BODY), **change}

    assert_rejected(STANDARD, headers=headers, now=None)


def test_standard_webhooks_rejects_a_body_that_is_not_utf8() -> None:
    body = b"\xff\xfe"
    headers = standard_headers(BODY)

    assert_rejected(STANDARD, headers=headers, body=body, now=None)


# --- basic, bearer and form -------------------------------------------------


def basic_header(username: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def test_basic_accepts_the_right_username_and_password() -> None:
    check(BASIC, headers=basic_header("player", "s3cret"))
    check(
        BASIC,
        headers={
            "authorization": basic_header("player", "s3cret")["Authorization"].replace(
                "Basic", "basic"
            )
        },
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic_header("player", "wrong"),
        basic_header("intruder", "s3cret"),
        basic_header("player", ""),
        {"Authorization": "Bearer s3cret"},
        {"Authorization": "Basic !!not-base64!!"},
    ],
    ids=["missing", "password", "username", "empty", "bearer", "garbled"],
)
def test_basic_rejects_wrong_or_missing_credentials(headers: dict[str, str]) -> None:
    assert_rejected(BASIC, headers=headers)


def test_bearer_accepts_the_right_token() -> None:
    check(BEARER, headers={"AUTHORIZATION": "Bearer tok-123"})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer tok-124"},
        {"Authorization": "Bearer "},
        {"Authorization": "tok-123"},
        basic_header("tok-123", "tok-123"),
    ],
    ids=["missing", "wrong", "empty", "no-scheme", "basic"],
)
def test_bearer_rejects_wrong_or_missing_tokens(headers: dict[str, str]) -> None:
    assert_rejected(BEARER, headers=headers)


def test_scorm_cloud_form_accepts_the_right_form_fields() -> None:
    check(FORM, form={"username": "cloud", "password": "pw", "data": "<x/>"})


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"username": "cloud"},
        {"username": "cloud", "password": "PW"},
        {"username": "Cloud", "password": "pw"},
    ],
    ids=["missing", "no-password", "password", "username"],
)
def test_scorm_cloud_form_rejects_wrong_or_missing_fields(
    form: dict[str, str],
) -> None:
    assert_rejected(FORM, form=form, headers=basic_header("cloud", "pw"))


# --- logging and stripping --------------------------------------------------


def test_failure_is_logged_with_reason_and_source_but_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signature = sign_hmac("other-secret", BODY, encoding="hex", prefix="")
    caplog.set_level(logging.INFO, logger="bridge.auth")

    assert_rejected(HMAC, headers={"X-Signature": signature})

    assert [record.getMessage() for record in caplog.records] == [
        "source test-source: authentication failed: X-Signature does not match the body"
    ]
    assert signature not in caplog.text
    assert HMAC_SECRET not in caplog.text


def test_stale_timestamp_is_logged_with_its_age(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.auth")

    assert_rejected(HMAC_STAMPED, headers=stamped_headers(str(int(NOW) - 400)))

    assert caplog.records[0].levelno == logging.INFO
    assert (
        caplog.records[0]
        .getMessage()
        .endswith("X-Timestamp is 400 s old; tolerance is 300 s")
    )


@pytest.mark.parametrize(
    ("auth", "headers", "form_fields"),
    [
        (AuthSpec(type="none"), set(), set()),
        (HMAC, {"x-signature"}, set()),
        (HMAC_STAMPED, {"x-hub-signature-256"}, set()),
        (STANDARD, {"webhook-signature"}, set()),
        (BASIC, set(), set()),
        (BEARER, set(), set()),
        (FORM, set(), {"password"}),
    ],
    ids=["none", "hmac", "hmac-custom", "standard", "basic", "bearer", "form"],
)
def test_credential_headers_and_form_fields_per_type(
    auth: AuthSpec, headers: set[str], form_fields: set[str]
) -> None:
    always = {"authorization", "proxy-authorization", "cookie"}

    assert credential_headers(auth) == always | headers
    assert credential_form_fields(auth) == form_fields


# --- over real HTTP ---------------------------------------------------------


@pytest.fixture()
def guarded_url() -> Iterator[str]:
    """Serve one endpoint per auth spec on loopback; 204 if verified, else 401."""
    specs = {
        "hmac": HMAC,
        "standard": STANDARD,
        "basic": BASIC,
        "bearer": BEARER,
        "form": FORM,
    }

    @Request.application
    def app(request: Request) -> Response:
        try:
            verify_request(
                specs[request.path.strip("/")],
                headers=request.headers,
                body=request.get_data(),
                form=request.form,
                source=request.path.strip("/"),
            )
        except AuthenticationError as error:
            return Response(str(error), status=error.status)
        return Response(status=204)

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def post(url: str, **kwargs: Any) -> requests.Response:
    return requests.post(url, timeout=5, **kwargs)


def test_each_type_verifies_real_http_requests(guarded_url: str) -> None:
    signature = sign_hmac(HMAC_SECRET, BODY, encoding="hex", prefix="")
    accepted = [
        post(f"{guarded_url}/hmac", data=BODY, headers={"X-Signature": signature}),
        post(f"{guarded_url}/standard", data=BODY, headers=standard_headers(BODY)),
        post(f"{guarded_url}/basic", data=BODY, auth=("player", "s3cret")),
        post(
            f"{guarded_url}/bearer",
            data=BODY,
            headers={"Authorization": "Bearer tok-123"},
        ),
        post(f"{guarded_url}/form", data={"username": "cloud", "password": "pw"}),
    ]

    assert [response.status_code for response in accepted] == [204] * 5


def test_each_type_answers_401_with_one_message_over_http(guarded_url: str) -> None:
    rejected = [
        post(f"{guarded_url}/hmac", data=BODY),
        post(
            f"{guarded_url}/standard",
            data=BODY + b"x",
            headers=standard_headers(BODY),
        ),
        post(f"{guarded_url}/basic", data=BODY, auth=("player", "nope")),
        post(f"{guarded_url}/bearer", data=BODY, headers={"Authorization": "Bearer x"}),
        post(f"{guarded_url}/form", data={"username": "cloud", "password": "no"}),
    ]

    assert [(r.status_code, r.text) for r in rejected] == [
        (401, "authentication failed")
    ] * 5
