"""The shared metrics directory: where each process group keeps its figures.

prometheus-client's multiprocess mode keeps each process's values in files
under ``PROMETHEUS_MULTIPROC_DIR``. Under ``BRIDGE_METRICS_DIR`` (the root)
every process group that starts (``serve``: the gunicorn master and its
workers; ``worker``) gets a fresh subdirectory of its own, named for its
role and pid, so a group's start never wipes another's live files. The web
process's ``/metrics`` reads every subdirectory, which is how the worker's
Open ELMS and delivery figures appear there when both share the root on one
machine. Subdirectories of groups that are gone are removed at the next
start.

This module must not import prometheus-client: the variable has to be set
before any metric value is made.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(root: str | Path, role: str) -> Path:
    """Make this process group's fresh directory and point prometheus at it.

    Call it first thing in ``serve`` and ``worker``: the gunicorn workers
    inherit the variable from the master.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    remove_stale(root)

    mine = root / f"{role}-{os.getpid()}"
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir()
    os.environ[MULTIPROC_ENV] = str(mine)

    if "prometheus_client" in sys.modules:
        # Values made before now live in memory and miss the shared files.
        logger.warning(
            "metrics: prometheus_client was imported before %s was set", MULTIPROC_ENV
        )
    logger.info("metrics: %s shares its figures under %s", role, mine)
    return mine


def remove_stale(root: Path) -> list[Path]:
    """Remove the subdirectories whose process is gone; return them."""
    removed = []
    for child in root.iterdir():
        pid = owner_pid(child)
        if pid is None or is_alive(pid):
            continue
        shutil.rmtree(child, ignore_errors=True)
        removed.append(child)
    return removed


def owner_pid(path: Path) -> int | None:
    """Return the pid in a ``<role>-<pid>`` directory name, or None."""
    if not path.is_dir():
        return None
    _, _, tail = path.name.rpartition("-")
    return int(tail) if tail.isdigit() else None


def is_alive(pid: int) -> bool:
    """Say whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def shared_root() -> Path | None:
    """Return the root of the shared directories, or None outside that mode."""
    mine = os.environ.get(MULTIPROC_ENV)
    return Path(mine).parent if mine else None


def mark_worker_dead(pid: int) -> None:
    """Drop a finished gunicorn worker's live gauge files (gunicorn hook)."""
    from prometheus_client import multiprocess

    mine = os.environ.get(MULTIPROC_ENV)
    if mine:
        multiprocess.mark_process_dead(pid, mine)
