"""Run the sandbox over HTTP: in a background thread, or in the foreground.

Both use werkzeug's threaded server, so concurrent clients are served at
once and the sandbox's locks are exercised as they are in a demo.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from bridge.sandbox.app import (
    ADMIN_PREFIX,
    DEFAULT_SITE,
    DEFAULT_TOKEN,
    Sandbox,
    SandboxConfig,
    create_app,
    get_sandbox,
)
from bridge.sandbox.faults import FaultSettings

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_SECONDS = 10
# How often the serving loop checks for shutdown; tests stop a server each.
POLL_INTERVAL_SECONDS = 0.05


@dataclass(frozen=True)
class RunningSandbox:
    """Describe a sandbox being served: where it is and how to call it."""

    base_url: str
    admin_url: str
    token: str
    app: Flask

    @property
    def sandbox(self) -> Sandbox:
        """Return the live sandbox parts, for in-process inspection."""
        return get_sandbox(self.app)


class QuietRequestHandler(WSGIRequestHandler):
    """Skip werkzeug's access lines; the sandbox's call log keeps them."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing for a served request."""


class SandboxServer:
    """Serve a sandbox app on a werkzeug server in a daemon thread."""

    def __init__(self, app: Flask, host: str = LOOPBACK, port: int = 0) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=QuietRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
            name="openelms-sandbox",
            daemon=True,
        )

    @property
    def root_url(self) -> str:
        """Return ``http://host:port`` of the bound socket."""
        return build_root_url(self._server.host, self._server.server_port)

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wait for the thread, and close the data store."""
        self._server.shutdown()
        self._thread.join(STOP_TIMEOUT_SECONDS)
        self._server.server_close()
        get_sandbox(self.app).store.close()


def build_root_url(host: str, port: int) -> str:
    """Return ``http://host:port``, bracketing an IPv6 host."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def describe(root_url: str, app: Flask) -> RunningSandbox:
    """Return the URLs and token of a sandbox app served at root_url."""
    sandbox = get_sandbox(app)
    return RunningSandbox(
        base_url=root_url + sandbox.prefix,
        admin_url=root_url + ADMIN_PREFIX,
        token=sandbox.config.token,
        app=app,
    )


@contextmanager
def running_sandbox(
    *,
    token: str = DEFAULT_TOKEN,
    site: str = DEFAULT_SITE,
    db_path: str | None = None,
    faults: FaultSettings | None = None,
    seed_random: int | None = None,
) -> Iterator[RunningSandbox]:
    """Serve a sandbox on a free loopback port for the length of a block.

    Yields:
        The running sandbox's ``base_url``, ``admin_url`` and ``token``.
    """
    config = SandboxConfig(
        token=token,
        site=site,
        db_path=db_path,
        faults=faults or FaultSettings(),
        seed_random=seed_random,
    )
    server = SandboxServer(create_app(config))
    server.start()
    try:
        yield describe(server.root_url, server.app)
    finally:
        server.stop()


def serve_forever(
    config: SandboxConfig, host: str = LOOPBACK, port: int = 8081
) -> None:
    """Serve a sandbox in the foreground until interrupted."""
    app = create_app(config)
    server = make_server(host, port, app, threaded=True)
    running = describe(build_root_url(host, server.server_port), app)

    if not _is_loopback(host):
        logger.warning("sandbox on %s: its admin API has no authentication", host)
    logger.info("Open ELMS sandbox serving at %s", running.base_url)
    try:
        server.serve_forever()
    finally:
        running.sandbox.store.close()
        logger.info("Open ELMS sandbox stopped")


def _is_loopback(host: str) -> bool:
    """Tell whether host names a loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
