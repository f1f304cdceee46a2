"""What every admin API route shares: the bearer token check and JSON errors.

With no ``BRIDGE_ADMIN_TOKEN`` every route answers 404, as if the API did
not exist, rather than serving without a check. Every error answers with
the same body: ``{"error": code, "message": text, "errors": {field: [...]}}``,
where ``errors`` appears only for input mistakes (422).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from bridge.errors import AdminApiOffError, AdminAuthError, AdminError
from bridge.services.inputs import find_unstorable, invalid_from
from bridge.web.context import bridge_context

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
BEARER = "bearer"
# webargs files messages under the request part they came from; the field
# names of bodies, queries and paths never clash, so the part is left out.
LOCATIONS = ("json", "query", "view_args", "path", "form", "headers")


class ErrorSchema(Schema):
    """The body of every error answer."""

    error = fields.String(required=True, metadata={"description": "A stable code."})
    message = fields.String(required=True, metadata={"description": "What went wrong."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field path -> messages, for input mistakes."},
    )


def admin_blueprint(name: str, url_prefix: str, description: str) -> Blueprint:
    """Return a blueprint under /api/v1 that checks the token on every request."""
    blueprint = Blueprint(
        name, __name__, url_prefix=PREFIX + url_prefix, description=description
    )
    blueprint.before_request(require_admin_token)
    blueprint.before_request(refuse_unstorable_parameters)
    blueprint.register_error_handler(AdminError, answer_admin_error)
    blueprint.register_error_handler(HTTPException, answer_http_error)
    return blueprint


def require_admin_token() -> None:
    """Refuse the request unless it carries the admin token as a bearer token.

    Raises:
        AdminApiOffError: no admin token is configured.
        AdminAuthError: the token is missing or wrong.
    """
    expected = bridge_context().settings.admin_token
    if not expected:
        raise AdminApiOffError(
            "the admin API is off; set BRIDGE_ADMIN_TOKEN to turn it on"
        )

    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    matches = hmac.compare_digest(
        given.strip().encode("utf-8", "surrogatepass"), expected.encode("utf-8")
    )
    if scheme.lower() != BEARER or not matches:
        logger.warning("admin API %s %s: refused token", request.method, request.path)
        raise AdminAuthError("a valid bearer token is required")


def refuse_unstorable_parameters() -> None:
    """Refuse path and query values no database can look up (a NUL, say).

    Bodies are checked by their schemas; an id in the path never is, and
    PostgreSQL fails on a NUL in a query's parameters.

    Raises:
        InvalidInputError: naming each such parameter.
    """
    values = {name: "".join(request.args.getlist(name)) for name in request.args}
    values.update(
        (name, str(value)) for name, value in (request.view_args or {}).items()
    )
    errors = find_unstorable(values)
    if errors:
        raise invalid_from(errors)


def answer_admin_error(exc: AdminError) -> ResponseReturnValue:
    """Answer an operation's error with its status and JSON body."""
    headers = {}
    if isinstance(exc, AdminAuthError):
        headers["WWW-Authenticate"] = 'Bearer realm="bridge admin"'
    return jsonify(exc.to_dict()), exc.status, headers


def answer_http_error(exc: HTTPException) -> ResponseReturnValue:
    """Answer a framework error (bad JSON, failed arguments) in the same shape."""
    data: dict[str, Any] = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if messages is not None:
        # 422: the body or a parameter breaks its schema; 400: not JSON at all.
        body = invalid_from(strip_locations(messages)).to_dict()
        if exc.code == 400:
            body["error"] = "bad_request"
        return jsonify(body), exc.code or 422

    body = {
        "error": (exc.name or "error").lower().replace(" ", "_"),
        "message": exc.description or exc.name,
    }
    return jsonify(body), exc.code or 500


def strip_locations(messages: Any) -> Any:
    """Return webargs's messages with the request part level taken out."""
    if not isinstance(messages, dict):
        return messages
    merged: dict[str, Any] = {}
    for key, value in messages.items():
        if key in LOCATIONS and isinstance(value, dict):
            merged.update(value)
        elif key in LOCATIONS:
            merged["input"] = value
        else:
            merged[key] = value
    return merged
