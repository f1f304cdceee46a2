"""Read the sample fixtures and the outcome each one should get.

Expectations are data (``tests/fixtures/expectations-*.json``), one entry
per fixture file, written from the "Bridge should" column of the samples
index; nothing here branches on a file name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTATION_FILES = ("expectations-xapi.json", "expectations-other.json")


@dataclass(frozen=True)
class Sample:
    """One fixture file, how to send it and what should come of it."""

    name: str
    format: str
    content_type: str
    headers: dict[str, str]
    bodies: list[bytes]
    expected: dict[str, Any]

    def expected_events(self) -> list[dict[str, Any]] | None:
        """Return the expected events in order, or None for a rejection."""
        if self.expected.get("rejects"):
            return None
        if "events" in self.expected:
            return list(self.expected["events"])
        return [{"kind": self.expected["kind"], "score": self.expected["score"]}]


def load_expectations() -> dict[str, dict[str, Any]]:
    """Return every expectation entry by fixture name."""
    entries: dict[str, dict[str, Any]] = {}
    for name in EXPECTATION_FILES:
        entries.update(json.loads((FIXTURES / name).read_text()))
    return entries


def read_text_body(path: Path) -> bytes:
    """Return a ``.txt`` fixture's body: its lines that are not ``#`` notes."""
    lines = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return "\n".join(lines).encode()


def request_bodies(path: Path, entry: dict[str, Any]) -> list[bytes]:
    """Return the request body (or bodies, for multi-request files) of a fixture."""
    if path.suffix == ".txt":
        return [read_text_body(path)]
    if "parts" in entry:
        document = json.loads(path.read_text())
        return [json.dumps(document[part]).encode() for part in entry["parts"]]
    return [path.read_bytes()]


def load_samples(origin: str | None = "sample") -> list[Sample]:
    """Return the fixtures copied from (or modelled on) the shared samples."""
    samples = []
    for name, entry in sorted(load_expectations().items()):
        if origin is not None and entry.get("origin") != origin:
            continue
        path = FIXTURES / name
        samples.append(
            Sample(
                name=name,
                format=entry["format"],
                content_type=entry.get("content_type", "application/json"),
                headers=dict(entry.get("headers", {})),
                bodies=request_bodies(path, entry),
                expected=entry,
            )
        )
    return samples
