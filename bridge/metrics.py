"""Every Prometheus metric of the bridge, declared in one place.

Import this module only after :func:`bridge.metrics_dir.prepare` has run in
a process that should share its figures: prometheus-client picks its value
store (memory or files for multiprocess mode) from
``PROMETHEUS_MULTIPROC_DIR`` when a metric value is first made. Every
metric here has labels, so no value exists before its first use.

The outbox gauges are not here: ``bridge.web.metrics`` reads them from the
database at scrape time, so they are right whichever process answers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

from bridge.elms_contact import CONTACT

if TYPE_CHECKING:
    from bridge.elms import ElmsCall

# Inbound requests take milliseconds; Open ELMS and subscribers take longer.
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

INBOUND_REQUESTS = Counter(
    "bridge_inbound_requests",
    "Inbound event requests answered, by source and HTTP status.",
    ["source", "status"],
)
INGEST_SECONDS = Histogram(
    "bridge_ingest_duration_seconds",
    "Time to answer an inbound event request, by source.",
    ["source"],
    buckets=FAST_BUCKETS,
)
ELMS_CALLS = Counter(
    "bridge_elms_calls",
    "Open ELMS calls made, by endpoint and status (0: no answer).",
    ["endpoint", "status"],
)
ELMS_SECONDS = Histogram(
    "bridge_elms_call_duration_seconds",
    "Time an Open ELMS call took, retries included, by endpoint.",
    ["endpoint"],
    buckets=SLOW_BUCKETS,
)
POLL_CYCLES = Counter(
    "bridge_poll_cycles",
    "Poll passes run, by how they ended.",
    ["outcome"],
)
POLL_CALLS = Counter(
    "bridge_poll_calls",
    "Open ELMS calls made by poll passes, by how the pass ended.",
    ["outcome"],
)
POLL_SECONDS = Histogram(
    "bridge_poll_cycle_duration_seconds",
    "Time a poll pass took, by how it ended.",
    ["outcome"],
    buckets=SLOW_BUCKETS,
)
DELIVERIES = Counter(
    "bridge_deliveries",
    "Delivery attempts to subscribers, by subscription and outcome.",
    ["subscription", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "bridge_delivery_duration_seconds",
    "Time a delivery attempt took, by subscription.",
    ["subscription"],
    buckets=SLOW_BUCKETS,
)

# Words of the Open ELMS API's paths; any other segment is an id or a score.
_ENDPOINT_WORDS = frozenset({"users", "learning", "download", "start", "complete"})
_SCORE_AFTER = "complete"
_NUMBER = re.compile(r"\d+")


def endpoint_of(method: str, path: str) -> str:
    """Return a call's endpoint with ids replaced, e.g. ``PUT learning/{id}``.

    Labels must come from a small set, so ids and scores never reach them.
    """
    parts = []
    previous = ""
    for part in path.split("?", 1)[0].strip("/").split("/"):
        if part in _ENDPOINT_WORDS:
            parts.append(part)
        elif previous == _SCORE_AFTER and _NUMBER.fullmatch(part):
            parts.append("{score}")
        else:
            parts.append("{id}")
        previous = part
    return f"{method} {'/'.join(parts)}"


def observe_elms_call(call: ElmsCall) -> None:
    """Count one Open ELMS call and note whether Open ELMS answered well.

    Given to :class:`~bridge.elms.OpenElmsClient` as its observer in the
    worker. A 4xx other than 401/403 still shows Open ELMS is reachable.
    """
    endpoint = endpoint_of(call.method, call.path)
    ELMS_CALLS.labels(endpoint, str(call.status or 0)).inc()
    ELMS_SECONDS.labels(endpoint).observe(call.seconds)

    reachable = call.status is not None and call.status < 500
    if reachable and call.status not in (401, 403):
        CONTACT.succeeded()
    else:
        CONTACT.failed(f"{endpoint} got {call.status or 'no answer'}")
