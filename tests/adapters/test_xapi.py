"""Tests of the xAPI adapter, and the sample table of the xAPI family.

The table (``tests/fixtures/expectations-xapi.json``) names the outcome of
every xAPI, cmi5 and H5P sample; it is checked against our fixtures and,
where the team's shared sample folder sits beside the repository, against
the original samples too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.adapters.base import InboundRequest
from bridge.adapters.cmi5 import Cmi5Adapter
from bridge.adapters.h5p import H5pAdapter
from bridge.adapters.xapi import XapiAdapter
from bridge.errors import ConfigError, PayloadError, UnsupportedMediaError
from bridge.events import Kind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHARED_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
EXPECTATIONS: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "expectations-xapi.json").read_text(encoding="utf-8")
)
FAMILY = ("xapi", "cmi5", "h5p")
ADAPTERS = {"xapi": XapiAdapter, "cmi5": Cmi5Adapter, "h5p": H5pAdapter}
FIXED_NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
ACTIVITY = "http://example.com/courses/fire-safety"


def fixed_clock() -> datetime:
    return FIXED_NOW


def make_request(body: Any, **kwargs: Any) -> InboundRequest:
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    kwargs.setdefault("content_type", "application/json")
    return InboundRequest(source="test-source", body=body, **kwargs)


def parse(body: Any, options: dict[str, Any] | None = None, **kwargs: Any):
    return XapiAdapter(options, clock=fixed_clock).parse(make_request(body, **kwargs))


def rejection(body: Any, **kwargs: Any) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse(body, **kwargs)
    return caught.value


def error_paths(error: PayloadError) -> set[str]:
    return {row["path"] for row in error.errors}


def statement(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "actor": {"objectType": "Agent", "mbox": "mailto:Learner.One@Example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {
            "id": ACTIVITY,
            "definition": {"name": {"en-GB": "Fire safety", "de": "Brandschutz"}},
        },
    }
    body.update(changes)
    return body


def verb(name: str) -> dict[str, str]:
    return {"id": f"http://adlnet.gov/expapi/verbs/{name}"}


# --- the sample table -----------------------------------------------------


def request_bodies(path: Path, spec: dict[str, Any]) -> list[bytes]:
    raw = path.read_bytes()
    if spec.get("body") == "last_line":
        return [raw.decode("utf-8").strip().splitlines()[-1].encode()]
    if "parts" in spec:
        document = json.loads(raw)
        return [json.dumps(document[part]).encode() for part in spec["parts"]]
    return [raw]


def assert_event_matches(event: Any, expected: dict[str, Any]) -> None:
    assert event.kind.value == expected["kind"]
    assert event.score == expected["score"]
    assert event.source == "test-source"
    assert event.occurred_at.utcoffset().total_seconds() == 0

    if "note" in expected:
        assert expected["note"] in event.note
    if "event_id" in expected:
        assert event.event_id == expected["event_id"]
    if "occurred_at" in expected:
        assert event.occurred_at.isoformat() == expected["occurred_at"]
    for name in ("extra", "learner", "activity"):
        actual = getattr(event, name)
        actual = actual if isinstance(actual, dict) else actual.to_dict()
        for key, value in expected.get(name, {}).items():
            assert actual.get(key) == value, f"{name}.{key}"


def check_outcome(path: Path, spec: dict[str, Any], events: list[dict]) -> None:
    adapter = ADAPTERS[spec["format"]](clock=fixed_clock)
    for body in request_bodies(path, spec):
        request = make_request(
            body, content_type=spec["content_type"], headers=spec.get("headers", {})
        )
        if spec.get("rejects"):
            with pytest.raises(PayloadError) as caught:
                adapter.parse(request)
            assert caught.value.status == spec["status"]
            assert set(spec["paths"]) <= error_paths(caught.value)
            continue

        result = adapter.parse(request)
        assert len(result.events) == len(events)
        for event, expected in zip(result.events, events, strict=True):
            assert_event_matches(event, expected)
        assert result.statement_ids == [e.event_id for e in result.events]


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_fixture_gives_the_outcome_its_expectation_names(name: str) -> None:
    spec = EXPECTATIONS[name]
    check_outcome(FIXTURES / name, spec, spec.get("events", []))


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_shared_sample_gives_the_outcome_its_index_row_names(name: str) -> None:
    if not SHARED_SAMPLES.is_dir():
        pytest.skip("the team's shared sample folder is not beside the repository")
    spec = EXPECTATIONS[name]
    events = spec.get("shared_sample", spec).get("events", [])
    check_outcome(SHARED_SAMPLES / name, spec, events)


def test_every_shared_sample_of_the_family_has_an_expectation() -> None:
    if not SHARED_SAMPLES.is_dir():
        pytest.skip("the team's shared sample folder is not beside the repository")
    samples = {
        f"{folder}/{path.name}"
        for folder in FAMILY
        for path in (SHARED_SAMPLES / folder).iterdir()
    }
    assert samples == set(EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_expectation_documents_origin_and_copies_are_unchanged(name: str) -> None:
    spec = EXPECTATIONS[name]
    assert spec["why"].strip()
    assert spec["origin"] in ("sample", "own")
    assert name.split("/")[0] == spec["format"]

    if spec["origin"] == "sample" and SHARED_SAMPLES.is_dir():
        shared = (SHARED_SAMPLES / name).read_bytes()
        assert (FIXTURES / name).read_bytes() == shared
    if spec["origin"] == "own" and SHARED_SAMPLES.is_dir():
        shared = (SHARED_SAMPLES / name).read_bytes()
        assert (FIXTURES / name).read_bytes() != shared


# --- body, media type and version -----------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/statement+json"]
)
def test_json_media_types_are_accepted(content_type: str) -> None:
    result = parse(statement(), content_type=content_type)
    assert [e.kind for e in result.events] == [Kind.COMPLETED]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", ""]
)
def test_other_media_types_are_refused_with_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaError) as caught:
        parse(statement(), content_type=content_type)
    assert caught.value.status == 415


def test_malformed_json_error_names_line_and_column() -> None:
    error = rejection(b'{\n  "actor": ,\n  "verb": {}\n}')
    assert error.message.startswith("malformed JSON at line 2, column 12")
    assert error.errors[0]["path"] == "$"


def test_body_that_is_not_utf8_is_a_400() -> None:
    error = rejection('{"actor": "Jürgen"}'.encode("latin-1"))
    assert "UTF-8" in error.message
    assert error.errors[0]["message"].startswith("byte 12")


def test_nan_literal_is_refused_as_malformed_json() -> None:
    body = json.dumps(statement(result={"score": {"scaled": float("nan")}}))
    error = rejection(body.encode())
    assert "NaN" in error.errors[0]["message"]


@pytest.mark.parametrize("body", ["a string", 42, None, True])
def test_body_that_is_neither_object_nor_array_is_a_400(body: Any) -> None:
    assert error_paths(rejection(body)) == {"$"}


@pytest.mark.parametrize(
    "version", ["1.0", "1.0.0", "1.0.1", "1.0.2", "1.0.3", "2.0.0"]
)
def test_supported_version_headers_are_accepted(version: str) -> None:
    result = parse(statement(), headers={"X-Experience-API-Version": version})
    assert len(result.events) == 1


@pytest.mark.parametrize("version", ["0.9", "0.95", "1.1.0", "2.0", "3.0.0", ""])
def test_unsupported_version_header_is_a_400(version: str) -> None:
    error = rejection(statement(), headers={"x-experience-api-version": version})
    assert error_paths(error) == {"headers.X-Experience-API-Version"}


# --- validation: strict where the spec says MUST ---------------------------


@pytest.mark.parametrize(
    ("result", "path"),
    [
        ({"score": {"scaled": "0.5"}}, "result.score.scaled"),
        ({"score": {"raw": "5", "max": 10}}, "result.score.raw"),
        ({"score": {"scaled": True}}, "result.score.scaled"),
        ({"completion": "true"}, "result.completion"),
        ({"success": 1}, "result.success"),
        ({"score": {"scaled": -1.5}}, "result.score.scaled"),
        ({"score": {"raw": 5, "min": 10, "max": 10}}, "result.score.min"),
        ({"score": {"raw": 1, "min": 2, "max": 10}}, "result.score.raw"),
    ],
)
def test_result_breaking_a_must_is_a_400_at_its_path(result: dict, path: str) -> None:
    assert path in error_paths(rejection(statement(result=result)))


@pytest.mark.parametrize(
    "timestamp",
    ["2024-01-01T10:00:00-00:00", "2024-01-01T10:00:00-0000", "2024-01-01T10:00:00-00"],
)
def test_negative_zero_offsets_are_refused(timestamp: str) -> None:
    assert error_paths(rejection(statement(timestamp=timestamp))) == {"timestamp"}


def test_timestamp_is_converted_to_utc() -> None:
    result = parse(statement(timestamp="2024-01-01T10:00:00.250+02:00"))
    occurred = result.events[0].occurred_at
    assert occurred == datetime(2024, 1, 1, 8, 0, 0, 250000, tzinfo=UTC)
    assert occurred.tzinfo is UTC


def test_missing_id_and_timestamp_are_assigned() -> None:
    result = parse([statement(), statement(id="0A1B2C3D-0000-0000-0000-000000000001")])
    first, second = result.events
    assert first.occurred_at == FIXED_NOW
    assert len(first.event_id) == 36 and first.event_id[14] == "4"
    assert second.event_id == "0a1b2c3d-0000-0000-0000-000000000001"  # canonical case
    assert second.raw["id"] == second.event_id
    assert result.statement_ids == [first.event_id, second.event_id]


def test_one_invalid_statement_rejects_the_batch_with_indexed_paths() -> None:
    bad = statement(result={"score": {"scaled": 2}}, actor={"objectType": "Group"})
    error = rejection([statement(), bad, "not a statement"])
    assert error_paths(error) == {"[1].result.score.scaled", "[1].actor", "[2]"}
    assert "no statement was applied" in error.message


def test_group_actor_error_says_why() -> None:
    error = rejection([statement(actor={"objectType": "Group", "member": []})])
    assert error.errors == [
        {
            "path": "[0].actor",
            "message": "a Group cannot be mapped to one learner; "
            "send one statement per Agent",
        }
    ]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        (
            {"actor": {"mbox": "mailto:a@example.com", "openid": "http://o.example"}},
            "actor",
        ),
        ({"actor": {"name": "nobody"}}, "actor"),
        ({"actor": {"account": {"name": "7"}}}, "actor.account.homePage"),
        ({"verb": "completed"}, "verb"),
        ({"verb": {"display": {"en": "did"}}}, "verb.id"),
        ({"object": {"id": "not an iri"}}, "object.id"),
        ({"object": {"objectType": "Robot", "id": ACTIVITY}}, "object.objectType"),
        ({"id": "not-a-uuid"}, "id"),
        ({"version": "0.95"}, "version"),
        ({"context": {"registration": "nope"}}, "context.registration"),
        (
            {
                "context": {
                    "contextActivities": {"parent": [{"objectType": "Activity"}]}
                }
            },
            "context.contextActivities.parent[0].id",
        ),
    ],
)
def test_statement_breaking_a_must_is_a_400_at_its_path(
    changes: dict, path: str
) -> None:
    assert path in error_paths(rejection(statement(**changes)))


@pytest.mark.parametrize("missing", ["actor", "verb", "object"])
def test_missing_required_property_is_a_400(missing: str) -> None:
    body = statement()
    del body[missing]
    assert error_paths(rejection(body)) == {missing}


def test_duplicate_ids_in_a_batch_are_refused_case_insensitively() -> None:
    one = "a1c3f1e2-0b6f-4b59-9a4e-2f1c0d7e9b10"
    error = rejection([statement(id=one), statement(id=one.upper())])
    assert error_paths(error) == {"[1].id"}


def test_voided_verb_needs_a_statement_ref_object() -> None:
    error = rejection(statement(verb=verb("voided")))
    assert error_paths(error) == {"object.objectType"}


# --- validation: lenient where producers deviate from SHOULDs --------------


def test_unknown_properties_and_xapi20_additions_are_accepted() -> None:
    body = statement(custom={"x": 1}, context={"contextGroups": [{"any": "thing"}]})
    body["object"]["definition"]["interactionType"] = "choice"
    result = parse(body)
    assert result.events[0].raw["custom"] == {"x": 1}


def test_h5p_sub_content_id_that_is_no_iri_is_informational() -> None:
    body = statement(object={"id": "undefined?subContentId=0a9b8c7d"})
    event = parse(body).events[0]
    assert event.kind is Kind.INFORMATIONAL
    assert "sub-content" in event.note


# --- mapping ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("launched", Kind.STARTED),
        ("initialized", Kind.STARTED),
        ("attempted", Kind.STARTED),
        ("resumed", Kind.STARTED),
        ("progressed", Kind.STARTED),
        ("experienced", Kind.STARTED),
        ("completed", Kind.COMPLETED),
        ("passed", Kind.PASSED),
        ("failed", Kind.FAILED),
        ("terminated", Kind.INFORMATIONAL),
        ("suspended", Kind.INFORMATIONAL),
        ("answered", Kind.INFORMATIONAL),
        ("scored", Kind.INFORMATIONAL),
        ("shared", Kind.INFORMATIONAL),
    ],
)
def test_verb_maps_to_kind(name: str, kind: Kind) -> None:
    event = parse(statement(verb=verb(name))).events[0]
    assert event.kind is kind
    assert (event.note is None) == (kind is not Kind.INFORMATIONAL)


def test_abandoned_under_the_w3id_namespace_ends_a_session() -> None:
    body = statement(verb={"id": "https://w3id.org/xapi/adl/verbs/abandoned"})
    event = parse(body).events[0]
    assert (event.kind, event.note) == (
        Kind.INFORMATIONAL,
        "verb abandoned ends a session",
    )


def test_completion_true_completes_a_top_level_activity_whatever_the_verb() -> None:
    body = statement(verb=verb("terminated"), result={"completion": True})
    assert parse(body).events[0].kind is Kind.COMPLETED


def test_completion_true_on_a_child_activity_is_informational() -> None:
    parent = {"contextActivities": {"parent": {"id": "http://example.com/course"}}}
    body = statement(verb=verb("answered"), result={"completion": True}, context=parent)
    event = parse(body).events[0]
    assert (event.kind, event.note) == (
        Kind.INFORMATIONAL,
        "completion of a child activity",
    )
    assert event.extra["parents"] == ["http://example.com/course"]


def test_failed_is_emitted_as_failed_with_the_source_policy() -> None:
    event = parse(
        statement(verb=verb("failed")), {"failed_policy": "completed"}
    ).events[0]
    assert event.kind is Kind.FAILED
    assert event.extra["failed_policy"] == "completed"


def test_unknown_failed_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        XapiAdapter({"failed_policy": "sometimes"})
    assert caught.value.problems == [
        "xapi: failed_policy must be one of started, completed, informational."
    ]


def test_object_that_is_not_an_activity_is_informational() -> None:
    target = {"objectType": "Agent", "mbox": "mailto:peer@example.com"}
    event = parse(statement(object=target)).events[0]
    assert (event.kind, event.note) == (Kind.INFORMATIONAL, "object is a Agent")


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ({"scaled": 0.8567}, 85.67),
        ({"scaled": -0.5, "raw": 10, "min": 0, "max": 100}, 0.0),
        ({"raw": 30, "min": 10, "max": 50}, 50.0),
        ({"raw": 2, "min": 0, "max": 3}, 66.67),
        ({"raw": 4, "max": 5}, 80.0),
        ({"raw": 42}, 42.0),
        ({"raw": 250}, None),
        ({"raw": -3, "min": -5}, None),
        ({}, None),
    ],
)
def test_score_is_normalised_to_percent(score: dict, expected: float | None) -> None:
    assert parse(statement(result={"score": score})).events[0].score == expected


def test_learner_activity_and_registration_are_read() -> None:
    registration = "ec531277-b57b-4c15-8d91-d292c5b2b8f7"
    event = parse(statement(context={"registration": registration})).events[0]
    assert event.learner.email == "learner.one@example.com"
    assert event.activity.to_dict() == {"iri": ACTIVITY, "name": "Fire safety"}
    assert event.registration == registration
    assert event.extra["verb"] == "http://adlnet.gov/expapi/verbs/completed"


def test_mbox_sha1sum_is_kept_lower_case() -> None:
    actor = {"mbox_sha1sum": "D9EE0A338F8D9FFB2295A2C131A3B1A65B763F6F"}
    learner = parse(statement(actor=actor)).events[0].learner
    assert learner.mbox_sha1 == "d9ee0a338f8d9ffb2295a2c131a3b1a65b763f6f"


def test_raw_keeps_the_statement_as_sent() -> None:
    body = statement(result={"score": {"scaled": 0.5}, "extensions": {"x:y": 1}})
    assert parse(body).events[0].raw == body
