"""Record that a worker is alive, for health checks and operators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bridge.store import dispatch_queries as dq

if TYPE_CHECKING:
    from bridge.store.db import Store

HEARTBEAT_PREFIX = "worker:"


def beat(store: Store, worker: str) -> None:
    """Store this worker's last sign of life."""
    now = datetime.now(UTC)
    with store.session() as session:
        dq.write_state(session, HEARTBEAT_PREFIX + worker, {"at": now.isoformat()}, now)
