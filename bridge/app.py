"""Build the Flask application of the web process."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from bridge.config import Settings, load_settings
from bridge.errors import InboundError, PayloadTooLargeError
from bridge.registry import SourceRegistry
from bridge.store.db import Store, create_store
from bridge.web import access
from bridge.web.admin import init_admin_api
from bridge.web.context import EXTENSION_KEY, BridgeContext
from bridge.web.health import health
from bridge.web.hooks import hooks
from bridge.web.lrs import lrs
from bridge.web.metrics import metrics

logger = logging.getLogger(__name__)

STORE_RETRY_AFTER = 5  # seconds a sender is asked to wait when the database is away


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    registry: SourceRegistry | None = None,
) -> Flask:
    """Return the web application; settings default to the environment.

    Tests pass ``settings`` (and may pass a store) so they need not touch
    the environment. The database must be migrated already: ``serve`` does
    that once before the workers start.
    """
    settings = settings or load_settings()
    store = store or create_store(settings.database_url)
    registry = registry or SourceRegistry.from_file(settings.sources_file, store)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = BridgeContext(settings, store, registry)

    for blueprint in (health, hooks, lrs, metrics):
        app.register_blueprint(blueprint)
    access.install(app)
    init_admin_api(app)
    register_error_handlers(app)
    return app


def register_error_handlers(app: Flask) -> None:
    """Answer every error with a JSON body, and never leak a traceback."""

    @app.errorhandler(InboundError)
    def inbound_error(exc: InboundError) -> ResponseReturnValue:
        return jsonify(exc.to_dict()), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if exc.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            too_large = PayloadTooLargeError(f"body is over the {limit} byte limit")
            return jsonify(too_large.to_dict()), 413
        body: dict[str, Any] = {
            "error": (exc.name or "error").lower().replace(" ", "_"),
            "message": exc.description,
        }
        return jsonify(body), exc.code or 500

    @app.errorhandler(OperationalError)
    def store_unavailable(exc: OperationalError) -> ResponseReturnValue:
        # The database is down or gone: nothing was stored, and the sender
        # should try again, as it would after any 503.
        logger.error("database unavailable while serving a request: %s", exc.orig)
        message = "the database cannot be reached; nothing was stored, try again"
        body = {"error": "unavailable", "message": message}
        return jsonify(body), 503, {"Retry-After": str(STORE_RETRY_AFTER)}

    @app.errorhandler(RecursionError)
    def too_deep(exc: RecursionError) -> ResponseReturnValue:
        # A JSON body nested thousands deep exhausts the parser's recursion.
        message = "the request body is nested too deeply to read"
        body = {"error": "bad_request", "message": message}
        return jsonify(body), 400

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> ResponseReturnValue:
        logger.exception("unhandled error while serving a request")
        body = {"error": "internal_error", "message": "unexpected error; logged"}
        return jsonify(body), 500
