"""Serve a bare Flask endpoint with the bridge's gunicorn options.

It parses the JSON body and answers 204, nothing more: the floor that the
bridge's own endpoint is measured against in ``bench/ingest.py``.
"""

from __future__ import annotations

import argparse
from typing import Any

from flask import Flask, Response, request

from bridge.config import Settings
from bridge.web.server import GRACEFUL_TIMEOUT, REQUEST_TIMEOUT, GunicornServer


def create_bare_app() -> Flask:
    """Return an app whose one route parses JSON and answers 204."""
    app = Flask(__name__)

    @app.post("/hooks/<source>")
    def receive(source: str) -> Response:
        request.get_json(force=True)
        return Response(status=204)

    return app


class BareServer(GunicornServer):
    """The bridge's gunicorn application, serving the bare app instead."""

    def load(self) -> Flask:
        """Return the bare app; called in each worker, after the fork."""
        return create_bare_app()


def gunicorn_options(
    host: str, port: int, workers: int, loglevel: str
) -> dict[str, Any]:
    """Return the option set ``bridge.web.server.serve`` uses, key for key.

    Kept in step by hand: ``serve`` builds its dict inline, so it cannot be
    imported.
    """
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": REQUEST_TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": loglevel,
        "proc_name": "bridge-bench-bare",
        "control_socket_disable": True,
    }


def main() -> None:
    """Parse the command line and serve until told to stop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loglevel", default="info")
    args = parser.parse_args()

    options = gunicorn_options(args.host, args.port, args.workers, args.loglevel)
    BareServer(Settings(), options).run()


if __name__ == "__main__":
    main()
