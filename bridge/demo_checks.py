"""Read the demo's expectations file and judge each sample's outcome against it.

The file (``deploy/demo/expectations.yaml``) lists the samples in the order
they are posted, each with how to send it and what should come of it: the
HTTP answers, and per event the kind, the score and the Open ELMS call.
A call is written ``start``, ``complete`` or ``complete/95`` for a call the
sandbox must have recorded, or ``none (...)``/``failed (...)`` with a
fragment of the reason the bridge stored. Nothing here knows a file name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bridge.errors import ConfigError

if TYPE_CHECKING:
    from bridge.demo_outbound import OutboundOutcome

ENTRY_KEYS = frozenset(
    {
        "file",
        "format",
        "source",
        "content_type",
        "headers",
        "query",
        "parts",
        "body",
        "status",
        "events",
        "reject",
        "why",
    }
)
EVENT_KEYS = frozenset({"kind", "score", "call"})
BODY_MODES = ("file", "last_line")
SCORE_TOLERANCE = 0.01


@dataclass(frozen=True)
class ExpectedEvent:
    """One event a sample should produce, and the call it should lead to."""

    kind: str
    score: float | None
    call: str


@dataclass(frozen=True)
class Expectation:
    """How to send one sample file and what should come of it."""

    file: str
    format: str
    source: str
    content_type: str
    statuses: tuple[int, ...]
    events: tuple[ExpectedEvent, ...] = ()
    reject: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    parts: tuple[str, ...] = ()
    body: str = "file"
    why: str = ""

    def request_bodies(self, samples_dir: Path) -> list[bytes]:
        """Return the body of each request this sample is sent as."""
        path = samples_dir / self.file
        if self.parts:
            document = json.loads(path.read_text(encoding="utf-8"))
            return [json.dumps(document[part]).encode() for part in self.parts]
        if self.body == "last_line":
            return [last_body_line(path).encode()]
        return [path.read_bytes()]


@dataclass(frozen=True)
class Answer:
    """The bridge's HTTP answer to one request."""

    status: int
    body: dict[str, Any]

    def describe(self) -> str:
        """Return the answer's error message and error paths, for a rejection."""
        paths = [str(e.get("path", "")) for e in self.body.get("errors", [])]
        message = str(self.body.get("message", ""))
        listed = f" [{', '.join(p for p in paths if p)}]" if any(paths) else ""
        return f"{message}{listed}"


@dataclass(frozen=True)
class EventOutcome:
    """What became of one event: its kind, score and the call (or why none)."""

    kind: str
    score: float | None
    call: str
    in_call_log: bool = True


@dataclass
class SampleRun:
    """One sample as sent and what came of it, with any differences found."""

    expectation: Expectation
    answers: list[Answer] = field(default_factory=list)
    events: list[EventOutcome] = field(default_factory=list)
    outbound: list[OutboundOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether the sample's outcome is the expected one."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the run."""
        return {
            "sample": self.expectation.file,
            "format": self.expectation.format,
            "http": [answer.status for answer in self.answers],
            "events": [
                {"kind": e.kind, "score": e.score, "call": e.call} for e in self.events
            ],
            "rejection": rejection_text(self.answers) or None,
            "outbound": [item.to_dict() for item in self.outbound],
            "ok": self.ok,
            "problems": self.problems,
            "why": self.expectation.why,
        }


def last_body_line(path: Path) -> str:
    """Return a text sample's last line that is neither blank nor a ``#`` note."""
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    if not lines:
        raise ConfigError([f"{path}: has no body line"])
    return lines[-1]


def load_expectations(path: Path) -> list[Expectation]:
    """Return the expectations of a file, in order.

    Raises:
        ConfigError: listing every problem, each naming the entry.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: is not valid YAML: {exc}"]) from exc
    entries = document.get("samples") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError([f"{path}: expected a `samples` list"])

    problems: list[str] = []
    expectations = []
    for index, entry in enumerate(entries):
        where = f"{path}: samples[{index}]"
        expectation = read_entry(entry, where, problems)
        if expectation is not None:
            expectations.append(expectation)

    files = [e.file for e in expectations]
    problems.extend(
        f"{path}: {name} is listed more than once"
        for name in sorted({name for name in files if files.count(name) > 1})
    )
    if problems:
        raise ConfigError(problems)
    return expectations


def read_entry(entry: Any, where: str, problems: list[str]) -> Expectation | None:
    """Return one entry's expectation, or None after noting its problems."""
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        problems.append(f"{where}: must be a mapping with a `file`")
        return None

    where = f"{where} ({entry['file']})"
    found = [f"{where}: unknown key {key}" for key in entry if key not in ENTRY_KEYS]
    found.extend(check_entry(entry, where))
    problems.extend(found)
    if found:
        return None

    status = entry["status"]
    return Expectation(
        file=entry["file"],
        format=entry["format"],
        source=str(entry.get("source", entry["format"])),
        content_type=entry.get("content_type", "application/json"),
        statuses=tuple(status if isinstance(status, list) else [status]),
        events=tuple(read_event(item) for item in entry.get("events", [])),
        reject=entry.get("reject"),
        headers={str(k): str(v) for k, v in entry.get("headers", {}).items()},
        query={str(k): str(v) for k, v in entry.get("query", {}).items()},
        parts=tuple(entry.get("parts", [])),
        body=entry.get("body", "file"),
        why=str(entry.get("why", "")).strip(),
    )


def check_entry(entry: dict[str, Any], where: str) -> list[str]:
    """Return a sentence for each wrong value of one entry."""
    problems = []
    if not isinstance(entry.get("format"), str):
        problems.append(f"{where}: `format` is required")
    status = entry.get("status")
    statuses = status if isinstance(status, list) else [status]
    if not statuses or not all(isinstance(s, int) for s in statuses):
        problems.append(f"{where}: `status` must be a number or a list of numbers")
    if entry.get("body", "file") not in BODY_MODES:
        problems.append(f"{where}: `body` must be one of {', '.join(BODY_MODES)}")
    if len(statuses) != max(1, len(entry.get("parts", []))):
        problems.append(f"{where}: give one `status` per request (one per part)")

    events = entry.get("events", [])
    if not isinstance(events, list):
        return [*problems, f"{where}: `events` must be a list"]
    for index, item in enumerate(events):
        keys = set(item) if isinstance(item, dict) else set()
        if keys != EVENT_KEYS:
            problems.append(f"{where}: events[{index}] needs kind, score and call")
    if any(isinstance(s, int) and s >= 400 for s in statuses) and not entry.get(
        "reject"
    ):
        problems.append(f"{where}: a 4xx answer needs a `reject` fragment")
    return problems


def read_event(item: dict[str, Any]) -> ExpectedEvent:
    """Return one expected event of an entry."""
    score = item["score"]
    return ExpectedEvent(
        kind=str(item["kind"]),
        score=None if score is None else float(score),
        call=str(item["call"]),
    )


def judge(run: SampleRun) -> None:
    """Compare a run with its expectation and note each difference."""
    expected = run.expectation
    got_statuses = tuple(answer.status for answer in run.answers)
    if got_statuses != expected.statuses:
        run.problems.append(f"HTTP {got_statuses}, expected {expected.statuses}")

    rejection = rejection_text(run.answers)
    if expected.reject and expected.reject.lower() not in rejection.lower():
        run.problems.append(f"rejection {rejection!r} lacks {expected.reject!r}")

    if len(run.events) != len(expected.events):
        counts = f"{len(run.events)} events, expected {len(expected.events)}"
        run.problems.append(counts)
        return
    pairs = zip(run.events, expected.events, strict=True)
    for number, (got, want) in enumerate(pairs, 1):
        run.problems.extend(
            f"event {number}: {problem}" for problem in compare_event(got, want)
        )


def compare_event(got: EventOutcome, want: ExpectedEvent) -> list[str]:
    """Return the differences between one event's outcome and its expectation."""
    problems = []
    if got.kind != want.kind:
        problems.append(f"kind {got.kind}, expected {want.kind}")
    if not same_score(got.score, want.score):
        problems.append(f"score {got.score}, expected {want.score}")
    if not call_matches(want.call, got.call):
        problems.append(f"call {got.call!r}, expected {want.call!r}")
    elif not got.in_call_log:
        problems.append(f"call {got.call!r} is not in the sandbox's call log")
    return problems


def same_score(got: float | None, want: float | None) -> bool:
    """Tell whether two scores agree (both absent, or equal to 0.01)."""
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(got, want, abs_tol=SCORE_TOLERANCE)


def call_matches(expected: str, actual: str) -> bool:
    """Tell whether an outcome matches an expected call.

    ``none (fragment)`` and ``failed (fragment)`` match an outcome of that
    word whose reason contains the fragment; any other text is the action
    part of the call, as in ``PUT learning/L/U/complete/95``.
    """
    word, _, fragment = expected.partition(" (")
    if fragment:
        fragment = fragment.removesuffix(")").lower()
        return actual.startswith(f"{word} (") and fragment in actual.lower()

    if not actual.startswith("PUT learning/"):
        return False
    return actual.split("/", 3)[-1] == expected


def rejection_text(answers: list[Answer]) -> str:
    """Return what the 4xx answers said, joined."""
    return "; ".join(
        f"{answer.status}: {answer.describe()}"
        for answer in answers
        if answer.status >= 400
    )
