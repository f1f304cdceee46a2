"""The shared metrics directory: a fresh one per process group, stale ones go."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bridge.metrics_dir import MULTIPROC_ENV, owner_pid, prepare, remove_stale
from tests.clitools import ROOT


@pytest.fixture
def restore_env():
    before = os.environ.get(MULTIPROC_ENV)
    yield
    if before is None:
        os.environ.pop(MULTIPROC_ENV, None)
    else:
        os.environ[MULTIPROC_ENV] = before


def finished_pid() -> int:
    """Return the pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    return child.pid


def test_prepare_makes_a_fresh_directory_named_for_role_and_pid(tmp_path, restore_env):
    mine = tmp_path / f"web-{os.getpid()}"
    mine.mkdir()
    (mine / "counter_1.db").write_bytes(b"old")

    made = prepare(tmp_path, "web")

    assert made == mine.resolve()
    assert list(made.iterdir()) == []
    assert os.environ[MULTIPROC_ENV] == str(made)


def test_directories_of_finished_processes_are_removed_live_ones_kept(tmp_path):
    gone = tmp_path / f"worker-{finished_pid()}"
    alive = tmp_path / f"web-{os.getpid()}"
    other = tmp_path / "notes"
    for directory in (gone, alive, other):
        directory.mkdir()
        (directory / "counter_9.db").write_bytes(b"x")

    removed = remove_stale(tmp_path)

    assert removed == [gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [alive.name, other.name]
    )


def test_owner_pid_reads_the_name_tail(tmp_path):
    (tmp_path / "worker-123").mkdir()
    (tmp_path / "web-x").mkdir()
    (tmp_path / "file-77").write_text("")

    assert owner_pid(tmp_path / "worker-123") == 123
    assert owner_pid(tmp_path / "web-x") is None
    assert owner_pid(tmp_path / "file-77") is None


def test_the_command_line_does_not_load_prometheus_client_before_prepare():
    # prometheus-client picks its value store when a value is first made;
    # serve and worker set the directory first, so loading the command line
    # itself must not pull the library in.
    code = "import sys, bridge.cli; print('prometheus_client' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip() == "False", result.stderr
