"""Record that a worker is alive, and how its Open ELMS calls went.

Both are read by ``/readyz`` in the web process, through the shared state
table; the Open ELMS record rides along with the heartbeat so a busy
worker writes it every few seconds, not once per call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bridge.elms_contact import CONTACT, CONTACT_KEY, ElmsContact, merge
from bridge.store import dispatch_queries as dq

if TYPE_CHECKING:
    from bridge.store.db import Store

HEARTBEAT_PREFIX = "worker:"


def beat(store: Store, worker: str, contact: ElmsContact = CONTACT) -> None:
    """Store this worker's last sign of life and its Open ELMS record."""
    now = datetime.now(UTC)
    mine = contact.snapshot()
    with store.session() as session:
        dq.write_state(session, HEARTBEAT_PREFIX + worker, {"at": now.isoformat()}, now)
        if mine is not None:
            stored = dq.read_state(session, CONTACT_KEY)
            dq.write_state(session, CONTACT_KEY, merge(stored, mine), now)
