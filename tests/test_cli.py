"""The command line as a user runs it: real processes on loopback."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.clitools import ROOT, bridge, clean_env, free_port, wait_for

TOKEN = "cli-test-token"


@pytest.fixture
def sandbox_process(tmp_path):
    port = free_port()
    log = (tmp_path / "sandbox.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge",
            "sandbox",
            "--port",
            str(port),
            "--token",
            TOKEN,
            "--site",
            "acme",
        ],
        cwd=ROOT,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/_sandbox/calls")
        yield f"http://127.0.0.1:{port}/acme/backend"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_help_lists_the_commands():
    result = bridge("--help", env=clean_env())

    assert result.returncode == 0
    for command in ("serve", "run", "sandbox", "elms"):
        assert f"  {command}" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--help"),
        ("run", "--help"),
        ("sandbox", "--help"),
        ("elms", "progress", "complete", "--help"),
        ("elms", "users", "search", "--help"),
        ("elms", "learning", "download", "--help"),
    ],
)
def test_each_command_has_help(args):
    result = bridge(*args, env=clean_env())

    assert result.returncode == 0
    assert "Usage:" in result.stdout


def test_progress_round_trip_through_the_cli(sandbox_process):
    env = clean_env(BRIDGE_ELMS_URL=sandbox_process, BRIDGE_ELMS_TOKEN=TOKEN)
    users = json.loads(
        bridge(
            "elms", "users", "search", "--email", "learner1@example.com", env=env
        ).stdout
    )
    courses = json.loads(bridge("elms", "learning", "list", env=env).stdout)
    user_id = str(users[0]["id"])
    course_id = str(next(c for c in courses if c["type"] == "e-learning")["id"])

    started = bridge("elms", "progress", "start", course_id, user_id, env=env)
    got = bridge("elms", "progress", "get", course_id, user_id, env=env)
    done = bridge(
        "elms", "progress", "complete", course_id, user_id, "--score", "85", env=env
    )

    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["status"] in ("in progress", "completed")
    assert json.loads(got.stdout) == json.loads(started.stdout)
    assert json.loads(done.stdout) == {"status": "completed", "score": 85.0}


def test_wrong_token_prints_one_line_and_exits_1(sandbox_process):
    env = clean_env(BRIDGE_ELMS_URL=sandbox_process, BRIDGE_ELMS_TOKEN="bogus-7731")

    result = bridge("elms", "progress", "get", "1", "1", env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: GET learning/1/1: 403 ")
    assert "bogus-7731" not in result.stderr


def test_missing_url_is_reported_clearly():
    result = bridge("elms", "users", "list", env=clean_env())

    assert result.returncode == 1
    assert "set BRIDGE_ELMS_URL and BRIDGE_ELMS_TOKEN" in result.stderr


def test_download_writes_the_zip(sandbox_process, tmp_path):
    env = clean_env(BRIDGE_ELMS_URL=sandbox_process, BRIDGE_ELMS_TOKEN=TOKEN)
    courses = json.loads(bridge("elms", "learning", "list", env=env).stdout)
    course_id = str(next(c for c in courses if c["type"] == "e-learning")["id"])
    target = tmp_path / "c.zip"

    result = bridge(
        "elms", "learning", "download", course_id, "-o", str(target), env=env
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["bytes"] == target.stat().st_size
    assert target.read_bytes()[:2] == b"PK"


def test_run_starts_web_worker_and_sandbox_and_its_curl_line_works(tmp_path):
    web_port, sandbox_port, receiver_port = free_port(), free_port(), free_port()
    env = clean_env(
        BRIDGE_PORT=str(web_port),
        BRIDGE_SANDBOX_PORT=str(sandbox_port),
        BRIDGE_RECEIVER_PORT=str(receiver_port),
        BRIDGE_DATABASE_URL=f"sqlite:///{tmp_path}/bridge.db",
        BRIDGE_WEB_WORKERS="1",
    )
    log_path = tmp_path / "run.log"
    calls_url = f"http://127.0.0.1:{sandbox_port}/_sandbox/calls"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_until(lambda: "run: try: curl" in log_path.read_text(), 60)
        curl = log_path.read_text().split("run: try: ", 1)[1].splitlines()[0]
        tried = subprocess.run(
            shlex.split(curl) + ["-s"], capture_output=True, text=True, timeout=30
        )
        completed = wait_until(
            lambda: any(
                c["path"].endswith("/complete/85")
                for c in requests.get(calls_url, timeout=5).json()["calls"]
            ),
            10,
        )
        received = wait_until(
            lambda: "progress.completed user=" in log_path.read_text(), 30
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log_path.read_text()

    assert '"kind":"completed"' in tried.stdout
    assert completed, output
    assert received, output
    assert "(signature ok)" in output
    assert "BRIDGE_ELMS_URL is unset; starting the sandbox" in output
    assert "run: started worker" in output
    assert process.returncode == 0


def wait_until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False
