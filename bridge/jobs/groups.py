"""Who is in an Open ELMS user group, for subscriptions filtered by group.

Membership lives in Open ELMS, not in the bridge, so the deliverer asks
for it (one ``GET users/?group_id=...`` per group) when it is about to send
an event to a group-filtered subscription. Answers are kept for a while:
a busy subscriber would otherwise cost one call per event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.elms import OpenElmsClient

logger = logging.getLogger(__name__)

DEFAULT_TTL = 300.0


class GroupMembership:
    """Cached answers to "is this user in that group?"."""

    def __init__(
        self,
        client: OpenElmsClient,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self.known: dict[str, tuple[float, frozenset[str]]] = {}
        self.lock = threading.Lock()

    def contains(self, group_id: str, user_id: str) -> bool:
        """Tell whether a user belongs to a group, as Open ELMS lists it now.

        Raises:
            ElmsError: Open ELMS could not be asked; the caller tries later.
        """
        return str(user_id) in self.members(group_id)

    def members(self, group_id: str) -> frozenset[str]:
        """Return the ids of a group's users, from the cache while it is fresh."""
        now = self.clock()
        with self.lock:
            cached = self.known.get(group_id)
        if cached is not None and cached[0] > now:
            return cached[1]

        users = self.client.search_users(group_id=group_id)
        members = frozenset(str(user["id"]) for user in users if "id" in user)
        with self.lock:
            self.known[group_id] = (now + self.ttl, members)
        logger.info(
            "group %s: %d member(s) read from Open ELMS", group_id, len(members)
        )
        return members
