"""Read the commits SCORM 1.2 and 2004 runtimes post from the browser.

Accepted bodies: the ``cmi`` tree nested (``{"cmi": {"core": ...}}``), the
same keys flattened (``{"cmi.core.lesson_status": ...}``), the commit object
of scorm-again-style runtimes (``completionStatus``, ``successStatus``,
``score``, ``runtimeData``), and the ``params`` query-string encoding of the
flattened keys. Values may be strings, as runtimes send them.

``sendBeacon`` posts as ``text/plain``, so a text body is read as JSON when
it starts with ``{`` and as a query string otherwise.

Score: 2004 ``scaled`` × 100 when present; otherwise ``raw``, rescaled as
``(raw - min) / (max - min) × 100`` when ``max`` is given and above ``min``
(``min`` defaults to 0, so 0..100 scores stay as they are), else ``raw`` as
is. Scores are clamped to 0-100 and only kept on completed, passed and failed
events.

Learner: ``cmi.learner_id``, ``cmi.core.student_id`` or ``learnerId`` of the
body, then the ``learner`` query parameter, then the ``learner`` option.
Activity: the ``activity`` query parameter, then ``courseId`` or
``activityId`` of the body, then the ``course_id`` option.

Options:
    learner: a user id for every commit of this source. Default: none.
    course_id: the course handle when neither query nor body names one.
        Default: none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bridge.adapters.base import AdapterResult, BaseAdapter
from bridge.adapters.common import (
    canonical_json,
    clamp_score,
    decode_json,
    decode_query,
    decode_text,
    error,
    id_text,
    require_media_type,
    require_object,
    sha256_hex,
    to_number,
    utc_now,
)
from bridge.errors import ConfigError, PayloadError
from bridge.events import ActivityRef, Kind, LearnerRef, ProgressEvent

if TYPE_CHECKING:
    from bridge.adapters.base import InboundRequest

logger = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain"

LESSON_STATUS = {
    "passed": Kind.PASSED,
    "completed": Kind.COMPLETED,
    "failed": Kind.FAILED,
    "incomplete": Kind.STARTED,
    "browsed": Kind.STARTED,
    "not attempted": Kind.INFORMATIONAL,
    "unknown": Kind.INFORMATIONAL,
}
COMPLETION_STATUS = {
    "completed": Kind.COMPLETED,
    "incomplete": Kind.STARTED,
    "not attempted": Kind.INFORMATIONAL,
    "unknown": Kind.INFORMATIONAL,
}
SUCCESS_STATUS = {"passed": Kind.PASSED, "failed": Kind.FAILED, "unknown": None}
FINAL_KINDS = frozenset({Kind.COMPLETED, Kind.PASSED, Kind.FAILED})

# Where each value may sit, first match wins: the commit object's own
# fields, then SCORM 2004, then SCORM 1.2.
COMPLETION_PATHS = ("completionStatus", "cmi.completion_status")
SUCCESS_PATHS = ("successStatus", "cmi.success_status")
LESSON_PATHS = ("cmi.core.lesson_status",)
SCORE_ROOTS = ("score", "cmi.score", "cmi.core.score")
LEARNER_PATHS = ("cmi.learner_id", "cmi.core.student_id", "learnerId")
ACTIVITY_PATHS = ("courseId", "activityId")


class ScormRuntimeAdapter(BaseAdapter):
    """Turn one SCORM runtime commit into one progress event."""

    option_keys = frozenset({"learner", "course_id"})

    name = "scorm-runtime"
    content_types = frozenset({"application/json", TEXT, FORM})

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        problems = [
            f"scorm-runtime option {key} must be a non-empty string."
            for key in ("learner", "course_id")
            if key in self.options
            and (not isinstance(self.options[key], str) or not self.options[key])
        ]
        if problems:
            raise ConfigError(problems)

    def parse(self, request: InboundRequest) -> AdapterResult:
        """Return the event of one commit, or raise a 400 or 415."""
        require_media_type(request, self.content_types)

        data = read_body(request)
        kind, note = classify(data)
        score = read_score(data) if kind in FINAL_KINDS else None

        event = ProgressEvent(
            source=request.source,
            event_id=event_id_of(request, data),
            learner=LearnerRef(user_id=self.find_learner(request, data)),
            activity=ActivityRef(
                course_id=self.find_activity(request, data),
                content_id=text_at(data, "scoId"),
            ),
            kind=kind,
            occurred_at=utc_now(),
            raw=data,
            score=score,
            note=note,
        )
        logger.debug("runtime commit %s: %s", event.event_id, kind)
        return AdapterResult(events=[event])

    def find_learner(self, request: InboundRequest, data: dict[str, Any]) -> str | None:
        """Return the learner id from the body, the query or the options."""
        for path in LEARNER_PATHS:
            found = text_at(data, path)
            if found:
                return found
        return request.query.get("learner") or self.options.get("learner")

    def find_activity(
        self, request: InboundRequest, data: dict[str, Any]
    ) -> str | None:
        """Return the course handle from the query, the body or the options."""
        if request.query.get("activity"):
            return request.query["activity"]
        for path in ACTIVITY_PATHS:
            found = text_at(data, path)
            if found:
                return found
        return self.options.get("course_id")


def read_body(request: InboundRequest) -> dict[str, Any]:
    """Return the commit as a dict, whichever encoding the runtime chose."""
    if request.content_type == "application/json":
        return require_object(decode_json(request.body))
    if request.content_type == FORM:
        return dict(request.form) or decode_query(decode_text(request.body))

    text = decode_text(request.body)
    if text.lstrip().startswith(("{", "[")):
        return require_object(decode_json(text))
    return decode_query(text)


def lookup(data: dict[str, Any], path: str) -> Any:
    """Return the value at a dotted path, flattened or nested; None if absent.

    A commit object keeps its ``cmi`` tree under ``runtimeData``, so paths
    starting with ``cmi.`` are looked up there too.
    """
    roots = [data]
    runtime = data.get("runtimeData")
    if path.startswith("cmi.") and isinstance(runtime, dict):
        roots.append(runtime)

    for root in roots:
        if path in root:
            return root[path]
        node: Any = root
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None


def text_at(data: dict[str, Any], path: str) -> str | None:
    """Return the value at ``path`` as text if it is a string or an integer."""
    return id_text(lookup(data, path))


def classify(data: dict[str, Any]) -> tuple[Kind, str | None]:
    """Return the kind and note the commit's status values give."""
    success = first_status(data, SUCCESS_PATHS, SUCCESS_STATUS)
    completion = first_status(data, COMPLETION_PATHS, COMPLETION_STATUS)
    lesson = first_status(data, LESSON_PATHS, LESSON_STATUS)

    # A success verdict outranks completion: SCORM 2004 keeps them apart,
    # and a passed or failed learner has finished either way.
    if success is not None:
        return success, None
    if completion is not None:
        return note_for(completion)
    if lesson is not None:
        return note_for(lesson)

    if any(lookup(data, p) is not None for p in status_paths()):
        return Kind.INFORMATIONAL, "nothing known: status unknown"
    raise PayloadError(
        "no SCORM status in the commit",
        errors=[error(p, "one of these is required") for p in status_paths()],
    )


def status_paths() -> tuple[str, ...]:
    """Return every path a status value may sit at."""
    return SUCCESS_PATHS + COMPLETION_PATHS + LESSON_PATHS


def first_status(
    data: dict[str, Any], paths: tuple[str, ...], allowed: Mapping[str, Kind | None]
) -> Kind | None:
    """Return the kind of the first status present, or raise on unknown values."""
    for path in paths:
        value = lookup(data, path)
        if value is None or value == "":
            continue

        key = value.strip().lower() if isinstance(value, str) else ""
        if key not in allowed:
            choices = ", ".join(sorted(allowed))
            raise PayloadError(
                f"{path} has an unknown value",
                errors=[error(path, f"expected one of {choices}, got {value!r}")],
            )
        return allowed[key]
    return None


def note_for(kind: Kind) -> tuple[Kind, str | None]:
    """Return ``kind`` with the note an informational status needs."""
    if kind is Kind.INFORMATIONAL:
        return kind, "nothing known: not attempted or unknown"
    return kind, None


def read_score(data: dict[str, Any]) -> float | None:
    """Return the commit's score as 0-100, or None when it has none."""
    for root in SCORE_ROOTS:
        scaled = to_number(lookup(data, f"{root}.scaled"))
        if scaled is not None:
            return clamp_score(scaled * 100)

        raw = to_number(lookup(data, f"{root}.raw"))
        if raw is not None:
            return clamp_score(rescale(raw, data, root))
    return None


def rescale(raw: float, data: dict[str, Any], root: str) -> float:
    """Return ``raw`` as a percentage of its min..max range when max is given."""
    maximum = to_number(lookup(data, f"{root}.max"))
    minimum = to_number(lookup(data, f"{root}.min")) or 0.0
    if maximum is None or maximum <= minimum:
        return raw
    return (raw - minimum) / (maximum - minimum) * 100


def event_id_of(request: InboundRequest, data: dict[str, Any]) -> str:
    """Return the commit's own ``id``, else the SHA-256 of its body."""
    explicit = text_at(data, "id")
    if explicit:
        return explicit
    if request.body:
        return sha256_hex(request.body)
    return sha256_hex(canonical_json(data))
