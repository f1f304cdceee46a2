"""The per-process objects the web routes share: settings, store, sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.registry import SourceRegistry
    from bridge.store.db import Store

EXTENSION_KEY = "bridge"


@dataclass(frozen=True)
class BridgeContext:
    """What a request handler needs beyond the request itself."""

    settings: Settings
    store: Store
    registry: SourceRegistry


def bridge_context() -> BridgeContext:
    """Return the context of the running app."""
    context: BridgeContext = current_app.extensions[EXTENSION_KEY]
    return context
