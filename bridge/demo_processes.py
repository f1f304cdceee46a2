"""Start the demo's child processes, watch them, and stop them all at the end.

Each child is a ``python -m bridge ...`` process whose output goes to a log
file in the demo's folder; when one dies, the error quotes the end of its
log. Unlike :class:`bridge.supervisor.Supervisor`, nothing here takes over
the signal handlers for good or prints to the demo's own output.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.errors import BridgeError
from bridge.supervisor import wait_until_healthy

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_LINES = 20


class DemoError(BridgeError):
    """The demo could not run: a part did not start, or it was stopped."""


@dataclass
class Child:
    """One child process and the file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Return everything the child has written so far."""
        return self.log.read_text(errors="replace")

    def tail(self) -> str:
        """Return the last lines of the child's output."""
        return "\n".join(self.output().splitlines()[-LOG_TAIL_LINES:])


class ChildProcesses:
    """The bridge processes of one demo run, logging into one folder."""

    def __init__(self, workdir: Path, cwd: Path) -> None:
        self.workdir = workdir
        self.cwd = cwd
        self.children: list[Child] = []

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        """Start ``python -m bridge ARGS`` with its output in ``NAME.log``."""
        log = self.workdir / f"{name}.log"
        command = [sys.executable, "-m", "bridge", *args]
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and args
                command, cwd=self.cwd, env=env, stdout=out, stderr=out
            )
        self.children.append(Child(name, process, log))
        logger.info("demo: started %s (pid %d)", name, process.pid)

    def wait_ready(self, name: str, url: str) -> None:
        """Wait until ``url`` answers 200.

        Raises:
            DemoError: a child died meanwhile, or the time ran out.
        """
        if wait_until_healthy(url, START_TIMEOUT, stop=self.any_died):
            return
        self.check_alive()
        raise DemoError(f"{name} did not answer {url} within {START_TIMEOUT:g}s")

    def any_died(self) -> bool:
        """Tell whether a child process has exited."""
        return any(child.process.poll() is not None for child in self.children)

    def check_alive(self) -> None:
        """Raise, quoting the end of its log, if a child process has exited.

        Raises:
            DemoError: naming the child and its exit code.
        """
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise DemoError(
                    f"{child.name} exited with {code}; its last lines:\n{child.tail()}"
                )

    def stop(self) -> None:
        """Ask every live child to stop, then kill those that do not in time."""
        live = [c for c in self.children if c.process.poll() is None]
        for child in live:
            child.process.terminate()

        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in live:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("demo: %s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()
        logger.info("demo: all parts stopped")


def free_port() -> int:
    """Return a TCP port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@contextmanager
def signals_stop_the_demo() -> Iterator[None]:
    """Turn SIGTERM into a DemoError while the demo runs, so cleanup still runs.

    Ctrl-C already raises KeyboardInterrupt; both unwind through the
    caller's ``finally``, which stops the child processes. The previous
    handler is back in place before that cleanup starts.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise DemoError(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
