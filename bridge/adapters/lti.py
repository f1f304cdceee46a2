"""Read LTI 1.3 Assignment and Grade Services score publishes.

A platform-facing tool posts ``{lineitem}/scores`` with a Score object; the
bridge accepts the same body. Only a Completed or Submitted activity whose
grading is FullyGraded completes; a score before FullyGraded is not final and
is not passed on.

Options:
    activity_from: where the line item (the activity) comes from.
        ``"lineitem"`` (default) reads the ``lineitem`` query parameter, then
        the ``X-Lti-Lineitem`` header, and falls back to ``course_id``; the
        line item URL becomes the activity's ``iri``. ``"course_id"`` always
        uses the ``course_id`` option.
    course_id: the Open ELMS course handle for this source; required when
        ``activity_from`` is ``"course_id"``. Default: none.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from bridge.adapters.base import AdapterResult, BaseAdapter
from bridge.adapters.common import (
    clamp_score,
    decode_json,
    flatten_messages,
    parse_timestamp,
    require_media_type,
    require_object,
    sha256_hex,
)
from bridge.errors import ConfigError, PayloadError
from bridge.events import ActivityRef, Kind, LearnerRef, ProgressEvent

if TYPE_CHECKING:
    from datetime import datetime

    from bridge.adapters.base import InboundRequest

logger = logging.getLogger(__name__)

SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_HEADER = "x-lti-lineitem"
ACTIVITY_SOURCES = ("lineitem", "course_id")

ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("NotReady", "Failed", "Pending", "PendingManual", "FullyGraded")
FINISHED = frozenset({"Submitted", "Completed"})


class UtcTimestamp(fields.Field):
    """An ISO 8601 timestamp read as an aware UTC datetime."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> datetime:
        """Return ``value`` parsed, or raise marshmallow's ValidationError."""
        try:
            return parse_timestamp(value, attr or "timestamp")
        except PayloadError as exc:
            raise ValidationError(exc.errors[0]["message"]) from exc


class ScoreSchema(Schema):
    """The LTI AGS Score object; platform extensions are ignored."""

    class Meta:
        """Drop extension members such as Canvas's submission object."""

        unknown = EXCLUDE

    userId = fields.String(required=True, validate=validate.Length(min=1))
    scoreGiven = fields.Float(allow_none=True)
    scoreMaximum = fields.Float(
        allow_none=True, validate=validate.Range(min=0, min_inclusive=False)
    )
    comment = fields.String(allow_none=True)
    timestamp = UtcTimestamp(required=True)
    activityProgress = fields.String(
        required=True, validate=validate.OneOf(ACTIVITY_PROGRESS)
    )
    gradingProgress = fields.String(
        required=True, validate=validate.OneOf(GRADING_PROGRESS)
    )

    @validates_schema
    def require_maximum_with_score(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Refuse a scoreGiven that has no scoreMaximum to scale it by."""
        if data.get("scoreGiven") is not None and data.get("scoreMaximum") is None:
            raise ValidationError(
                "required when scoreGiven is present", field_name="scoreMaximum"
            )


class LtiAgsAdapter(BaseAdapter):
    """Turn one LTI AGS score publish into one progress event."""

    option_keys = frozenset({"activity_from", "course_id"})

    name = "lti-ags"
    content_types = frozenset({SCORE_MEDIA_TYPE, "application/json"})

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.activity_from, self.course_id = read_options(self.options)
        self.schema = ScoreSchema()

    def parse(self, request: InboundRequest) -> AdapterResult:
        """Return the event of one score publish, or raise a 400 or 415."""
        require_media_type(request, self.content_types)

        document = require_object(decode_json(request.body))
        try:
            score = self.schema.load(document)
        except ValidationError as exc:
            raise PayloadError(
                "invalid LTI score", errors=flatten_messages(exc.messages)
            ) from exc

        lineitem = self.find_lineitem(request)
        event = build_event(request.source, score, lineitem, self.course_id, document)
        logger.debug("lti score %s: %s", event.event_id, event.kind)
        return AdapterResult(events=[event])

    def find_lineitem(self, request: InboundRequest) -> str | None:
        """Return the line item URL of the request, if this source reads one."""
        if self.activity_from != "lineitem":
            return None

        headers = {k.lower(): v for k, v in request.headers.items()}
        value = request.query.get("lineitem") or headers.get(LINEITEM_HEADER)
        return value.strip() or None if value else None


def read_options(options: dict[str, Any]) -> tuple[str, str | None]:
    """Return ``activity_from`` and ``course_id``, or raise a ConfigError."""
    activity_from = options.get("activity_from", "lineitem")
    course_id = options.get("course_id")
    problems = []

    if activity_from not in ACTIVITY_SOURCES:
        choices = ", ".join(ACTIVITY_SOURCES)
        problems.append(f"lti-ags option activity_from must be one of {choices}.")
    if course_id is not None and (not isinstance(course_id, str) or not course_id):
        problems.append("lti-ags option course_id must be a non-empty string.")
    if activity_from == "course_id" and course_id is None:
        problems.append("lti-ags option course_id is required with activity_from.")

    if problems:
        raise ConfigError(problems)
    return activity_from, course_id


def build_event(
    source: str,
    score: dict[str, Any],
    lineitem: str | None,
    course_id: str | None,
    raw: dict[str, Any],
) -> ProgressEvent:
    """Return the normalised event for one validated Score object."""
    kind, note = classify(score["activityProgress"], score["gradingProgress"])
    value = percent(score) if kind is Kind.COMPLETED else None
    occurred_at = score["timestamp"]

    identity = "\x1f".join(
        [
            score["userId"],
            lineitem or course_id or "",
            occurred_at.isoformat(),
            score["activityProgress"],
            score["gradingProgress"],
        ]
    )
    activity = ActivityRef(iri=lineitem, course_id=None if lineitem else course_id)
    return ProgressEvent(
        source=source,
        event_id=sha256_hex(identity),
        learner=LearnerRef(user_id=score["userId"]),
        activity=activity,
        kind=kind,
        occurred_at=occurred_at,
        raw=raw,
        score=value,
        note=note,
    )


def classify(activity: str, grading: str) -> tuple[Kind, str | None]:
    """Return the kind and note for an activity and grading progress pair."""
    if activity not in FINISHED:
        return Kind.STARTED, None
    if grading == "FullyGraded":
        return Kind.COMPLETED, None
    return Kind.STARTED, f"score not final: gradingProgress {grading}"


def percent(score: dict[str, Any]) -> float | None:
    """Return scoreGiven / scoreMaximum as a 0-100 score, or None without one."""
    given = score.get("scoreGiven")
    if given is None:
        return None
    return clamp_score(given / score["scoreMaximum"] * 100)
