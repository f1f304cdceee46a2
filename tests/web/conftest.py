"""A running bridge web app on loopback, on a fresh SQLite file per test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.app import create_app
from bridge.config import Settings
from bridge.store.db import create_store
from bridge.store.migrate import upgrade
from tests.servers import serve_wsgi

SOURCES: list[dict[str, Any]] = [
    {"name": "open-xapi", "format": "xapi", "auth": {"type": "none"}},
    {
        "name": "lrs",
        "format": "xapi",
        "auth": {"type": "basic", "username": "player", "password": "pw-lrs"},
    },
    {
        "name": "signed",
        "format": "xapi",
        "auth": {"type": "hmac", "secret": "hmac-secret", "prefix": "sha256=",
                 "timestamp_header": "X-Timestamp"},
    },
    {
        "name": "cloud",
        "format": "scorm-cloud",
        "auth": {"type": "scorm-cloud-form", "username": "cloud",
                 "password": "pw-cloud"},
    },
    {"name": "runtime", "format": "scorm-runtime", "auth": {"type": "none"}},
    {"name": "tiny", "format": "xapi", "auth": {"type": "none"},
     "max_body_bytes": 2048},
]  # fmt: skip


@dataclass(frozen=True)
class RunningBridge:
    """A bridge web app served on loopback, and its store."""

    url: str
    store: Any
    settings: Settings


def write_sources(path: Path, sources: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"sources": sources}))
    return path


@pytest.fixture
def bridge_server(tmp_path):
    """Yield a running bridge with the test sources, on a fresh database."""
    database_url = f"sqlite:///{tmp_path}/bridge.db"
    sources_file = write_sources(tmp_path / "sources.yaml", SOURCES)
    settings = Settings(database_url=database_url, sources_file=str(sources_file))
    upgrade(database_url)
    store = create_store(database_url)
    app = create_app(settings, store=store)
    with serve_wsgi(app) as served:
        yield RunningBridge(served.url, store, settings)
    store.dispose()
