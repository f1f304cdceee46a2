"""Tests for the JMESPath-configured generic JSON adapter."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from bridge.adapters.base import InboundRequest
from bridge.adapters.common import canonical_json
from bridge.adapters.generic import GenericAdapter
from bridge.errors import ConfigError, PayloadError, UnsupportedMediaError
from bridge.events import Kind

OPTIONS: dict[str, object] = {
    "learner": {"email": "user.email", "user_id": "user.id"},
    "activity": {"course_id": "course.id", "name": "course.title"},
    "kind": "status",
    "kind_map": {"Done": "completed", "begun": "started"},
    "score": "result.ratio",
    "score_scale": 100,
}


def payload(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "user": {"email": "learner@example.com", "id": 31},
        "course": {"id": "c-9", "title": "Ladders"},
        "status": "Done",
        "result": {"ratio": 0.85},
        "at": "2024-08-09T10:11:12+03:00",
        "ref": "evt-1",
    }
    document.update(changes)
    return document


def request_of(
    document: object, content_type: str = "application/json"
) -> InboundRequest:
    body = json.dumps(document).encode()
    return InboundRequest(source="hook", body=body, content_type=content_type)


def parse(document: object, **extra: object):
    return GenericAdapter({**OPTIONS, **extra}).parse(request_of(document)).events


def refusal(document: object, **extra: object) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse(document, **extra)
    return caught.value


def test_fields_are_found_by_their_expressions() -> None:
    (event,) = parse(payload())

    assert (event.kind, event.score) == (Kind.COMPLETED, 85)
    assert event.learner.to_dict() == {"email": "learner@example.com", "user_id": "31"}
    assert event.activity.to_dict() == {"course_id": "c-9", "name": "Ladders"}
    assert event.source == "hook"
    assert event.raw == payload()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("done", Kind.COMPLETED),
        ("BEGUN", Kind.STARTED),
        ("passed", Kind.PASSED),
        ("Failed", Kind.FAILED),
    ],
)
def test_kind_map_matches_ignoring_case_and_kind_names_map_to_themselves(
    status: str, kind: Kind
) -> None:
    (event,) = parse(payload(status=status))

    assert event.kind is kind


def test_unmapped_kind_value_is_informational_with_a_note_and_no_score() -> None:
    (event,) = parse(payload(status="paused"))

    assert (event.kind, event.score) == (Kind.INFORMATIONAL, None)
    assert "paused" in event.note


def test_missing_kind_is_refused_naming_the_expression() -> None:
    document = payload()
    del document["status"]

    error = refusal(document)

    assert error.errors == [
        {"path": "$", "message": "kind (status): required field is missing"}
    ]


def test_missing_learner_is_refused_listing_each_expression() -> None:
    error = refusal(payload(user={}))

    messages = [e["message"] for e in error.errors]
    assert messages == [
        "learner.email (user.email): missing",
        "learner.user_id (user.id): missing",
    ]


def test_one_learner_handle_is_enough() -> None:
    (event,) = parse(payload(user={"id": "u-1"}))

    assert event.learner.to_dict() == {"user_id": "u-1"}


@pytest.mark.parametrize(
    ("ratio", "expected"), [("0.5", 50), (1.7, 100), (-1, 0), (None, None)]
)
def test_score_is_scaled_and_clamped(ratio: object, expected: float | None) -> None:
    (event,) = parse(payload(result={"ratio": ratio}))

    assert event.score == expected


def test_non_numeric_score_is_refused() -> None:
    error = refusal(payload(result={"ratio": "high"}))

    assert "score (result.ratio)" in error.errors[0]["message"]


def test_default_id_is_the_body_hash_and_time_is_now() -> None:
    request = request_of(payload())
    before = datetime.now(UTC)

    (event,) = GenericAdapter(OPTIONS).parse(request).events

    assert event.event_id == hashlib.sha256(request.body).hexdigest()
    assert before <= event.occurred_at <= datetime.now(UTC)


def test_id_time_and_registration_expressions_are_used() -> None:
    (event,) = parse(payload(attempt=3), id="ref", time="at", registration="attempt")

    assert event.event_id == "evt-1"
    assert event.occurred_at == datetime(2024, 8, 9, 7, 11, 12, tzinfo=UTC)
    assert event.registration == "3"


def test_unix_seconds_are_accepted_as_time() -> None:
    (event,) = parse(payload(at=1700000000), time="at")

    assert event.occurred_at == datetime.fromtimestamp(1700000000, UTC)


@pytest.mark.parametrize("option", ["id", "time"])
def test_configured_id_or_time_missing_is_refused(option: str) -> None:
    error = refusal(payload(), **{option: "nowhere"})

    assert (
        error.errors[0]["message"] == f"{option} (nowhere): required field is missing"
    )


def test_bad_time_is_refused() -> None:
    error = refusal(payload(at="last tuesday"), time="at")

    assert "time (at)" in error.errors[0]["message"]


def test_events_expression_gives_one_event_per_item() -> None:
    items = [payload(status="begun"), payload(status="Done")]

    events = parse({"batch": {"items": items}}, events="batch.items")

    assert [e.kind for e in events] == [Kind.STARTED, Kind.COMPLETED]
    assert [e.event_id for e in events] == [
        hashlib.sha256(canonical_json(item).encode()).hexdigest() for item in items
    ]


def test_item_errors_name_the_item_index() -> None:
    items = [payload(), payload(user=None)]

    error = refusal({"items": items}, events="items")

    assert {e["path"] for e in error.errors} == {"$[1]"}


def test_events_expression_must_find_a_list() -> None:
    error = refusal({"items": {"a": 1}}, events="items")

    assert error.errors[0]["message"] == "events (items): expected a list"


def test_bad_options_are_all_reported_at_start() -> None:
    options = {
        "learner": {"email": "user.[", "phone": "user.phone"},
        "activity": "course.id",
        "kind_map": {"x": "finished"},
        "score": "a |",
        "score_scale": 0,
        "colour": "blue",
    }

    with pytest.raises(ConfigError) as caught:
        GenericAdapter(options)

    problems = caught.value.problems
    assert len(problems) == 8
    assert any("learner.email is not valid JMESPath" in p for p in problems)
    assert any("option kind is required" in p for p in problems)


def test_malformed_json_is_refused_with_line_and_column() -> None:
    request = InboundRequest(
        source="hook", body=b'{\n"a": 1,,\n}', content_type="application/json"
    )

    with pytest.raises(PayloadError) as caught:
        GenericAdapter(OPTIONS).parse(request)

    assert "line 2, column 8" in caught.value.message


def test_other_content_types_get_415() -> None:
    with pytest.raises(UnsupportedMediaError):
        GenericAdapter(OPTIONS).parse(request_of(payload(), "text/csv"))
