"""Serve WSGI apps on loopback for tests: real sockets, real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """Keep werkzeug's access lines out of test output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing."""


@dataclass(frozen=True)
class Served:
    """Where a served app answers."""

    url: str
    app: Any


@contextmanager
def serve_wsgi(app: Any) -> Iterator[Served]:
    """Serve ``app`` on a free 127.0.0.1 port in a thread until the block ends."""
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
