"""Serve the Flask app with gunicorn, configured in code from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

if TYPE_CHECKING:
    from flask import Flask

    from bridge.config import Settings

GRACEFUL_TIMEOUT = 20
REQUEST_TIMEOUT = 60


class GunicornServer(BaseApplication):
    """gunicorn application that builds the Flask app in each worker."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Copy our options into gunicorn's config."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Return the app; called in each worker, after the fork."""
        from bridge.app import create_app

        return create_app(self.settings)


def gunicorn_options(
    settings: Settings, *, host: str, port: int, workers: int, name: str = "bridge-web"
) -> dict[str, Any]:
    """Return the gunicorn options of the web process (benchmarks reuse them)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": settings.web_threads,
        "timeout": REQUEST_TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        # bridge.web.access logs each request once, with its request id.
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "proc_name": name,
        # One control socket path per user would clash between instances.
        "control_socket_disable": True,
        "child_exit": forget_worker_metrics,
    }


def forget_worker_metrics(server: Any, worker: Any) -> None:
    """Drop an exited worker's live gauge files (gunicorn's child_exit hook).

    Its counters stay: figures a dead worker counted still happened.
    """
    from bridge.metrics_dir import mark_worker_dead

    mark_worker_dead(worker.pid)


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Run gunicorn in the foreground until it is told to stop."""
    options = gunicorn_options(settings, host=host, port=port, workers=workers)
    GunicornServer(settings, options).run()
