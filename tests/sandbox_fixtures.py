"""Fixtures for tests that talk HTTP to a real Open ELMS sandbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bridge.sandbox.server import RunningSandbox, running_sandbox

TIMEOUT_SECONDS = 10


class SandboxClient:
    """Call a running sandbox: the documented API with the token, or admin."""

    def __init__(self, running: RunningSandbox) -> None:
        self.running = running
        self.session = requests.Session()

    def api(
        self, method: str, path: str, *, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """Call ``base_url/path`` with ``Authorization: Basic <token>``."""
        headers = dict(kwargs.pop("headers", {}))
        headers.setdefault("Authorization", f"Basic {token or self.running.token}")
        url = f"{self.running.base_url}/{path}"
        return self.session.request(
            method, url, headers=headers, timeout=TIMEOUT_SECONDS, **kwargs
        )

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call ``admin_url/path``."""
        url = f"{self.running.admin_url}/{path}"
        return self.session.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Apply fault settings, failing the test if they are refused."""
        response = self.admin("PUT", "faults", json=changes)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


@pytest.fixture
def sandbox_server() -> Iterator[RunningSandbox]:
    """Yield a fresh, seeded sandbox on a free loopback port."""
    with running_sandbox() as running:
        yield running


@pytest.fixture
def sandbox_client(sandbox_server: RunningSandbox) -> Iterator[SandboxClient]:
    """Yield a client of a fresh sandbox."""
    client = SandboxClient(sandbox_server)
    yield client
    client.close()
