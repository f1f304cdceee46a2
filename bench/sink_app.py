"""Serve a webhook sink for ``bench/deliver.py``: 204 at once, or after a wait.

``POST /fast/<name>`` answers 204 as soon as the body is read and
``POST /slow/<name>`` after ``--slow-seconds``. No signature is checked:
the sink stands for a subscriber that costs nothing, so the figures are
the sender's. ``GET /counts`` returns how many POSTs each path got, so the
benchmark can check that nothing arrived twice.

It runs under gunicorn, one ``gthread`` worker (the counts live in that
process), with threads enough for every connection the deliverer may hold
open at once plus the slow answers.
"""

from __future__ import annotations

import argparse
import collections
import threading
import time
from typing import Any

from flask import Flask, Response, jsonify, request
from gunicorn.app.base import BaseApplication

DEFAULT_THREADS = 32
DEFAULT_SLOW_SECONDS = 2.0


def create_sink_app(slow_seconds: float) -> Flask:
    """Return an app that counts POSTs per path and answers 204."""
    app = Flask(__name__)
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def count() -> None:
        request.get_data()
        with lock:
            counts[request.path] += 1

    @app.post("/fast/<name>")
    def fast(name: str) -> Response:
        count()
        return Response(status=204)

    @app.post("/slow/<name>")
    def slow(name: str) -> Response:
        time.sleep(slow_seconds)
        count()
        return Response(status=204)

    @app.get("/counts")
    def show_counts() -> Response:
        with lock:
            return jsonify(dict(counts))

    return app


class SinkServer(BaseApplication):
    """A gunicorn application serving the sink app with given options."""

    def __init__(self, options: dict[str, Any], slow_seconds: float) -> None:
        self.options = options
        self.slow_seconds = slow_seconds
        super().__init__()

    def load_config(self) -> None:
        """Copy the options into gunicorn's config."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Return the sink app; called in the worker, after the fork."""
        return create_sink_app(self.slow_seconds)


def main() -> None:
    """Parse the command line and serve until told to stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--slow-seconds", type=float, default=DEFAULT_SLOW_SECONDS)
    args = parser.parse_args()

    options = {
        "bind": f"{args.host}:{args.port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": args.threads,
        "timeout": 30,
        "keepalive": 30,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "bridge-bench-sink",
        "control_socket_disable": True,
    }
    SinkServer(options, args.slow_seconds).run()


if __name__ == "__main__":
    main()
