"""Shared fixtures: loopback servers started for real, per test."""

from __future__ import annotations

import pytest

from bridge.sandbox.server import running_sandbox


@pytest.fixture
def sandbox():
    """Yield a fresh Open ELMS sandbox on a free loopback port."""
    with running_sandbox() as server:
        yield server
