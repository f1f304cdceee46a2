"""Serve a bare Flask endpoint with the bridge's gunicorn options.

It parses the JSON body and answers 204, nothing more: the floor that the
bridge's own endpoint is measured against in ``bench/ingest.py``.
"""

from __future__ import annotations

import argparse

from flask import Flask, Response, request

from bridge.config import load_settings
from bridge.web.server import GunicornServer, gunicorn_options


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


def main() -> None:
    """Parse the command line and serve until told to stop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    settings = load_settings()
    options = gunicorn_options(
        settings,
        host=args.host,
        port=args.port,
        workers=args.workers,
        name="bridge-bench-bare",
    )
    BareServer(settings, options).run()


if __name__ == "__main__":
    main()
