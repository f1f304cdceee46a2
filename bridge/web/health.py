"""Liveness and readiness endpoints for load balancers and orchestrators.

``/healthz`` answers while the process can serve requests; ``/readyz``
says whether the deployment can take events and apply them (see
:mod:`bridge.readiness`), with a sentence for each check.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from bridge import __version__
from bridge.readiness import CHECK_NAMES, Limits, run_checks
from bridge.web.context import bridge_context

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Return 200 with the version while the process is alive."""
    return jsonify(status="ok", version=__version__)


@health.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Return 200 when every check passes, else 503 naming what failed.

    ``?check=database,migrations`` limits the answer to the checks named:
    a web pod's readiness probe may ask only what its own process needs to
    accept events, so a stopped worker does not take every web pod out.
    """
    wanted = [
        name.strip()
        for value in request.args.getlist("check")
        for name in value.split(",")
        if name.strip()
    ]
    unknown = sorted(set(wanted) - set(CHECK_NAMES))
    if unknown:
        message = (
            f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECK_NAMES)}"
        )
        errors = [{"path": "check", "message": message}]
        return jsonify(error="bad_request", message=message, errors=errors), 400

    context = bridge_context()
    settings = context.settings
    limits = Limits(settings.ready_heartbeat_max, settings.ready_elms_grace)
    checks = run_checks(context.store, limits, datetime.now(UTC))
    if wanted:
        checks = [check for check in checks if check.name in wanted]

    failed = [check.name for check in checks if not check.ok]
    body = {
        "status": "not_ready" if failed else "ready",
        "failed": failed,
        "checks": {check.name: check.to_dict() for check in checks},
    }
    return jsonify(body), 503 if failed else 200
