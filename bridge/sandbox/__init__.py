"""Stand in for Open ELMS: its documented REST API, faults and an admin API."""

from __future__ import annotations

from bridge.sandbox.app import SandboxConfig, create_app
from bridge.sandbox.faults import FaultSettings
from bridge.sandbox.server import RunningSandbox, running_sandbox, serve_forever

__all__ = [
    "FaultSettings",
    "RunningSandbox",
    "SandboxConfig",
    "create_app",
    "running_sandbox",
    "serve_forever",
]
