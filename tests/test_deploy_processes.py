"""Run what can run here: gunicorn with deploy/gunicorn.conf.py, systemd verify."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.clitools import bridge, clean_env, free_port, wait_for
from tests.deployfiles import GUNICORN_CONF, ROOT, SYSTEMD_DIR

APP_SPEC = "bridge.app:create_app()"
INSTALL_DIR = "/opt/open-elms-bridge"


def start_gunicorn(env: dict[str, str]) -> subprocess.Popen[str]:
    """Start gunicorn as the docs say, from the repository root."""
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), APP_SPEC],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    """Send SIGTERM, wait for the exit, and return everything it printed."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return output


@pytest.fixture
def migrated_env(tmp_path: Path) -> dict[str, str]:
    """Return an environment with a migrated SQLite database and a free port."""
    env = clean_env(
        BRIDGE_DATABASE_URL=f"sqlite:///{tmp_path / 'bridge.db'}",
        BRIDGE_PORT=str(free_port()),
        BRIDGE_METRICS_DIR=str(tmp_path / "metrics"),
    )
    result = bridge("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    return env


def expected_auto_workers() -> int:
    """Return 2 x usable CPUs + 1, capped at 12, as the config promises."""
    cpus = len(os.sched_getaffinity(0))
    cpu_max = Path("/sys/fs/cgroup/cpu.max")
    if cpu_max.exists():
        quota, period = cpu_max.read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    return min(2 * cpus + 1, 12)


def test_gunicorn_config_serves_healthz_and_stops_gracefully(
    migrated_env: dict[str, str],
) -> None:
    base = f"http://127.0.0.1:{migrated_env['BRIDGE_PORT']}"
    process = start_gunicorn(migrated_env)
    try:
        wait_for(f"{base}/healthz")
        answer = requests.get(
            f"{base}/healthz?probe=1", headers={"X-Request-ID": "req-7f3a"}, timeout=5
        )
        unnamed = requests.get(f"{base}/readyz", timeout=5)
    finally:
        output = stop(process)

    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert process.returncode == 0, output
    assert "Handling signal: term" in output
    assert "Shutting down: Master" in output
    # The last /healthz line is ours; wait_for's come before it.
    access_line = [line for line in output.splitlines() if "GET /healthz" in line][-1]
    assert "request_id=req-7f3a" in access_line
    assert "probe=1" not in access_line
    made_id = unnamed.headers["X-Request-ID"]
    assert '"GET /readyz HTTP/1.1" 503' in output
    assert f"request_id={made_id}" in output
    assert output.count("Booting worker") == expected_auto_workers()


def test_gunicorn_config_takes_workers_and_threads_from_settings(
    migrated_env: dict[str, str],
) -> None:
    env = {**migrated_env, "BRIDGE_WEB_WORKERS": "1", "BRIDGE_WEB_THREADS": "2"}
    process = start_gunicorn(env)
    try:
        wait_for(f"http://127.0.0.1:{env['BRIDGE_PORT']}/healthz")
    finally:
        output = stop(process)

    assert output.count("Booting worker") == 1
    assert "Using worker: gthread" in output
    assert process.returncode == 0, output


def test_gunicorn_config_refuses_bad_settings_with_one_line_each(
    tmp_path: Path,
) -> None:
    env = clean_env(BRIDGE_PORT="eighty", BRIDGE_LOG_LEVEL="LOUD")
    process = start_gunicorn(env)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 2
    assert "config error: BRIDGE_PORT: must be a whole number" in output
    assert "config error: BRIDGE_LOG_LEVEL: must be one of" in output


def installed_copy(unit: Path, target: Path) -> Path:
    """Write ``unit`` with its install paths pointed at this checkout.

    ``systemd-analyze verify`` fails on an ExecStart binary that does not
    exist, and nothing is installed under /opt here; the venv that runs the
    tests has the same python and gunicorn the unit names.
    """
    venv_bin = Path(sys.executable).parent
    text = unit.read_text()
    text = text.replace(f"{INSTALL_DIR}/.venv/bin", str(venv_bin))
    text = text.replace(INSTALL_DIR, str(ROOT))
    copy = target / unit.name
    copy.write_text(text)
    return copy


@pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed"
)
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    units = sorted(SYSTEMD_DIR.glob("*.service"))
    copies = [installed_copy(unit, tmp_path) for unit in units]
    assert (Path(sys.executable).parent / "gunicorn").exists()

    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, copies)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert [unit.name for unit in units] == [
        "bridge-web.service",
        "bridge-worker.service",
    ]
    assert result.returncode == 0, result.stderr
    # Unknown or misspelt keys are only warned about, with the exit code 0.
    assert result.stdout + result.stderr == ""
