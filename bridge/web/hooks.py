"""``POST /hooks/<source>``: the inbound webhook endpoint of every source."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

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
        body=request.get_data(cache=True),
        query=request.args.to_dict(flat=True),
        request_id=current_request_id(),
    )


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
