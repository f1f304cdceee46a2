"""``python -m bridge demo`` as a user runs it: a subprocess with real parts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"
EXPECTATIONS = ROOT / "deploy" / "demo" / "expectations.yaml"

# Fixture copies that are byte for byte the shared samples (Apache-2.0).
COPIED = (
    "xapi/conformance-v2-result-score-completion-attended.json",
    "xapi/spec-appA-group-actor-attended.json",
    "cmi5/launched-lms-moveon-passed-mastery09.json",
)
WRONG_SCORE_SAMPLE = COPIED[0]


def run_demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    return subprocess.run(
        [sys.executable, "-m", "bridge", "demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sample_names(folder: Path) -> list[str]:
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.glob("*/**/*")
        if path.is_file() and path.suffix != ".md"
    )


def copy_fixtures(tmp_path: Path) -> Path:
    samples = tmp_path / "samples"
    for name in COPIED:
        target = samples / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURES / name, target)
    return samples


def write_expectations(tmp_path: Path, change_score: dict[str, float]) -> Path:
    """Write the demo's entries for the copied samples, with scores changed."""
    document = yaml.safe_load(EXPECTATIONS.read_text())
    entries = [e for e in document["samples"] if e["file"] in COPIED]
    for entry in entries:
        if entry["file"] in change_score:
            entry["events"][0]["score"] = change_score[entry["file"]]
    path = tmp_path / "expectations.yaml"
    path.write_text(yaml.safe_dump({"samples": entries}, sort_keys=False))
    return path


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    not SHARED_SAMPLES.is_dir(),
    reason=f"the shared samples folder {SHARED_SAMPLES} is not beside the clone",
)
def test_demo_over_shared_samples_prints_every_sample_and_exits_0():
    result = run_demo("--samples", str(SHARED_SAMPLES))

    assert result.returncode == 0, result.stdout + result.stderr
    names = sample_names(SHARED_SAMPLES)
    assert len(names) == 46
    rows = result.stdout.splitlines()
    for name in names:
        assert any(f"ok      {name} " in row for row in rows), name
    assert f"{len(names)} samples: {len(names)} as expected, 0 not" in result.stdout
    counted = (
        "20 outbound events from 18 samples (28 produced none); "
        "20 received once with a verified signature"
    )
    assert counted in result.stdout


@pytest.mark.timeout(300)
def test_demo_exits_1_naming_the_sample_whose_expected_score_is_wrong(tmp_path):
    samples = copy_fixtures(tmp_path)
    expectations = write_expectations(tmp_path, {WRONG_SCORE_SAMPLE: 96})

    result = run_demo(
        "--samples", str(samples), "--expectations", str(expectations), "--json"
    )

    assert result.returncode == 1, result.stdout + result.stderr
    rows = {row["sample"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == set(COPIED)
    wrong = rows.pop(WRONG_SCORE_SAMPLE)
    assert wrong["ok"] is False
    assert wrong["problems"] == ["event 1: score 95.0, expected 96.0"]
    assert wrong["events"][0]["call"].endswith("/complete/95")
    assert all(row["ok"] for row in rows.values()), rows


@pytest.mark.timeout(300)
def test_demo_over_the_copied_samples_exits_0_with_their_calls(tmp_path):
    samples = copy_fixtures(tmp_path)
    expectations = write_expectations(tmp_path, {})

    result = run_demo("--samples", str(samples), "--expectations", str(expectations))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 samples: 3 as expected, 0 not" in result.stdout
    lines = result.stdout.splitlines()
    started = next(line for line in lines if COPIED[2] in line)
    assert started.startswith("ok") and started.endswith("/start")


def test_demo_refuses_a_sample_without_expectation_before_starting(tmp_path):
    samples = copy_fixtures(tmp_path)
    expectations = write_expectations(tmp_path, {})
    (samples / "xapi" / "unlisted.json").write_text("{}")

    result = run_demo("--samples", str(samples), "--expectations", str(expectations))

    assert result.returncode == 2
    assert "xapi/unlisted.json" in result.stderr
    assert "has no expectation" in result.stderr


@pytest.mark.timeout(300)
def test_demo_json_lists_each_samples_outbound_events_as_received(tmp_path):
    samples = copy_fixtures(tmp_path)
    expectations = write_expectations(tmp_path, {})

    result = run_demo(
        "--samples", str(samples), "--expectations", str(expectations), "--json"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["sample"]: row for row in map(json.loads, result.stdout.splitlines())}
    outbound = {
        name: [
            (o["type"], o["user"], o["learning"], o["status"], o["score"], o["cause"])
            for o in row["outbound"]
        ]
        for name, row in rows.items()
    }
    assert outbound == {
        COPIED[0]: [("progress.completed", "1", "1", "completed", 95.0, "inbound")],
        COPIED[1]: [],
        COPIED[2]: [("progress.started", "18", "4", "in progress", None, "inbound")],
    }
    received = [o["received"] for row in rows.values() for o in row["outbound"]]
    assert received == [1, 1]
