"""Request ids, the one log line per request, and the inbound figures.

Every response carries ``X-Request-ID``: the client's own, when it is a
plain token of sane length, or one made here. The id goes into the
request's log line together with the stored event ids, and (through the
intake row) into the worker's lines for the Open ELMS call and the
deliveries, so one event can be followed from its POST to the end.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING

from flask import Flask, g, request

from bridge import metrics
from bridge.errors import InboundError
from bridge.web.context import bridge_context

if TYPE_CHECKING:
    from flask import Response

    from bridge.store.models import IntakeOutcome

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and a few marks; nothing that could forge or split a line.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
INBOUND_BLUEPRINTS = frozenset({"hooks", "lrs"})
INBOUND_METHODS = frozenset({"POST", "PUT"})  # not GET /xapi/about
UNKNOWN_SOURCE = "unknown"
# Probes poll these; a line for each would drown the rest at INFO.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def install(app: Flask) -> None:
    """Give every request an id, and log and count it when it is answered."""
    app.before_request(start_request)
    app.after_request(finish_request)


def start_request() -> None:
    """Note the start time and settle the request's id."""
    g.started = time.perf_counter()
    g.request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))


def accepted_request_id(given: str | None) -> str:
    """Return the client's id if it is a sane token, else a new one."""
    if given is not None and REQUEST_ID_PATTERN.fullmatch(given):
        return given
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """Return the id of the request being served, if any."""
    return g.get("request_id")


def note_intake(outcome: IntakeOutcome) -> None:
    """Keep the stored request's ids for the request's log line."""
    g.intake_id = outcome.request_id
    g.event_ids = list(outcome.event_ids)
    g.stored = "repeated" if outcome.duplicate else f"{len(outcome.new_event_ids)} new"


def finish_request(response: Response) -> Response:
    """Echo the id, log the request's line, count it if it was inbound."""
    request_id = g.get("request_id") or accepted_request_id(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    seconds = time.perf_counter() - g.get("started", time.perf_counter())

    source = inbound_source()
    if source is not None:
        metrics.INBOUND_REQUESTS.labels(source, str(response.status_code)).inc()
        metrics.INGEST_SECONDS.labels(source).observe(seconds)

    log_request(request_id, source, response.status_code, seconds)
    return response


def inbound_source() -> str | None:
    """Return the source label of an inbound request; None for other routes.

    A name no source has is labelled ``unknown``: clients choose the path,
    and a label per made-up name would grow without end.
    """
    if request.blueprint not in INBOUND_BLUEPRINTS:
        return None
    if request.method not in INBOUND_METHODS:
        return None
    context = bridge_context()
    args = request.view_args or {}
    name = args.get("source") or context.settings.lrs_source
    try:
        context.registry.get(name)
    except InboundError:
        return UNKNOWN_SOURCE
    return str(name)


def log_request(
    request_id: str, source: str | None, status: int, seconds: float
) -> None:
    """Log the request's one line: who, what, answer, time and ids."""
    event_ids = g.get("event_ids", [])
    level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
    logger.log(
        level,
        "request %s: %s %s from %s -> %d in %.1f ms; intake %s (%s); events %s",
        request_id,
        request.method,
        request.path,
        source or "-",
        status,
        seconds * 1000,
        g.get("intake_id", "-"),
        g.get("stored", "nothing stored"),
        ",".join(event_ids) or "-",
        extra={
            "request_id": request_id,
            "source": source,
            "status": status,
            "event_ids": event_ids,
        },
    )
