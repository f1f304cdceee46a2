"""Liveness endpoint: answers while the process can serve requests."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from bridge import __version__

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Return 200 with the version while the process is alive."""
    return jsonify(status="ok", version=__version__)
