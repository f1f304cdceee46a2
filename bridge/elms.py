"""Client for the Open ELMS REST API, the bridge's only way into Open ELMS.

One ``requests.Session`` with a pooled adapter; urllib3's ``Retry`` retries
idempotent calls (GET and PUT) on transport errors, 500 and 503 with
exponential backoff, jitter and ``Retry-After``. POST (create user) is only
retried when the connection was never made. This module alone turns
``requests`` failures and status codes into the :class:`ElmsError` family.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bridge import __version__
from bridge.elms_shapes import Progress, parse_progress, parse_user_id
from bridge.errors import (
    ElmsAuthError,
    ElmsError,
    ElmsNotFoundError,
    ElmsNotImplementedError,
    ElmsPreconditionError,
    ElmsResponseError,
    ElmsServerError,
    ElmsShapeError,
    ElmsTransportError,
    ElmsUnavailableError,
    ElmsValidationError,
)

if TYPE_CHECKING:
    from bridge.config import Settings

logger = logging.getLogger(__name__)

USER_SEARCH_FIELDS = (
    "fname",
    "lname",
    "username",
    "usercode",
    "email",
    "company_id",
    "department_id",
    "country_id",
    "city_id",
    "location_id",
    "group_id",
)
USER_CREATE_FIELDS = ("fname", "lname", "username", "usercode", "email", "description")
USER_UPDATE_FIELDS = (
    "fname",
    "lname",
    "username",
    "usercode",
    "email",
    "country_id",
    "city_id",
    "department_id",
    "location_id",
    "company_id",
    "description",
)

_STATUS_ERRORS: dict[int, type[ElmsResponseError]] = {
    400: ElmsValidationError,
    401: ElmsAuthError,
    403: ElmsAuthError,
    404: ElmsNotFoundError,
    412: ElmsPreconditionError,
    500: ElmsServerError,
    501: ElmsNotImplementedError,
    503: ElmsUnavailableError,
}
_MESSAGE_LIMIT = 300
_DOWNLOAD_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ElmsCall:
    """One finished Open ELMS call, as the client reports it to its observer."""

    method: str
    path: str
    status: int | None  # None: no answer (transport failure)
    seconds: float


CallObserver = Callable[[ElmsCall], None]


class LoggingRetry(Retry):
    """urllib3's Retry, logging one warning line for each retry it makes."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> LoggingRetry:
        """Count one more attempt and log why it is being retried."""
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        assert isinstance(retry, LoggingRetry)  # noqa: S101 - new() keeps the class
        if response is not None:
            cause = f"got {response.status}"
        else:
            cause = f"failed with {type(error).__name__}"
        path = urlsplit(url or "").path
        attempt = len(retry.history)
        logger.warning(
            "elms %s %s: attempt %d %s; retrying", method, path, attempt, cause
        )
        return retry


class OpenElmsClient:
    """Call the Open ELMS REST API of one site.

    Args:
        base_url: the site's backend base, e.g. ``https://HOST/SITE/backend``.
        token: the APITokenAccess value, sent raw as ``Basic <token>``.
        retries: retries of an idempotent call (0 disables them).
        backoff: backoff factor; waits grow as ``backoff * 2**n`` plus jitter.
        backoff_max: longest wait between two retries.
        retry_after_max: longest ``Retry-After`` honoured.
        connect_timeout: seconds to wait for a connection.
        read_timeout: seconds to wait for an answer.
        pool_size: connections kept open.
        observer: told of every finished call (the worker counts them);
            given here so this module stays free of the metrics library.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 120.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        pool_size: int = 10,
        observer: CallObserver | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.observer = observer
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Basic {token}"
        self.session.headers["User-Agent"] = f"openelms-bridge/{__version__}"
        self.session.headers["Accept"] = "application/json"

        retry = LoggingRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=frozenset({"GET", "PUT", "HEAD"}),
            status_forcelist=frozenset({500, 503}),
            backoff_factor=backoff,
            backoff_max=backoff_max,
            backoff_jitter=backoff / 2,
            respect_retry_after_header=True,
            retry_after_max=int(retry_after_max),
            raise_on_status=False,
            raise_on_redirect=False,
        )
        adapter = HTTPAdapter(
            pool_connections=1, pool_maxsize=pool_size, max_retries=retry
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        base_url: str | None = None,
        token: str | None = None,
        observer: CallObserver | None = None,
    ) -> OpenElmsClient:
        """Return a client configured from validated settings."""
        url = base_url or settings.elms_url
        secret = token or settings.elms_token
        if not url or not secret:
            raise ElmsError("BRIDGE_ELMS_URL and BRIDGE_ELMS_TOKEN must both be set")
        return cls(
            url,
            secret,
            retries=settings.elms_retries,
            backoff=settings.elms_backoff,
            backoff_max=settings.elms_backoff_max,
            retry_after_max=settings.elms_retry_after_max,
            connect_timeout=settings.elms_connect_timeout,
            read_timeout=settings.elms_read_timeout,
            pool_size=settings.elms_pool_size,
            observer=observer,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> OpenElmsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Users

    def list_users(self) -> list[dict[str, Any]]:
        """Return every user account of the site."""
        return as_list(self.request_json("GET", "users/"))

    def get_user(self, user_id: int | str) -> dict[str, Any]:
        """Return one user account."""
        body = self.request_json("GET", f"users/{segment(user_id)}")
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        if not isinstance(body, dict):
            raise ElmsShapeError(f"GET users/{user_id}: expected one user object")
        return body

    def search_users(self, **criteria: str | int) -> list[dict[str, Any]]:
        """Return the users matching every given field (fname, email, ...)."""
        unknown = sorted(set(criteria) - set(USER_SEARCH_FIELDS))
        if unknown:
            raise ValueError(f"unknown search field(s): {', '.join(unknown)}")
        if not criteria:
            raise ValueError("give at least one search field")
        params = {key: str(value) for key, value in criteria.items()}
        return as_list(self.request_json("GET", "users/", params=params))

    def create_user(self, **fields: str) -> int | str:
        """Create a user from form data and return its id.

        Not retried after the request was sent: a second POST could create
        a second account.
        """
        data = form_fields(fields, USER_CREATE_FIELDS)
        return parse_user_id(self.request_json("POST", "users/", data=data))

    def update_user(self, user_id: int | str, **fields: str) -> Any:
        """Update a user's fields (form data) and return the answer's body."""
        data = form_fields(fields, USER_UPDATE_FIELDS)
        if not data:
            raise ValueError("give at least one field to update")
        return self.request_json("PUT", f"users/{segment(user_id)}", data=data)

    # Learning resources

    def list_learning(self) -> list[dict[str, Any]]:
        """Return every learning resource of the site."""
        return as_list(self.request_json("GET", "learning/"))

    def get_learning(self, learning_id: int | str) -> dict[str, Any]:
        """Return one learning resource, with its download link if SCORM."""
        body = self.request_json("GET", f"learning/{segment(learning_id)}")
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        if not isinstance(body, dict):
            raise ElmsShapeError(f"GET learning/{learning_id}: expected one object")
        return body

    def download_learning(self, learning_id: int | str, destination: Path) -> int:
        """Stream a SCORM resource's ZIP to ``destination``; return its size.

        Written to a temporary file beside the destination and renamed at
        the end, so a broken download never leaves a partial ZIP behind.
        """
        path = f"learning/download/{segment(learning_id)}"
        response = self.send("GET", path, stream=True)
        destination = Path(destination)
        handle, partial = tempfile.mkstemp(
            dir=destination.parent or Path("."), prefix=".download-"
        )
        size = 0
        try:
            with os.fdopen(handle, "wb") as out, response:
                for chunk in response.iter_content(_DOWNLOAD_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            os.replace(partial, destination)
        except requests.RequestException as exc:
            raise ElmsTransportError(str(exc), method="GET", path=path) from exc
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return size

    # Progress

    def get_progress(self, learning_id: int | str, user_id: int | str) -> Progress:
        """Return a user's status and score on one learning resource."""
        path = f"learning/{segment(learning_id)}/{segment(user_id)}"
        return parse_progress(self.request_json("GET", path))

    def start(self, learning_id: int | str, user_id: int | str) -> Any:
        """Mark a learning resource as in progress for a user."""
        path = f"learning/{segment(learning_id)}/{segment(user_id)}/start"
        return self.request_json("PUT", path)

    def complete(
        self, learning_id: int | str, user_id: int | str, score: float | None = None
    ) -> Any:
        """Mark a learning resource as completed, with a score if given.

        Open ELMS keeps scores as whole numbers, so the score is rounded.
        """
        path = f"learning/{segment(learning_id)}/{segment(user_id)}/complete"
        if score is not None:
            path += f"/{format_score(score)}"
        return self.request_json("PUT", path)

    # Transport

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its JSON body (None when empty)."""
        response = self.send(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            text = response.text.strip()
            if text:
                return text
            return None

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request (with retries) and raise for error statuses."""
        url = self.base_url + path
        started = time.monotonic()
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            logger.info("elms %s %s: failed: %s", method, path, type(exc).__name__)
            self.report(method, path, None, time.monotonic() - started)
            raise ElmsTransportError(
                describe_transport_error(exc), method=method, path=path
            ) from exc

        elapsed = time.monotonic() - started
        elapsed_ms = elapsed * 1000
        self.report(method, path, response.status_code, elapsed)
        logger.info(
            "elms %s %s -> %d in %.0f ms",
            method,
            path,
            response.status_code,
            elapsed_ms,
        )
        if response.status_code >= 400:
            raise to_error(response, method, path)
        return response

    def report(
        self, method: str, path: str, status: int | None, seconds: float
    ) -> None:
        """Tell the observer, if any, how a call ended."""
        if self.observer is not None:
            self.observer(ElmsCall(method, path, status, seconds))


def to_error(response: requests.Response, method: str, path: str) -> ElmsResponseError:
    """Return the error class instance for an error response."""
    status = response.status_code
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = ElmsServerError if status >= 500 else ElmsValidationError
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return cls(
        server_message(response),
        status=status,
        method=method,
        path=path,
        retry_after=retry_after,
    )


def server_message(response: requests.Response) -> str:
    """Return the server's message from an error body, clipped."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, Mapping):
        body = body.get("message") or body.get("error") or body
    text = str(body).strip() or response.reason or "no message"
    return text[:_MESSAGE_LIMIT]


def parse_retry_after(value: str | None) -> float | None:
    """Return a ``Retry-After`` value in seconds, or None if absent or a date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def describe_transport_error(exc: requests.RequestException) -> str:
    """Return a one-line reason for a transport failure.

    After retries, requests reports a read timeout as a ConnectionError
    around urllib3's MaxRetryError, so the urllib3 reason is checked too.
    """
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (requests.exceptions.SSLError, "TLS error"),
        (urllib3.exceptions.SSLError, "TLS error"),
        (urllib3.exceptions.NameResolutionError, "DNS lookup failed"),
        (urllib3.exceptions.NewConnectionError, "connection failed"),
        (requests.exceptions.ConnectTimeout, "connect timeout"),
        (urllib3.exceptions.ConnectTimeoutError, "connect timeout"),
        (requests.exceptions.ReadTimeout, "read timeout"),
        (urllib3.exceptions.ReadTimeoutError, "read timeout"),
        (requests.exceptions.ConnectionError, "connection failed"),
    )
    for kind, text in kinds:
        if isinstance(exc, kind) or isinstance(reason, kind):
            return f"{text} ({type(exc).__name__})"
    return type(exc).__name__


# Open ELMS ids are numbers; other systems' ids are letters, digits and a
# few marks. Anything else (spaces, control characters, other scripts'
# digits, URL syntax) is refused before it can reach a URL or a log line.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,63}")


def segment(value: int | str) -> str:
    """Return an id as a path segment, refusing anything that is not a plain id."""
    text = str(value).strip()
    if not _ID_PATTERN.fullmatch(text):
        raise ValueError(f"not a valid id: {value!r}")
    return text


def format_score(score: float) -> str:
    """Return a 0-100 score as the whole number Open ELMS stores."""
    if not 0 <= score <= 100:
        raise ValueError(f"score must be between 0 and 100; got {score}")
    return str(int(round(score)))


def form_fields(fields: Mapping[str, Any], allowed: tuple[str, ...]) -> dict[str, str]:
    """Return the non-empty form fields, refusing names the API does not take."""
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    return {key: str(value) for key, value in fields.items() if value is not None}


def as_list(body: Any) -> list[dict[str, Any]]:
    """Return a list body as is; a single object as a list of one."""
    if body is None:
        return []
    if isinstance(body, dict):
        for key in ("data", "users", "learning", "items"):
            if isinstance(body.get(key), list):
                return body[key]
        return [body]
    if isinstance(body, list):
        return body
    raise ElmsShapeError(f"expected a list; got {type(body).__name__}")
