"""Find a source by name: the sources file first, then the database.

Sources added at run time (``python -m bridge sources add``) live in the
database; web workers re-read them after a short time so a new source
works without a restart. Adapters are built once per source definition.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridge.adapters import build_adapter
from bridge.errors import ConfigError, UnknownSourceError
from bridge.sources import Source, load_sources_file
from bridge.store import queries

if TYPE_CHECKING:
    from bridge.adapters.base import BaseAdapter
    from bridge.store.db import Store
    from bridge.store.models import SourceRow

logger = logging.getLogger(__name__)

STORED_SOURCES_TTL = 5.0


@dataclass(frozen=True)
class Channel:
    """A source with the adapter that reads its requests."""

    source: Source
    adapter: BaseAdapter


class SourceRegistry:
    """Look sources up by name; file sources win over stored ones."""

    def __init__(
        self,
        file_sources: list[Source],
        store: Store | None = None,
        ttl: float = STORED_SOURCES_TTL,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self._file = {
            s.name: Channel(s, build_adapter(s.format, s.options)) for s in file_sources
        }
        self._stored: dict[str, Channel] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | None, store: Store | None) -> SourceRegistry:
        """Return a registry of the sources in ``path`` (if any) and the store.

        Raises:
            ConfigError: listing every mistake in the file.
        """
        sources = []
        if path:
            sources = load_sources_file(path, adapter_factory=build_adapter)
        return cls(sources, store)

    def get(self, name: str) -> Channel:
        """Return the channel of a source name.

        Raises:
            UnknownSourceError: no source has that name.
        """
        channel = self._file.get(name) or self.stored().get(name)
        if channel is None:
            raise UnknownSourceError(f"no source named {name!r}")
        return channel

    def names(self) -> list[str]:
        """Return every source name, file sources first."""
        stored = [n for n in self.stored() if n not in self._file]
        return [*self._file, *sorted(stored)]

    def file_source_names(self) -> list[str]:
        """Return the names defined in the sources file."""
        return list(self._file)

    def stored(self) -> dict[str, Channel]:
        """Return the stored sources, re-read once the cache is older than ttl."""
        if self.store is None:
            return {}
        with self._lock:
            if time.monotonic() - self._loaded_at >= self.ttl:
                self._stored = self.load_stored()
                self._loaded_at = time.monotonic()
            return self._stored

    def load_stored(self) -> dict[str, Channel]:
        """Read the stored sources; a broken one is logged and left out."""
        assert self.store is not None  # noqa: S101 - checked by the caller
        with self.store.session() as session:
            rows = queries.list_sources(session)
        channels = {}
        for row in rows:
            try:
                source = Source.from_storage(stored_source_dict(row))
                adapter = build_adapter(source.format, source.options)
            except ConfigError as exc:
                logger.error("source %s in the database is invalid: %s", row.name, exc)
                continue
            channels[row.name] = Channel(source, adapter)
        return channels


def stored_source_dict(row: SourceRow) -> dict[str, Any]:
    """Return the dict a stored source row describes, as sources.py reads it."""
    data: dict[str, Any] = {
        "name": row.name,
        "format": row.format,
        "auth": dict(row.auth),
        "options": dict(row.options),
    }
    if row.max_body_bytes is not None:
        data["max_body_bytes"] = row.max_body_bytes
    return data
