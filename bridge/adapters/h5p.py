"""Turn H5P results, as a host page forwards them, into progress events.

H5P content does not post anything itself: it raises xAPI events in the
browser and the host page forwards them. The bridge accepts a bare
statement, an array, the whole event (``{"type": "xAPI", "data":
{"statement": ...}}``, unwrapped) or an array of such events, and also
H5P core's own ``setFinished`` form post.

Statements follow H5P's completion rule: a top-level ``completed`` or
``answered`` completes, ``passed`` passes, ``failed`` fails, ``attempted``
starts; sub-content (a parent activity, ``subContentId=`` in the object id
or the H5P sub-content extension) is informational. A scoreless top-level
outcome takes its score from the ``scored`` statement for the same object
and learner in the same batch: the next one before the next ``completed``,
else the last one since the previous ``completed`` (H5P Essay sends its
score that way). Statements are validated leniently where H5P is known to
deviate: accounts without ``homePage``, object ids that are not IRIs,
parents without ids.

The ``setFinished`` form (contentId, score, maxScore, opened, finished,
time) completes content ``contentId`` with round(score / maxScore x 100),
at ``finished`` (unix seconds; now when absent). The learner comes from the
form field named by option ``user_field`` (then required, read as the Open
ELMS user id); without that option, from form fields ``email`` and
``user`` when present, else the event has no learner handle and resolution
parks it.

Options: ``user_field`` (default none) and ``failed_policy`` as for xAPI.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from bridge.adapters.base import AdapterResult, InboundRequest
from bridge.adapters.common import (
    decode_query,
    decode_text,
    error,
    flatten_messages,
    id_text,
    join_path,
)
from bridge.adapters.xapi import (
    STARTED_VERBS,
    Outcome,
    XapiAdapter,
    explain_unmapped,
    has_parent,
    short_verb,
)
from bridge.adapters.xapi_schema import LenientStatementSchema
from bridge.errors import PayloadError
from bridge.events import ActivityRef, Kind, LearnerRef, ProgressEvent

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
CONTENT_ID_EXTENSION = "http://h5p.org/x-api/h5p-local-content-id"
SUB_CONTENT_EXTENSION = "http://h5p.org/x-api/h5p-subContentId"
OUTCOME_KINDS = frozenset({Kind.COMPLETED, Kind.PASSED, Kind.FAILED})


class SetFinishedSchema(Schema):
    """The fields of H5P core's ``setFinished`` post, all sent as strings."""

    contentId = fields.String(required=True, validate=validate.Length(min=1))
    score = fields.Float(required=True, allow_nan=False, validate=validate.Range(0))
    maxScore = fields.Float(
        required=True,
        allow_nan=False,
        validate=validate.Range(0, min_inclusive=False),
    )
    opened = fields.Integer()
    finished = fields.Integer()
    time = fields.Integer()

    @validates_schema
    def check_score_within_max(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Refuse a score above maxScore."""
        if data["score"] > data["maxScore"]:
            raise ValidationError("score must not exceed maxScore", "score")


class H5pAdapter(XapiAdapter):
    """Read H5P statements or ``setFinished`` posts forwarded by a host page."""

    option_keys = frozenset({"failed_policy", "user_field"})

    name = "h5p"
    content_types: ClassVar[frozenset[str]] = frozenset(
        {"application/json", FORM_MEDIA_TYPE}
    )
    statement_schema: ClassVar[type[Schema]] = LenientStatementSchema

    def __init__(self, options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.user_field = (options or {}).get("user_field")
        super().__init__(options, **kwargs)

    def check_options(self) -> list[str]:
        """Return one sentence per problem with this source's options."""
        problems = super().check_options()
        if self.user_field is not None and not isinstance(self.user_field, str):
            problems.append("h5p: user_field must be a form field name.")
        return problems

    def parse(self, request: InboundRequest) -> AdapterResult:
        """Return the events of a form post or of forwarded statements."""
        if request.content_type == FORM_MEDIA_TYPE:
            return self.parse_set_finished(request)
        return super().parse(request)

    def split_body(self, body: Any) -> list[tuple[str, Any]]:
        """Return the statements, unwrapping H5P events, with their paths."""
        return [unwrap_event(path, item) for path, item in super().split_body(body)]

    def classify(self, data: dict[str, Any]) -> Outcome:
        """Return the outcome by H5P's completion rule."""
        verb = short_verb(data["verb"]["id"])
        if verb == "voided" or data["object"]["objectType"] != "Activity":
            return super().classify(data)
        if is_sub_content(data):
            return Outcome(Kind.INFORMATIONAL, f"H5P sub-content {verb or 'statement'}")

        if verb in ("completed", "answered"):
            return Outcome(Kind.COMPLETED)
        if verb in ("passed", "failed"):
            return super().classify(data)
        if verb in STARTED_VERBS:
            return Outcome(Kind.STARTED)
        return Outcome(Kind.INFORMATIONAL, explain_unmapped(data, verb, False))

    def activity_from_object(self, target: dict[str, Any]) -> ActivityRef:
        """Return the activity with its H5P local content id, when given."""
        activity = super().activity_from_object(target)
        extensions = (target.get("definition") or {}).get("extensions") or {}
        content_id = id_text(extensions.get(CONTENT_ID_EXTENSION))
        if content_id is None:
            return activity
        return ActivityRef(iri=activity.iri, content_id=content_id, name=activity.name)

    def finish_batch(self, events: list[ProgressEvent]) -> list[ProgressEvent]:
        """Return the events, scoreless outcomes scored from ``scored`` events."""
        for index, event in enumerate(events):
            if event.kind not in OUTCOME_KINDS or event.score is not None:
                continue
            scored = find_scored(events, index)
            if scored is not None:
                event.score = scored.score
                event.extra["score_from"] = scored.event_id
        return events

    def parse_set_finished(self, request: InboundRequest) -> AdapterResult:
        """Return the completion a ``setFinished`` form post reports."""
        form = read_form(request)
        try:
            data = SetFinishedSchema().load(form, unknown=EXCLUDE)
        except ValidationError as exc:
            errors = flatten_messages(exc.messages)
            raise PayloadError("setFinished post is invalid", errors=errors) from exc

        learner = self.learner_from_form(form)
        event = ProgressEvent(
            source=request.source,
            event_id=set_finished_id(data, learner),
            learner=learner,
            activity=ActivityRef(content_id=data["contentId"]),
            kind=Kind.COMPLETED,
            occurred_at=finished_at(data.get("finished")) or self.clock(),
            raw=form,
            score=percent(data["score"], data["maxScore"]),
            extra={"h5p": "setFinished"},
        )
        return AdapterResult(events=[event], statement_ids=[event.event_id])

    def learner_from_form(self, form: dict[str, str]) -> LearnerRef:
        """Return the learner named by the form, as documented in the module."""
        if self.user_field is None:
            email = form.get("email") or None
            return LearnerRef(
                email=email.lower() if email else None, user_id=form.get("user") or None
            )

        user_id = form.get(self.user_field)
        if not user_id:
            message = "required: the source reads the learner from this field"
            errors = [error(self.user_field, message)]
            raise PayloadError("setFinished post names no learner", errors=errors)
        return LearnerRef(user_id=user_id)


def unwrap_event(path: str, item: Any) -> tuple[str, Any]:
    """Return the statement inside an H5P ``xAPI`` event, or the item itself."""
    if not (isinstance(item, dict) and item.get("type") == "xAPI"):
        return path, item

    data = item.get("data")
    if not isinstance(data, dict) or "statement" not in data:
        where = join_path(path, "data.statement")
        errors = [error(where, "an xAPI event must carry a statement")]
        raise PayloadError("the H5P event has no statement", errors=errors)
    return join_path(path, "data.statement"), data["statement"]


def is_sub_content(data: dict[str, Any]) -> bool:
    """Return whether the statement is about H5P sub-content, not the whole."""
    target = data["object"]
    extensions = (target.get("definition") or {}).get("extensions") or {}
    return (
        has_parent(data)
        or "subContentId=" in target["id"]
        or SUB_CONTENT_EXTENSION in extensions
    )


def find_scored(events: list[ProgressEvent], index: int) -> ProgressEvent | None:
    """Return the ``scored`` event that belongs to the outcome at ``index``."""
    target = events[index]
    thread = [(i, e) for i, e in enumerate(events) if same_thread(e, target)]
    after = [e for i, e in thread if i > index]
    before = [e for i, e in reversed(thread) if i < index]

    # A completed statement opens a new attempt; a score never crosses it.
    for candidates in (after, before):
        for event in candidates:
            if verb_of(event) == "completed":
                break
            if verb_of(event) == "scored" and event.score is not None:
                return event
    return None


def same_thread(event: ProgressEvent, other: ProgressEvent) -> bool:
    """Return whether two events are about the same content and learner."""
    activity, other_activity = event.activity, other.activity
    return (
        event.learner == other.learner
        and activity.iri == other_activity.iri
        and activity.content_id == other_activity.content_id
    )


def verb_of(event: ProgressEvent) -> str | None:
    """Return the short verb an event came from."""
    verb_id = event.extra.get("verb")
    return short_verb(verb_id) if isinstance(verb_id, str) else None


def read_form(request: InboundRequest) -> dict[str, str]:
    """Return the form fields, blank ones dropped, decoding the body if needed."""
    form = request.form or decode_query(decode_text(request.body))
    return {key: value for key, value in form.items() if value.strip()}


def finished_at(seconds: int | None) -> datetime | None:
    """Return the unix time ``seconds`` as UTC, or None when absent."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        errors = [error("finished", "not a usable unix time")]
        raise PayloadError("setFinished post is invalid", errors=errors) from exc


def percent(score: float, max_score: float) -> int:
    """Return score / max_score as a whole percentage, halves rounded up."""
    return math.floor(score / max_score * 100 + 0.5)


def set_finished_id(data: dict[str, Any], learner: LearnerRef) -> str:
    """Return a stable id for a post with ``finished``, so re-sends dedupe."""
    if data.get("finished") is None:
        return str(uuid.uuid4())
    key = "|".join(
        str(part)
        for part in (
            data["contentId"],
            sorted(learner.to_dict().items()),
            data.get("opened"),
            data["finished"],
            data["score"],
            data["maxScore"],
        )
    )
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "h5p-set-finished:" + key))
