"""Exceptions of the bridge, one family per boundary.

All of them derive from :class:`BridgeError`::

    BridgeError
    ├── ConfigError                     settings or a config file are wrong
    ├── ElmsError                       the Open ELMS boundary
    │   ├── ElmsTransportError          refused, timeout, DNS, TLS
    │   ├── ElmsResponseError           a status code the reference names
    │   │   ├── ElmsValidationError     400
    │   │   ├── ElmsAuthError           401 and 403
    │   │   ├── ElmsNotFoundError       404
    │   │   ├── ElmsPreconditionError   412
    │   │   ├── ElmsServerError         500 (and other 5xx not below)
    │   │   ├── ElmsNotImplementedError 501
    │   │   └── ElmsUnavailableError    503, rate limit or outage
    │   └── ElmsShapeError              a body of a shape we cannot read
    ├── InboundError                    what a client sent us
    │   ├── PayloadError                400, invalid content (also ValueError)
    │   ├── AuthenticationError         401
    │   ├── UnknownSourceError          404
    │   ├── ConflictError               409, an id reused with other content
    │   ├── PayloadTooLargeError        413
    │   └── UnsupportedMediaError       415
    ├── DeliveryError                   outbound webhook delivery
    └── AdminError                      an operator's request (CLI or admin API)
        ├── InvalidInputError           422, a field is wrong (also ValueError)
        ├── AdminAuthError              401, no or a wrong admin token
        ├── NotFoundError               404, no such object (also LookupError)
        ├── AdminApiOffError            404, BRIDGE_ADMIN_TOKEN is not set
        └── StateConflictError          409, the object's state forbids it
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """Root of every error the bridge raises on purpose."""


class ConfigError(BridgeError):
    """Hold every configuration mistake found, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ElmsError(BridgeError):
    """A call to Open ELMS did not give a usable answer."""

    retryable = False

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        self.method = method
        self.path = path
        super().__init__(message)


class ElmsTransportError(ElmsError):
    """The request did not get an HTTP answer: refused, timeout, DNS or TLS."""

    retryable = True

    def __str__(self) -> str:
        return f"{self.method} {self.path}: transport failure: {self.args[0]}"


class ElmsResponseError(ElmsError):
    """Open ELMS answered with an error status; carries what a handler needs."""

    status = 0

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        path: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {self.status} {self.args[0]}"


class ElmsValidationError(ElmsResponseError, ValueError):
    """400: Open ELMS refused the data as invalid."""


class ElmsAuthError(ElmsResponseError):
    """401 or 403: the token is wrong; every other call would fail too."""


class ElmsNotFoundError(ElmsResponseError, LookupError):
    """404: the user or learning resource does not exist."""


class ElmsPreconditionError(ElmsResponseError):
    """412: a condition in the request headers was not met."""


class ElmsServerError(ElmsResponseError):
    """500: an unhandled error inside Open ELMS; worth retrying later."""

    retryable = True


class ElmsNotImplementedError(ElmsResponseError):
    """501: the method is not implemented on that path."""


class ElmsUnavailableError(ElmsResponseError):
    """503: rate limit or outage; retry after ``retry_after`` seconds if given."""

    retryable = True


class ElmsShapeError(ElmsError, ValueError):
    """A 2xx body whose shape the client cannot read."""


class InboundError(BridgeError):
    """Something a client sent; maps to a 4xx answer with a JSON body."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body that answers the client."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


class PayloadError(InboundError, ValueError):
    """400: the body is malformed or breaks the format's rules."""

    status = 400
    code = "invalid_payload"


class AuthenticationError(InboundError):
    """401: credentials missing or wrong; the message never says which part."""

    status = 401
    code = "unauthorized"


class UnknownSourceError(InboundError, LookupError):
    """404: no source of that name is configured."""

    status = 404
    code = "unknown_source"


class ConflictError(InboundError):
    """409: an event id came back with different content."""

    status = 409
    code = "conflict"


class PayloadTooLargeError(InboundError):
    """413: the body is over the configured limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaError(InboundError):
    """415: the content type is not one the source's format reads."""

    status = 415
    code = "unsupported_media_type"


class DeliveryError(BridgeError):
    """An outbound webhook delivery failed."""


class AdminError(BridgeError):
    """An operator's request that cannot be done; the CLI and the admin API say why.

    ``errors`` maps a field path (``"url"``, ``"event_types.0"``) to its
    messages, so a client can point at the field to fix.
    """

    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, errors: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body of the error: code, message and field errors."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


class InvalidInputError(AdminError, ValueError):
    """422: a value is missing, malformed or refused; ``errors`` says where."""

    status = 422
    code = "invalid_input"


class AdminAuthError(AdminError):
    """401: the admin token is missing or wrong; the message never says which."""

    status = 401
    code = "unauthorized"


class NotFoundError(AdminError, LookupError):
    """404: no object of that kind has that id."""

    status = 404
    code = "not_found"


class AdminApiOffError(AdminError):
    """404: the admin API is off because no admin token is configured."""

    status = 404
    code = "admin_api_off"


class StateConflictError(AdminError):
    """409: the object exists but its state does not allow the operation."""

    status = 409
    code = "conflict"
