"""A local webhook receiver: verify each delivery and log one line about it.

``make run`` starts it next to the sandbox and subscribes it to every event
type, so a developer sees what a subscriber of the bridge would get. It
checks each POST with the ``standardwebhooks`` package and answers 204 when
the signature holds, 401 when it does not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug.serving import WSGIRequestHandler, make_server

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8082
MISSING = "-"


class QuietRequestHandler(WSGIRequestHandler):
    """Skip werkzeug's access lines; the receiver logs each delivery itself."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing for a served request."""


OnDelivery = Callable[[str, Any], None]


def create_app(secret: str, on_delivery: OnDelivery | None = None) -> Flask:
    """Return a Flask app that verifies and logs deliveries signed with secret.

    ``on_delivery`` (the demo's tally) is called with the webhook id and
    payload of each delivery whose signature holds.
    """
    webhook = Webhook(secret)
    app = Flask(__name__)

    @app.post("/")
    def receive() -> Response:
        """Verify one delivery, log it, and answer 204 (or 401 if forged)."""
        webhook_id = request.headers.get("webhook-id", MISSING)
        try:
            payload = webhook.verify(request.get_data(), dict(request.headers))
        except (WebhookVerificationError, ValueError):
            logger.warning(
                "receiver: %s rejected: signature does not verify", webhook_id
            )
            return Response(status=401)

        logger.info("receiver: %s %s (signature ok)", webhook_id, describe(payload))
        if on_delivery is not None:
            on_delivery(webhook_id, payload)
        return Response(status=204)

    return app


def describe(payload: Any) -> str:
    """Return the type, user, learning, status, score and cause of a payload."""
    fields = payload if isinstance(payload, dict) else {}
    return (
        f"{_text(fields.get('type'))} user={_id_of(fields.get('user'))}"
        f" learning={_id_of(fields.get('learning'))}"
        f" status={_text(fields.get('status'))} score={_text(fields.get('score'))}"
        f" cause={_text(fields.get('cause'))}"
    )


def serve_forever(secret: str, port: int = DEFAULT_PORT) -> None:
    """Serve the receiver on loopback in the foreground until interrupted."""
    server = make_server(
        LOOPBACK,
        port,
        create_app(secret),
        threaded=True,
        request_handler=QuietRequestHandler,
    )
    logger.info("receiver: listening at http://%s:%d/", LOOPBACK, server.server_port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        logger.info("receiver: stopped")


def _id_of(part: Any) -> str:
    """Return the ``id`` of a payload's user or learning object, or ``-``."""
    return _text(part.get("id")) if isinstance(part, dict) else MISSING


def _text(value: Any) -> str:
    """Return a payload value as log text; ``-`` for a missing one."""
    return MISSING if value is None else str(value)
