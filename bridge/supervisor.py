"""Run several bridge processes together, as ``make run`` does.

Each part is a ``python -m bridge ...`` child. When one exits, or the
supervisor gets SIGINT or SIGTERM, every child is asked to stop (SIGTERM),
then killed if it has not stopped within the grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 15
POLL_SECONDS = 0.2


@dataclass
class Part:
    """One child process: a name, its bridge arguments and extra environment."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None


class Supervisor:
    """Start parts, wait until one ends or a signal comes, then stop them all."""

    def __init__(self, parts: list[Part]) -> None:
        self.parts = parts
        self.stopping = False

    def start(self) -> None:
        """Catch stop signals, then start every part as a child process.

        Signals are caught first, so a SIGTERM that arrives while the parts
        boot still stops them all instead of orphaning them.
        """
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.request_stop)
        for part in self.parts:
            env = {**os.environ, **part.env}
            command = [sys.executable, "-m", "bridge", *part.args]
            part.process = subprocess.Popen(command, env=env)  # noqa: S603
            logger.info("run: started %s (pid %d)", part.name, part.process.pid)

    def wait(self) -> int:
        """Block until a part exits or a stop signal arrives; return an exit code."""
        while not self.stopping:
            ended = self.first_ended()
            if ended is not None:
                code = ended.process.returncode if ended.process else None
                logger.error(
                    "run: %s exited with %s; stopping the rest", ended.name, code
                )
                self.stop()
                return 1
            time.sleep(POLL_SECONDS)
        self.stop()
        return 0

    def request_stop(self, signum: int, frame: Any) -> None:
        """Note a stop signal; the wait loop does the stopping."""
        self.stopping = True

    def first_ended(self) -> Part | None:
        """Return the first part whose process has exited."""
        for part in self.parts:
            if part.process is not None and part.process.poll() is not None:
                return part
        return None

    def stop(self) -> None:
        """Ask every live part to stop, then kill those that do not."""
        live = [p for p in self.parts if p.process and p.process.poll() is None]
        for part in live:
            part.process.terminate()  # type: ignore[union-attr]
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for part in live:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                part.process.wait(remaining)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                logger.warning("run: %s did not stop in time; killing it", part.name)
                part.process.kill()  # type: ignore[union-attr]
        logger.info("run: all parts stopped")


def wait_until_healthy(
    url: str, timeout: float = 30.0, stop: Callable[[], bool] = lambda: False
) -> bool:
    """Return True once ``url`` answers 200; False after ``timeout`` or on ``stop``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop():
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(POLL_SECONDS)
    return False
