"""Run ``python -m bridge`` as a user would: a child process, a clean env."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """Return this environment without BRIDGE_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(extra)
    return env


def bridge(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one bridge command from the repository root; capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Return the lines the command printed as errors (log lines left out)."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def wait_for(url: str, timeout: float = 30) -> None:
    """Wait until ``url`` answers at all, or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout}s")
