"""The bridge's durable store: engine, tables, migrations and queries."""

from __future__ import annotations

from bridge.store.db import Store, create_store

__all__ = ["Store", "create_store"]
