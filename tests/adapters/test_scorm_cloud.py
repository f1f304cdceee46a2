"""Tests for the SCORM Cloud postback and Engine webhook adapter."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from bridge.adapters.base import InboundRequest
from bridge.adapters.scorm_cloud import ScormCloudAdapter
from bridge.errors import ConfigError, PayloadError, UnsupportedMediaError
from bridge.events import Kind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scorm-cloud"
FORM = "application/x-www-form-urlencoded"
REPORT = """<?xml version="1.0" encoding="utf-8" ?>
<rsp stat="ok">
<registrationreport format="course" regid="reg-7" instanceid="0">
  <complete>{complete}</complete>
  <success>{success}</success>
  <totaltime>60</totaltime>
  <score>{score}</score>
</registrationreport>
</rsp>
"""


def xml_request(text: str, content_type: str = "text/xml") -> InboundRequest:
    return InboundRequest(source="cloud", body=text.encode(), content_type=content_type)


def json_request(document: object) -> InboundRequest:
    body = json.dumps(document).encode()
    return InboundRequest(source="cloud", body=body, content_type="application/json")


def registration(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "id": "reg-42",
        "instance": 0,
        "registrationCompletion": "COMPLETED",
        "registrationSuccess": "PASSED",
        "score": {"scaled": 85},
        "updated": "2024-05-01T12:00:00.000Z",
        "course": {"id": "course-9", "title": "Manual Handling"},
        "learner": {"id": "learner-3", "firstName": "Learner", "lastName": "Three"},
    }
    document.update(changes)
    return document


def parse_one(request: InboundRequest, adapter: ScormCloudAdapter | None = None):
    events = (adapter or ScormCloudAdapter()).parse(request).events
    assert len(events) == 1
    return events[0]


def form_sample_body() -> bytes:
    text = (FIXTURES / "v1-postback-form-urlencoded-body.txt").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    return "\n".join(lines).strip().encode()


def test_form_encoded_sample_completes_with_100_and_keeps_no_password() -> None:
    body = form_sample_body()
    form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    request = InboundRequest(source="cloud", body=body, content_type=FORM, form=form)

    event = parse_one(request)

    assert (event.kind, event.score) == (Kind.PASSED, 100)
    assert event.registration == "8494706484070936189-5641550854418256038"
    assert "postback-secret" not in json.dumps(event.raw)
    assert "<registrationreport" in event.raw


def test_form_body_is_decoded_when_the_form_was_not_filled_in() -> None:
    request = InboundRequest(source="cloud", body=form_sample_body(), content_type=FORM)

    event = parse_one(request)

    assert (event.kind, event.score) == (Kind.PASSED, 100)


def test_form_post_without_data_field_is_refused_naming_data() -> None:
    form = {"username": "u", "password": "p"}
    request = InboundRequest(source="cloud", body=b"", content_type=FORM, form=form)

    with pytest.raises(PayloadError) as caught:
        ScormCloudAdapter().parse(request)

    assert caught.value.errors[0]["path"] == "data"


def test_xml_report_reads_the_same_with_or_without_rsp_wrapper() -> None:
    wrapped = REPORT.format(complete="complete", success="failed", score="40")
    bare = wrapped.split("\n", 2)[2].replace("</rsp>", "")

    first = parse_one(xml_request(wrapped))
    second = parse_one(xml_request(bare, "application/xml"))

    assert (first.kind, first.score) == (Kind.FAILED, 40)
    assert (second.kind, second.score, second.event_id) == (
        first.kind,
        first.score,
        first.event_id,
    )


@pytest.mark.parametrize(
    ("complete", "success", "score", "kind", "expected_score"),
    [
        ("complete", "unknown", "75", Kind.COMPLETED, 75),
        ("Complete", "PASSED", "unknown", Kind.PASSED, None),
        ("incomplete", "unknown", "30", Kind.STARTED, None),
        ("unknown", "unknown", "unknown", Kind.INFORMATIONAL, None),
        ("complete", "passed", "120", Kind.PASSED, 100),
    ],
)
def test_xml_status_pairs_map_to_kinds_and_scores(
    complete: str, success: str, score: str, kind: Kind, expected_score: float | None
) -> None:
    text = REPORT.format(complete=complete, success=success, score=score)

    event = parse_one(xml_request(text))

    assert (event.kind, event.score) == (kind, expected_score)


def test_malformed_xml_is_refused_with_line_and_column() -> None:
    text = "<rsp stat='ok'>\n<registrationreport regid='r'>\n<complete>x</success>"

    with pytest.raises(PayloadError) as caught:
        ScormCloudAdapter().parse(xml_request(text))

    assert "line 3, column" in caught.value.message
    assert caught.value.status == 400


def test_billion_laughs_is_refused_quickly() -> None:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    text = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">{entities}]><r>&l9;</r>'
    )
    started = time.monotonic()

    with pytest.raises(PayloadError) as caught:
        ScormCloudAdapter().parse(xml_request(text))

    assert time.monotonic() - started < 1
    assert "DTD" in caught.value.message


def test_external_entity_is_refused() -> None:
    text = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<registrationreport regid='r'><complete>&x;</complete></registrationreport>"
    )

    with pytest.raises(PayloadError):
        ScormCloudAdapter().parse(xml_request(text))


def test_failed_rsp_status_is_refused() -> None:
    text = '<rsp stat="fail"><err code="100" msg="bad"/></rsp>'

    with pytest.raises(PayloadError) as caught:
        ScormCloudAdapter().parse(xml_request(text))

    assert caught.value.errors[0]["path"] == "rsp.stat"


def test_activity_format_reads_status_from_the_top_activity() -> None:
    text = (FIXTURES / "own-activity-format-incomplete.xml").read_text()

    event = parse_one(xml_request(text))

    assert event.kind is Kind.STARTED
    assert event.extra == {"format": "activity", "instance": "1"}


def test_json_registration_keeps_scaled_score_as_a_percentage() -> None:
    event = parse_one(json_request(registration()))

    assert (event.kind, event.score) == (Kind.PASSED, 85)
    assert event.learner.to_dict() == {"user_id": "learner-3", "name": "Learner Three"}
    assert event.activity.to_dict() == {
        "course_id": "course-9",
        "name": "Manual Handling",
    }
    assert event.registration == "reg-42"
    assert event.occurred_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_json_enums_compare_case_insensitively() -> None:
    document = registration(
        registrationCompletion="Completed", registrationSuccess="failed"
    )

    event = parse_one(json_request(document))

    assert (event.kind, event.score) == (Kind.FAILED, 85)


def test_incomplete_registration_starts_without_a_score() -> None:
    event = parse_one(json_request(registration(registrationCompletion="INCOMPLETE")))

    assert (event.kind, event.score) == (Kind.STARTED, None)


@pytest.mark.parametrize("scaled", ["unknown", "NaN", "", None, "abc"])
def test_scores_that_are_not_numbers_become_none(scaled: object) -> None:
    event = parse_one(json_request(registration(score={"scaled": scaled})))

    assert (event.kind, event.score) == (Kind.PASSED, None)


def test_unknown_completion_value_is_refused_with_its_path() -> None:
    with pytest.raises(PayloadError) as caught:
        ScormCloudAdapter().parse(
            json_request(registration(registrationCompletion="DONE"))
        )

    assert caught.value.errors[0]["path"] == "registrationCompletion"


def test_missing_registration_id_is_refused() -> None:
    document = registration()
    del document["id"]

    with pytest.raises(PayloadError) as caught:
        ScormCloudAdapter().parse(json_request(document))

    assert caught.value.errors[0]["path"] == "id"


def test_repeated_state_gives_the_same_event_id_and_a_new_score_a_new_one() -> None:
    first = parse_one(json_request(registration()))
    again = parse_one(json_request(registration(updated="2024-06-01T00:00:00Z")))
    rescored = parse_one(json_request(registration(score={"scaled": 90})))

    assert first.event_id == again.event_id == "reg-42:completed:passed:85"
    assert rescored.event_id != first.event_id


def test_webhook_envelope_uses_payload_id_and_its_timestamp() -> None:
    envelope = {
        "payloadId": "payload-1",
        "topic": "RegistrationChanged",
        "timestamp": "2024-07-01T08:30:00+02:00",
        "body": registration(),
    }

    event = parse_one(json_request(envelope))

    assert event.event_id == "payload-1"
    assert event.occurred_at == datetime(2024, 7, 1, 6, 30, tzinfo=UTC)
    assert event.extra["topic"] == "RegistrationChanged"


def test_envelope_errors_name_the_body_path() -> None:
    envelope = {"payloadId": "p", "body": registration(registrationSuccess="MAYBE")}

    with pytest.raises(PayloadError) as caught:
        ScormCloudAdapter().parse(json_request(envelope))

    assert caught.value.errors[0]["path"] == "body.registrationSuccess"


def test_regid_pattern_fills_learner_and_course_of_the_legacy_xml() -> None:
    adapter = ScormCloudAdapter(
        {"regid_pattern": r"(?P<course_id>.+)--(?P<user_id>\d+)"}
    )
    text = REPORT.format(complete="complete", success="passed", score="90")

    event = parse_one(xml_request(text.replace("reg-7", "fire-safety--1234")), adapter)

    assert event.learner.user_id == "1234"
    assert event.activity.course_id == "fire-safety"


def test_regid_pattern_does_not_override_a_named_learner() -> None:
    adapter = ScormCloudAdapter({"regid_pattern": r"(?P<user_id>.+)"})

    event = parse_one(json_request(registration()), adapter)

    assert event.learner.user_id == "learner-3"


def test_bad_regid_patterns_are_refused_at_start() -> None:
    with pytest.raises(ConfigError):
        ScormCloudAdapter({"regid_pattern": "("})
    with pytest.raises(ConfigError) as caught:
        ScormCloudAdapter({"regid_pattern": r"(?P<who>.+)"})

    assert len(caught.value.problems) == 2


def test_malformed_json_is_refused_with_line_and_column() -> None:
    request = InboundRequest(
        source="cloud",
        body=b'{\n  "id": "r",\n  oops\n}',
        content_type="application/json",
    )

    with pytest.raises(PayloadError) as caught:
        ScormCloudAdapter().parse(request)

    assert "line 3, column 3" in caught.value.message


def test_other_content_types_get_415() -> None:
    request = InboundRequest(source="cloud", body=b"{}", content_type="text/plain")

    with pytest.raises(UnsupportedMediaError) as caught:
        ScormCloudAdapter().parse(request)

    assert caught.value.status == 415


def test_form_data_may_carry_the_json_registration() -> None:
    form = {"data": json.dumps(registration())}
    body = urlencode(form).encode()
    request = InboundRequest(source="cloud", body=body, content_type=FORM, form=form)

    event = parse_one(request)

    assert (event.kind, event.score) == (Kind.PASSED, 85)
