"""``GET /metrics``: the bridge's figures in the Prometheus text format.

What one scrape holds (every process sharing the metrics directory, and
the outbox read from the database) is decided in
:mod:`bridge.metrics_collect`.
"""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.metrics_collect import build_registry
from bridge.web.context import bridge_context

metrics = Blueprint("metrics", __name__)


@metrics.get("/metrics")
def scrape() -> Response:
    """Return every figure in the Prometheus text format."""
    registry = build_registry(bridge_context().store)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
