"""Tests of the H5P adapter: forwarded statements and setFinished posts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bridge.adapters.base import InboundRequest
from bridge.adapters.h5p import H5pAdapter
from bridge.adapters.xapi import XapiAdapter
from bridge.errors import ConfigError, PayloadError, UnsupportedMediaError
from bridge.events import Kind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "h5p"
FIXED_NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"
CONTENT = "https://h5p.example.org/h5p/embed/88"
FINISHED_POST = {
    "contentId": "88",
    "score": "3",
    "maxScore": "8",
    "opened": "1700000000",
    "finished": "1700000300",
    "time": "300",
}


def make_adapter(options: dict[str, Any] | None = None) -> H5pAdapter:
    return H5pAdapter(options, clock=lambda: FIXED_NOW)


def parse_json(body: Any, options: dict[str, Any] | None = None):
    request = InboundRequest(
        source="test-source",
        body=json.dumps(body).encode(),
        content_type="application/json",
    )
    return make_adapter(options).parse(request)


def parse_form(fields: dict[str, str], *, as_body: bool = False, options=None):
    request = InboundRequest(
        source="test-source",
        body=urlencode(fields).encode(),
        content_type=FORM,
        form={} if as_body else dict(fields),
    )
    return make_adapter(options).parse(request)


def form_error(fields: dict[str, str], options=None) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse_form(fields, options=options)
    return caught.value


def h5p_statement(name: str, result: dict | None = None, **changes: Any) -> dict:
    body: dict[str, Any] = {
        "actor": {"objectType": "Agent", "account": {"name": "local-uuid-1"}},
        "verb": {"id": f"http://adlnet.gov/expapi/verbs/{name}"},
        "object": {
            "id": CONTENT,
            "objectType": "Activity",
            "definition": {
                "extensions": {"http://h5p.org/x-api/h5p-local-content-id": 88},
                "name": {"en-US": "Quiz"},
            },
        },
    }
    if result is not None:
        body["result"] = result
    body.update(changes)
    return body


def score(raw: int, high: int) -> dict[str, Any]:
    return {
        "score": {"min": 0, "max": high, "raw": raw, "scaled": round(raw / high, 4)}
    }


# --- forwarded statements --------------------------------------------------


def test_top_level_answered_completes_with_its_score() -> None:
    event = parse_json(h5p_statement("answered", score(3, 4))).events[0]
    assert (event.kind, event.score) == (Kind.COMPLETED, 75.0)
    assert event.activity.to_dict() == {
        "iri": CONTENT,
        "content_id": "88",
        "name": "Quiz",
    }


def test_attempted_starts() -> None:
    assert parse_json(h5p_statement("attempted")).events[0].kind is Kind.STARTED


@pytest.mark.parametrize(
    "changes",
    [
        {"context": {"contextActivities": {"parent": [{"id": CONTENT}]}}},
        {"object": {"id": CONTENT + "?subContentId=1a2b"}},
        {
            "object": {
                "id": CONTENT,
                "definition": {
                    "extensions": {"http://h5p.org/x-api/h5p-subContentId": "1a2b"}
                },
            }
        },
    ],
    ids=["parent", "id", "extension"],
)
def test_sub_content_is_informational_even_when_completed(changes: dict) -> None:
    event = parse_json(h5p_statement("completed", score(1, 1), **changes)).events[0]
    assert event.kind is Kind.INFORMATIONAL
    assert event.note == "H5P sub-content completed"


def test_array_of_event_wrappers_is_unwrapped() -> None:
    wrapped = [
        {"type": "xAPI", "data": {"statement": h5p_statement("attempted")}},
        {
            "type": "xAPI",
            "data": {"statement": h5p_statement("completed", score(2, 2))},
        },
    ]
    result = parse_json(wrapped)
    assert [(e.kind, e.score) for e in result.events] == [
        (Kind.STARTED, None),
        (Kind.COMPLETED, 100.0),
    ]
    assert result.events[1].raw == wrapped[1]["data"]["statement"]


def test_errors_inside_a_wrapper_carry_the_wrapper_path() -> None:
    wrapped = [{"type": "xAPI", "data": {"statement": h5p_statement("attempted")}}]
    wrapped[0]["data"]["statement"]["verb"] = "attempted"
    with pytest.raises(PayloadError) as caught:
        parse_json(wrapped)
    assert caught.value.errors[0]["path"] == "[0].data.statement.verb"


def test_wrapper_without_a_statement_is_a_400() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_json({"type": "xAPI", "data": {"other": 1}})
    assert caught.value.errors[0]["path"] == "data.statement"


def test_completed_keeps_its_own_score_over_a_following_scored() -> None:
    batch = [
        h5p_statement("completed", score(1, 4)),
        h5p_statement("scored", score(4, 4)),
    ]
    assert parse_json(batch).events[0].score == 25.0


def test_scored_for_other_content_does_not_lend_its_score() -> None:
    other = h5p_statement("scored", score(4, 4))
    other["object"]["id"] = "https://h5p.example.org/h5p/embed/99"
    other["object"]["definition"]["extensions"] = {}
    event = parse_json([h5p_statement("completed"), other]).events[0]
    assert event.score is None
    assert "score_from" not in event.extra


def test_score_never_crosses_into_the_next_attempt() -> None:
    batch = [
        h5p_statement("completed"),
        h5p_statement("completed"),
        h5p_statement("scored", score(3, 5)),
    ]
    events = parse_json(batch).events
    assert [e.score for e in events] == [None, 60.0, 60.0]
    assert events[1].extra["score_from"] == events[2].event_id


def test_account_without_home_page_is_accepted_here_but_not_by_xapi() -> None:
    body = h5p_statement("attempted")
    request = InboundRequest(
        source="s", body=json.dumps(body).encode(), content_type="application/json"
    )
    assert parse_json(body).events[0].learner.account_name == "local-uuid-1"
    with pytest.raises(PayloadError):
        XapiAdapter().parse(request)


def test_plain_text_is_refused_with_415() -> None:
    request = InboundRequest(source="s", body=b"{}", content_type="text/plain")
    with pytest.raises(UnsupportedMediaError):
        make_adapter().parse(request)


# --- setFinished form ------------------------------------------------------


@pytest.mark.parametrize("as_body", [False, True], ids=["form", "body"])
def test_set_finished_completes_the_content(as_body: bool) -> None:
    result = parse_form(FINISHED_POST, as_body=as_body)
    event = result.events[0]
    assert (event.kind, event.score) == (Kind.COMPLETED, 38)
    assert event.activity.to_dict() == {"content_id": "88"}
    assert event.occurred_at == datetime(2023, 11, 14, 22, 18, 20, tzinfo=UTC)
    assert event.raw == FINISHED_POST
    assert result.statement_ids == [event.event_id]


def test_set_finished_resent_keeps_its_event_id() -> None:
    first = parse_form(FINISHED_POST).events[0].event_id
    assert parse_form(FINISHED_POST).events[0].event_id == first
    later = dict(FINISHED_POST, finished="1700000900")
    assert parse_form(later).events[0].event_id != first


def test_set_finished_without_finished_uses_the_clock() -> None:
    fields = dict(FINISHED_POST, finished="")
    event = parse_form(fields).events[0]
    assert event.occurred_at == FIXED_NOW


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"contentId": ""}, "contentId"),
        ({"score": "seven"}, "score"),
        ({"score": "-1"}, "score"),
        ({"score": "9"}, "score"),
        ({"maxScore": "0"}, "maxScore"),
        ({"maxScore": "inf"}, "maxScore"),
        ({"finished": "soon"}, "finished"),
        ({"finished": "99999999999999999999"}, "finished"),
    ],
)
def test_set_finished_with_a_bad_field_is_a_400(changes: dict, path: str) -> None:
    error = form_error(dict(FINISHED_POST, **changes))
    assert path in {row["path"] for row in error.errors}


def test_set_finished_learner_comes_from_email_and_user_fields() -> None:
    fields = dict(FINISHED_POST, email="Learner@Example.com", user="u-17")
    learner = parse_form(fields).events[0].learner
    assert learner.to_dict() == {"email": "learner@example.com", "user_id": "u-17"}


def test_set_finished_user_field_option_names_a_required_field() -> None:
    options = {"user_field": "elms_user"}
    fields = dict(FINISHED_POST, elms_user="1042", email="x@example.com")
    learner = parse_form(fields, options=options).events[0].learner
    assert learner.to_dict() == {"user_id": "1042"}

    error = form_error(FINISHED_POST, options=options)
    assert error.errors[0]["path"] == "elms_user"


def test_set_finished_without_any_learner_field_has_an_empty_learner() -> None:
    assert parse_form(FINISHED_POST).events[0].learner.to_dict() == {}


def test_set_finished_rounds_halves_up() -> None:
    fields = dict(FINISHED_POST, score="1", maxScore="8")
    assert parse_form(fields).events[0].score == 13


def test_user_field_option_must_be_a_string() -> None:
    with pytest.raises(ConfigError):
        H5pAdapter({"user_field": 3})


def test_fixture_set_finished_body_parses() -> None:
    body = (FIXTURES / "h5p-core-setFinished-form-fields.txt").read_bytes().strip()
    request = InboundRequest(source="s", body=body, content_type=FORM)
    assert make_adapter().parse(request).events[0].score == 75
