"""An xAPI statements endpoint, so a player can use the bridge as its LRS.

Only the statement-receiving part of the LRS interface is served (xAPI
allows a tool to accept forwarded statements this way): POST one or many
(200 with the ids in order), PUT one with ``statementId`` (204). The
version header is required on requests and sent on every response.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from bridge.adapters.base import AdapterResult
from bridge.errors import PayloadError, UnknownSourceError
from bridge.intake import Delivery, Responder, receive
from bridge.web.access import note_intake
from bridge.web.context import bridge_context
from bridge.web.hooks import delivery_from_request

lrs = Blueprint("lrs", __name__, url_prefix="/xapi")

VERSION_HEADER = "X-Experience-API-Version"
SUPPORTED_VERSIONS = ("1.0.0", "1.0.1", "1.0.2", "1.0.3", "2.0.0")
STATEMENT_FORMATS = ("xapi", "cmi5", "h5p")


@lrs.after_request
def add_version_header(response: Response) -> Response:
    """Send the version header on every response, errors included."""
    asked = normalise_version(request.headers.get(VERSION_HEADER))
    response.headers[VERSION_HEADER] = asked if asked == "2.0.0" else "1.0.3"
    return response


@lrs.get("/about")
def about() -> Response:
    """Return the xAPI versions the endpoint accepts."""
    return jsonify(version=list(SUPPORTED_VERSIONS))


@lrs.post("/statements")
@lrs.post("/<source>/statements")
def post_statements(source: str | None = None) -> Response:
    """Store one statement or an array; answer 200 with the ids in order."""
    channel_name = checked_source(source)
    require_version()
    context = bridge_context()

    received = receive(
        context.store,
        context.registry,
        channel_name,
        delivery_from_request(),
        answer=ids_answer,
    )
    note_intake(received.outcome)
    return jsonify(received.outcome.response_body["ids"])


@lrs.put("/statements")
@lrs.put("/<source>/statements")
def put_statement(source: str | None = None) -> Response:
    """Store one statement under ``statementId``; answer 204."""
    channel_name = checked_source(source)
    require_version()
    context = bridge_context()
    delivery = with_statement_id(delivery_from_request(), request.args)

    received = receive(
        context.store, context.registry, channel_name, delivery, answer=ids_answer
    )
    note_intake(received.outcome)
    return Response(status=204, mimetype="application/json")


def checked_source(source: str | None) -> str:
    """Return the source serving this endpoint; it must read statements."""
    name = source or bridge_context().settings.lrs_source
    channel = bridge_context().registry.get(name)
    if channel.source.format not in STATEMENT_FORMATS:
        raise UnknownSourceError(f"source {name!r} does not receive xAPI statements")
    return name


def require_version() -> None:
    """Refuse a request without a supported version header."""
    given = request.headers.get(VERSION_HEADER)
    if given is None:
        raise PayloadError(
            f"the {VERSION_HEADER} header is required",
            errors=[{"path": f"headers.{VERSION_HEADER}", "message": "missing"}],
        )
    if normalise_version(given) not in SUPPORTED_VERSIONS:
        raise PayloadError(
            f"xAPI version {given!r} is not supported",
            errors=[
                {
                    "path": f"headers.{VERSION_HEADER}",
                    "message": f"one of {', '.join(SUPPORTED_VERSIONS)}",
                }
            ],
        )


def normalise_version(value: str | None) -> str | None:
    """Return ``1.0`` as ``1.0.0``; other values as given, stripped."""
    if value is None:
        return None
    value = value.strip()
    return "1.0.0" if value == "1.0" else value


def ids_answer(result: AdapterResult) -> Responder:
    """Return a responder whose stored answer is the statement ids in order."""

    def respond(request_id: str, event_ids: list[str]) -> tuple[int, dict[str, Any]]:
        return 200, {"ids": list(result.statement_ids)}

    return respond


def with_statement_id(delivery: Delivery, args: Any) -> Delivery:
    """Return the delivery with ``statementId`` set as the statement's id.

    xAPI: the body must be one statement, and an id in it must equal the
    parameter.
    """
    statement_id = args.get("statementId")
    if not statement_id:
        raise PayloadError(
            "PUT needs the statementId parameter",
            errors=[{"path": "query.statementId", "message": "missing"}],
        )
    try:
        statement = json.loads(delivery.body)
    except ValueError as exc:
        raise PayloadError(
            f"body is not valid JSON: {exc}",
            errors=[{"path": "body", "message": str(exc)}],
        ) from exc
    if not isinstance(statement, dict):
        raise PayloadError(
            "PUT takes one statement object",
            errors=[{"path": "body", "message": "must be an object"}],
        )
    if statement.get("id") not in (None, statement_id):
        raise PayloadError(
            "the statement's id differs from statementId",
            errors=[{"path": "id", "message": "must equal statementId"}],
        )
    statement["id"] = statement_id
    body = json.dumps(statement, separators=(",", ":")).encode()
    return dataclasses.replace(delivery, body=body)
