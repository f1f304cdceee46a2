"""``POST /hooks/<source>``: the inbound webhook endpoint of every source."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from bridge.intake import Delivery, receive
from bridge.web.access import current_request_id, note_intake
from bridge.web.context import bridge_context

logger = logging.getLogger(__name__)

hooks = Blueprint("hooks", __name__)


def delivery_from_request() -> Delivery:
    """Return the parts of the current request that intake reads."""
    return Delivery(
        method=request.method,
        path=request.path,
        content_type=request.mimetype or "",
        headers=dict(request.headers),
        body=read_body(),
        query=request.args.to_dict(flat=True),
        request_id=current_request_id(),
    )


def read_body() -> bytes:
    """Return the request body; 413 when it is longer than the app's limit.

    A chunked body has no length to check up front, and the limit then
    only stops the reading: what is left must be looked for, or a body cut
    at the limit would pass for the whole of it.

    Raises:
        RequestEntityTooLarge: the body goes on past ``MAX_CONTENT_LENGTH``.
    """
    body = request.get_data(cache=True)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    chunked = request.content_length is None
    if chunked and limit is not None and len(body) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()
    return body


@hooks.post("/hooks/<source>")
def receive_hook(source: str) -> Response:
    """Store an inbound event request; answer 202 with the event ids."""
    context = bridge_context()
    received = receive(context.store, context.registry, source, delivery_from_request())
    outcome = received.outcome
    note_intake(outcome)
    response = jsonify(outcome.response_body)
    response.status_code = outcome.response_status
    if outcome.duplicate:
        response.headers["X-Bridge-Duplicate"] = "true"
    return response
