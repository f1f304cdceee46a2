"""The demo's subscriber: what each sample announced downstream, and proof it arrived.

The demo subscribes a receiver of its own to every event type before the
worker starts. The receiver verifies each delivery's signature with the
``standardwebhooks`` package and counts it by webhook id, so the demo can
show, per sample, the outbound events the bridge wrote and whether each
reached the subscriber exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from werkzeug.serving import make_server

from bridge.outbound_types import ANY_EVENT_TYPE, EventType
from bridge.receiver import QuietRequestHandler, create_app
from bridge.signing import new_secret
from bridge.store import subscription_queries
from bridge.store.outbound_models import DeliveryModel, OutboundEventModel

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.orm import Session

    from bridge.store.db import Store

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
RECEIVER_NOTE = "the demo's receiver"
FAILED_TYPE = EventType.EVENT_FAILED.value


@dataclass(frozen=True)
class OutboundOutcome:
    """One outbound event a sample caused, and how often the receiver verified it."""

    id: str
    type: str
    user: str
    learning: str
    status: str
    score: float | None
    cause: str
    received: int

    @classmethod
    def from_row(cls, row: OutboundEventModel, received: int) -> OutboundOutcome:
        """Return the outcome of a stored outbound event."""
        payload = row.payload or {}
        return cls(
            id=row.id,
            type=row.type,
            user=_id_of(payload.get("user"), row.user_id),
            learning=_id_of(payload.get("learning"), row.learning_id),
            status=str(payload.get("status") or "-"),
            score=payload.get("score"),
            cause=str(payload.get("cause") or "-"),
            received=received,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "id": self.id,
            "type": self.type,
            "user": self.user,
            "learning": self.learning,
            "status": self.status,
            "score": self.score,
            "cause": self.cause,
            "received": self.received,
        }


class DemoReceiver:
    """A verifying subscriber on a free loopback port, served from a thread."""

    def __init__(self) -> None:
        self.secret = new_secret()
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        app = create_app(self.secret, on_delivery=self.count)
        self.server = make_server(
            LOOPBACK, 0, app, threaded=True, request_handler=QuietRequestHandler
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="demo-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        """Return the URL the subscription posts to."""
        return f"http://{LOOPBACK}:{self.server.server_port}/"

    def start(self) -> None:
        """Start serving."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def count(self, webhook_id: str, payload: Any) -> None:
        """Count one verified delivery."""
        with self.lock:
            self.seen[webhook_id] += 1

    def received(self, webhook_id: str) -> int:
        """Return how many verified deliveries carried this webhook id."""
        with self.lock:
            return self.seen[webhook_id]

    def subscribe(self, store: Store) -> str:
        """Subscribe this receiver to every event type; return the subscription id."""
        with store.session() as session:
            row = subscription_queries.add_subscription(
                session,
                url=self.url,
                event_types=[ANY_EVENT_TYPE],
                description=RECEIVER_NOTE,
                secret=self.secret,
            )
        logger.info("demo: receiver at %s (subscription %s)", self.url, row.id)
        return row.id


def wait_delivered(store: Store, timeout: float, poll_seconds: float = 0.05) -> bool:
    """Wait until no delivery is pending; return False if some still are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.session(write=False) as session:
            pending = session.scalar(
                select(func.count()).where(DeliveryModel.status == "pending")
            )
        if not pending:
            return True
        time.sleep(poll_seconds)
    return False


def outbound_of(
    session: Session, inbound_ids: Iterable[str], receiver: DemoReceiver
) -> list[OutboundOutcome]:
    """Return the outbound events the given inbound events caused, oldest first."""
    ids = list(inbound_ids)
    if not ids:
        return []
    query = (
        select(OutboundEventModel)
        .where(OutboundEventModel.inbound_event_id.in_(ids))
        .order_by(OutboundEventModel.created_at, OutboundEventModel.id)
    )
    return [
        OutboundOutcome.from_row(row, receiver.received(row.id))
        for row in session.scalars(query)
    ]


def outbound_problems(outbound: list[OutboundOutcome], failed_events: int) -> list[str]:
    """Return what is wrong with one sample's outbound events.

    Each must reach the subscriber exactly once, and each inbound event that
    ended failed or unresolved must be announced as ``bridge.event_failed``.
    """
    problems = [
        f"outbound {item.type} {item.id} received {item.received} times, expected 1"
        for item in outbound
        if item.received != 1
    ]
    announced = sum(1 for item in outbound if item.type == FAILED_TYPE)
    if announced != failed_events:
        problems.append(f"{announced} {FAILED_TYPE} events, expected {failed_events}")
    return problems


def _id_of(described: Any, fallback: str | None) -> str:
    """Return the id of a payload's user or learning, else the row's column."""
    if isinstance(described, dict) and described.get("id") is not None:
        return str(described["id"])
    return fallback or "-"
