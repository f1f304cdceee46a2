"""The admin API under /api/v1: bearer token, marshmallow schemas, OpenAPI 3.

The OpenAPI document at /api/v1/openapi.json is generated from the routes
and schemas by flask-smorest, so it cannot drift from what is served. The
routes only translate HTTP to :mod:`bridge.services`, which the CLI calls
too.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Api

from bridge import __version__
from bridge.errors import AdminError
from bridge.web.admin import (
    deliveries,
    events,
    mappings,
    sources,
    stats,
    subscriptions,
    watch,
)
from bridge.web.admin.guard import (
    PREFIX,
    ErrorSchema,
    answer_admin_error,
    answer_http_error,
    require_admin_token,
)

EXTENSION_KEY = "bridge-admin-api"
SECURITY_SCHEME = "bearerAuth"
DESCRIPTION = (
    "Operate the bridge: sources, mappings, watch scopes, inbound events, "
    "outbound subscriptions and deliveries, and figures. Every route needs "
    "`Authorization: Bearer <BRIDGE_ADMIN_TOKEN>`; without that setting the "
    "API is off and answers 404. Errors are JSON: `error` (a stable code), "
    "`message`, and for input mistakes (422) `errors`, field path -> messages."
)

RESOURCES = (sources, mappings, watch, events, subscriptions, deliveries, stats)


class AdminApi(Api):
    """flask-smorest's Api with the bridge's error body.

    Errors are answered by each admin blueprint's own handlers, so the app's
    other routes keep their own error handling; this class only documents
    the shape.
    """

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        """Leave the app's error handlers alone; the blueprints have theirs."""


def init_admin_api(app: Flask) -> AdminApi:
    """Register the admin API's routes and its OpenAPI document on ``app``."""
    app.config.update(
        API_TITLE="Open ELMS progress bridge admin API",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        API_SPEC_OPTIONS={
            "info": {"description": DESCRIPTION},
            "security": [{SECURITY_SCHEME: []}],
        },
    )
    api = AdminApi(app)
    api.spec.components.security_scheme(
        SECURITY_SCHEME, {"type": "http", "scheme": "bearer"}
    )
    for resource in RESOURCES:
        api.register_blueprint(resource.blueprint)

    app.register_blueprint(openapi_blueprint())
    app.extensions[EXTENSION_KEY] = api
    return api


def openapi_blueprint() -> Blueprint:
    """Return the blueprint serving the OpenAPI document, behind the token."""
    blueprint = Blueprint("admin_openapi", __name__, url_prefix=PREFIX)
    blueprint.before_request(require_admin_token)
    blueprint.register_error_handler(AdminError, answer_admin_error)
    blueprint.register_error_handler(404, answer_http_error)

    @blueprint.get("/openapi.json")
    def openapi_document() -> ResponseReturnValue:
        api: AdminApi = current_app.extensions[EXTENSION_KEY]
        document: dict[str, Any] = api.spec.to_dict()
        return jsonify(document)

    return blueprint
