"""Tests for the SCORM 1.2 / 2004 runtime commit adapter."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from bridge.adapters.base import InboundRequest
from bridge.adapters.scorm_runtime import ScormRuntimeAdapter
from bridge.errors import ConfigError, PayloadError, UnsupportedMediaError
from bridge.events import Kind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scorm-runtime"
FORM = "application/x-www-form-urlencoded"


def request_of(
    document: object,
    content_type: str = "application/json",
    query: dict[str, str] | None = None,
) -> InboundRequest:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return InboundRequest(
        source="runtime", body=body, content_type=content_type, query=query or {}
    )


def parse_one(request: InboundRequest, options: dict[str, object] | None = None):
    events = ScormRuntimeAdapter(options).parse(request).events
    assert len(events) == 1
    return events[0]


def params_body() -> bytes:
    text = (FIXTURES / "scorm-again-scorm12-params-querystring.txt").read_text()
    return "".join(ln for ln in text.splitlines() if not ln.startswith("#")).encode()


@pytest.mark.parametrize(
    "name",
    [
        "scorm-again-scorm12-cmi-json-string-numbers.json",
        "scorm-again-scorm12-flattened.json",
    ],
)
def test_nested_and_flattened_scorm12_read_the_same(name: str) -> None:
    event = parse_one(request_of((FIXTURES / name).read_bytes()))

    assert (event.kind, event.score, event.learner.user_id) == (
        Kind.COMPLETED,
        85,
        "12345",
    )


@pytest.mark.parametrize("content_type", [FORM, "text/plain"])
def test_params_encoding_is_read_as_form_or_plain_text(content_type: str) -> None:
    body = params_body()
    form = dict(parse_qsl(body.decode().lstrip("?"))) if content_type == FORM else {}
    request = InboundRequest(
        source="runtime", body=body, content_type=content_type, form=form
    )

    event = parse_one(request)

    assert (event.kind, event.score, event.learner.user_id) == (
        Kind.COMPLETED,
        85,
        "12345",
    )


def test_beacon_text_plain_json_is_parsed_as_json() -> None:
    document = {"cmi": {"completion_status": "incomplete"}}

    event = parse_one(request_of(document, "text/plain"))

    assert event.kind is Kind.STARTED


def test_beacon_text_plain_broken_json_is_refused_with_line_and_column() -> None:
    with pytest.raises(PayloadError) as caught:
        ScormRuntimeAdapter().parse(request_of(b'{"cmi": [}', "text/plain"))

    assert "line 1, column 10" in caught.value.message


def test_commit_object_takes_learner_course_and_sco() -> None:
    body = (FIXTURES / "scorm-again-commit-object-2004-passed-085.json").read_bytes()

    event = parse_one(request_of(body))

    assert (event.kind, event.score) == (Kind.PASSED, 85)
    assert event.learner.user_id == "learner-789"
    assert event.activity.to_dict() == {
        "course_id": "course-123",
        "content_id": "sco-456",
    }


def test_commit_object_reads_runtime_data_when_top_level_status_is_absent() -> None:
    document = {
        "runtimeData": {"cmi": {"success_status": "failed", "learner_id": "l-1"}}
    }

    event = parse_one(request_of(document))

    assert (event.kind, event.learner.user_id) == (Kind.FAILED, "l-1")


def test_scaled_score_outranks_raw() -> None:
    document = {
        "cmi.completion_status": "completed",
        "cmi.score.scaled": "0.9",
        "cmi.score.raw": "50",
    }

    assert parse_one(request_of(document)).score == 90


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ({"raw": "15", "min": "10", "max": "20"}, 50),
        ({"raw": "85"}, 85),
        ({"raw": "85", "min": "0", "max": "100"}, 85),
        ({"raw": "8", "max": "10"}, 80),
        ({"raw": "150", "max": "100"}, 100),
        ({"raw": "40", "min": "50", "max": "50"}, 40),
        ({"raw": "", "max": "100"}, None),
        ({"scaled": "-0.5"}, 0),
    ],
)
def test_raw_scores_rescale_over_min_max(
    score: dict[str, str], expected: float
) -> None:
    document = {"cmi": {"core": {"lesson_status": "passed", "score": score}}}

    assert parse_one(request_of(document)).score == expected


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("passed", Kind.PASSED),
        ("Completed", Kind.COMPLETED),
        ("failed", Kind.FAILED),
        ("incomplete", Kind.STARTED),
        ("browsed", Kind.STARTED),
        ("not attempted", Kind.INFORMATIONAL),
    ],
)
def test_scorm12_lesson_status_maps_to_kinds(status: str, kind: Kind) -> None:
    document = {"cmi.core.lesson_status": status, "cmi.core.score.raw": "70"}

    event = parse_one(request_of(document))

    assert event.kind is kind
    assert event.score == (
        70 if kind in {Kind.PASSED, Kind.COMPLETED, Kind.FAILED} else None
    )
    assert (event.note is not None) == (kind is Kind.INFORMATIONAL)


@pytest.mark.parametrize(
    ("completion", "success", "kind"),
    [
        ("completed", "unknown", Kind.COMPLETED),
        ("incomplete", "passed", Kind.PASSED),
        ("incomplete", "failed", Kind.FAILED),
        ("unknown", "unknown", Kind.INFORMATIONAL),
        ("not attempted", None, Kind.INFORMATIONAL),
    ],
)
def test_scorm2004_success_outranks_completion(
    completion: str, success: str | None, kind: Kind
) -> None:
    cmi = {"completion_status": completion}
    if success is not None:
        cmi["success_status"] = success

    assert parse_one(request_of({"cmi": cmi})).kind is kind


def test_unknown_status_value_is_refused_with_its_path() -> None:
    with pytest.raises(PayloadError) as caught:
        ScormRuntimeAdapter().parse(request_of({"cmi": {"success_status": "great"}}))

    assert caught.value.errors[0]["path"] == "cmi.success_status"


def test_commit_without_any_status_is_refused_listing_where_one_may_be() -> None:
    with pytest.raises(PayloadError) as caught:
        ScormRuntimeAdapter().parse(request_of({"cmi": {"location": "page 3"}}))

    paths = [e["path"] for e in caught.value.errors]
    assert "cmi.core.lesson_status" in paths and "cmi.completion_status" in paths


def test_learner_and_activity_fall_back_to_query_then_options() -> None:
    document = {"cmi.core.lesson_status": "incomplete"}
    options = {"learner": "opt-learner", "course_id": "opt-course"}

    from_query = parse_one(
        request_of(document, query={"learner": "q-learner", "activity": "q-course"}),
        options,
    )
    from_options = parse_one(request_of(document), options)

    assert (from_query.learner.user_id, from_query.activity.course_id) == (
        "q-learner",
        "q-course",
    )
    assert (from_options.learner.user_id, from_options.activity.course_id) == (
        "opt-learner",
        "opt-course",
    )


def test_query_activity_outranks_the_body_course_id() -> None:
    document = {"completionStatus": "completed", "courseId": "body-course"}

    event = parse_one(request_of(document, query={"activity": "q-course"}))

    assert event.activity.course_id == "q-course"


def test_event_id_is_the_explicit_id_or_the_body_hash() -> None:
    with_id = {"id": "commit-77", "cmi.core.lesson_status": "passed"}
    without_id = json.dumps({"cmi.core.lesson_status": "passed"}).encode()

    assert parse_one(request_of(with_id)).event_id == "commit-77"
    assert (
        parse_one(request_of(without_id)).event_id
        == hashlib.sha256(without_id).hexdigest()
    )


def test_other_content_types_get_415() -> None:
    with pytest.raises(UnsupportedMediaError):
        ScormRuntimeAdapter().parse(request_of({}, "application/xml"))


def test_non_string_options_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        ScormRuntimeAdapter({"learner": 5, "course_id": ""})

    assert len(caught.value.problems) == 2
