"""Tests for the LTI AGS score publish adapter."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bridge.adapters.base import InboundRequest
from bridge.adapters.lti import LtiAgsAdapter
from bridge.errors import ConfigError, PayloadError, UnsupportedMediaError
from bridge.events import Kind

SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM = "https://lms.example.com/courses/4/line_items/17"


def score(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "userId": "user-5",
        "scoreGiven": 42,
        "scoreMaximum": 50,
        "timestamp": "2024-04-02T10:00:00.123456+01:00",
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def request_of(
    document: object,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = SCORE_TYPE,
) -> InboundRequest:
    return InboundRequest(
        source="lti",
        body=json.dumps(document).encode(),
        content_type=content_type,
        query=query if query is not None else {"lineitem": LINEITEM},
        headers=headers or {},
    )


def parse_one(request: InboundRequest, options: dict[str, object] | None = None):
    events = LtiAgsAdapter(options).parse(request).events
    assert len(events) == 1
    return events[0]


def errors_of(request: InboundRequest) -> list[dict[str, str]]:
    with pytest.raises(PayloadError) as caught:
        LtiAgsAdapter().parse(request)
    return caught.value.errors


def test_fully_graded_completion_scales_score_and_names_the_line_item() -> None:
    event = parse_one(request_of(score()))

    assert (event.kind, event.score) == (Kind.COMPLETED, 84)
    assert event.learner.user_id == "user-5"
    assert event.activity.iri == LINEITEM
    assert event.occurred_at == datetime(2024, 4, 2, 9, 0, 0, 123456, tzinfo=UTC)


def test_submitted_and_fully_graded_also_completes() -> None:
    event = parse_one(request_of(score(activityProgress="Submitted")))

    assert (event.kind, event.score) == (Kind.COMPLETED, 84)


def test_line_item_header_is_used_when_the_query_has_none() -> None:
    request = request_of(score(), query={}, headers={"X-LTI-Lineitem": LINEITEM})

    assert parse_one(request).activity.iri == LINEITEM


def test_course_id_option_is_the_fallback_without_a_line_item() -> None:
    event = parse_one(request_of(score(), query={}), {"course_id": "course-8"})

    assert event.activity.to_dict() == {"course_id": "course-8"}


def test_activity_from_course_id_ignores_the_line_item() -> None:
    options = {"activity_from": "course_id", "course_id": "course-8"}

    event = parse_one(request_of(score()), options)

    assert event.activity.to_dict() == {"course_id": "course-8"}


@pytest.mark.parametrize("grading", ["NotReady", "Failed", "Pending", "PendingManual"])
def test_finished_activity_without_final_grade_starts_without_score(
    grading: str,
) -> None:
    event = parse_one(request_of(score(gradingProgress=grading)))

    assert (event.kind, event.score) == (Kind.STARTED, None)
    assert event.note == f"score not final: gradingProgress {grading}"


@pytest.mark.parametrize("progress", ["Initialized", "Started", "InProgress"])
def test_unfinished_activity_starts_even_when_fully_graded(progress: str) -> None:
    event = parse_one(request_of(score(activityProgress=progress)))

    assert (event.kind, event.score, event.note) == (Kind.STARTED, None, None)


@pytest.mark.parametrize(
    ("given", "maximum", "expected"),
    [(120, 100, 100), (-3, 10, 0), (0.5, 1, 50), (1, 3, 33.33), ("7", "10", 70)],
)
def test_score_is_given_over_maximum_clamped_to_0_100(
    given: object, maximum: object, expected: float
) -> None:
    event = parse_one(request_of(score(scoreGiven=given, scoreMaximum=maximum)))

    assert event.score == expected


def test_completion_without_score_given_has_no_score() -> None:
    event = parse_one(request_of(score(scoreGiven=None, scoreMaximum=None)))

    assert (event.kind, event.score) == (Kind.COMPLETED, None)


def test_score_given_without_maximum_is_refused_naming_score_maximum() -> None:
    errors = errors_of(request_of(score(scoreMaximum=None)))

    assert errors == [
        {"path": "scoreMaximum", "message": "required when scoreGiven is present"}
    ]


def test_zero_score_maximum_is_refused() -> None:
    errors = errors_of(request_of(score(scoreMaximum=0)))

    assert errors[0]["path"] == "scoreMaximum"


@pytest.mark.parametrize("field", ["userId", "timestamp", "activityProgress"])
def test_required_fields_are_refused_when_missing(field: str) -> None:
    document = score()
    del document[field]

    errors = errors_of(request_of(document))

    assert [e["path"] for e in errors] == [field]


def test_unknown_enum_values_are_refused_with_each_path() -> None:
    document = score(activityProgress="Done", gradingProgress="fullygraded")

    paths = sorted(e["path"] for e in errors_of(request_of(document)))

    assert paths == ["activityProgress", "gradingProgress"]


@pytest.mark.parametrize("stamp", ["yesterday", "2024-13-01T00:00:00Z", 1712000000])
def test_bad_timestamps_are_refused(stamp: object) -> None:
    errors = errors_of(request_of(score(timestamp=stamp)))

    assert errors[0]["path"] == "timestamp"


def test_platform_extensions_and_comment_are_ignored() -> None:
    document = score(comment="ok", **{"https://lms.example.com/ext": {"a": [1]}})

    assert parse_one(request_of(document)).kind is Kind.COMPLETED


def test_event_id_is_stable_and_changes_with_progress_or_line_item() -> None:
    first = parse_one(request_of(score()))
    same = parse_one(request_of(score(comment="another comment")))
    regraded = parse_one(request_of(score(gradingProgress="Pending")))
    other_item = parse_one(request_of(score(), query={"lineitem": LINEITEM + "0"}))

    assert first.event_id == same.event_id
    assert len({first.event_id, regraded.event_id, other_item.event_id}) == 3


def test_plain_json_content_type_is_accepted_and_text_is_not() -> None:
    assert parse_one(request_of(score(), content_type="application/json"))

    with pytest.raises(UnsupportedMediaError):
        LtiAgsAdapter().parse(request_of(score(), content_type="text/plain"))


def test_malformed_json_is_refused_with_line_and_column() -> None:
    request = InboundRequest(
        source="lti", body=b'{"userId": }', content_type=SCORE_TYPE
    )

    errors = errors_of(request)

    assert errors[0]["message"].startswith("line 1, column 12")


def test_a_json_array_is_refused() -> None:
    errors = errors_of(request_of([score()]))

    assert errors[0] == {"path": "$", "message": "expected an object, got array"}


def test_wrong_options_are_all_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        LtiAgsAdapter({"activity_from": "context", "course_id": 5})

    assert len(caught.value.problems) == 2

    with pytest.raises(ConfigError):
        LtiAgsAdapter({"activity_from": "course_id"})
