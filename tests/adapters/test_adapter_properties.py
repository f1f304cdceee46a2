"""Properties every SCORM, LTI and generic adapter holds, over samples and noise.

Each fixture listed in ``expectations-other.json`` must give its expected
outcome, and any input at all must give an AdapterResult or an InboundError.
"""

from __future__ import annotations

import json
import math
import string
from datetime import UTC
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.adapters.base import AdapterResult, BaseAdapter, InboundRequest
from bridge.adapters.generic import GenericAdapter
from bridge.adapters.lti import LtiAgsAdapter
from bridge.adapters.scorm_cloud import ScormCloudAdapter
from bridge.adapters.scorm_runtime import ScormRuntimeAdapter
from bridge.errors import InboundError
from bridge.events import Kind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTATIONS = json.loads((FIXTURES / "expectations-other.json").read_text())
FORM = "application/x-www-form-urlencoded"

# The samples of INDEX.md for these formats; each needs a fixture and an entry.
INDEX_SAMPLES = {
    "scorm-cloud/v1-postback-registrationreport-course-passed.xml",
    "scorm-cloud/v1-postback-form-urlencoded-body.txt",
    "scorm-cloud/v1-registrationreport-parsed-score-unknown.json",
    "scorm-cloud/engine-api-registration-progress-detail-unknown-mixedcase.json",
    "lti-ags/score-completed-fullygraded-83-of-100.json",
    "lti-ags/canvas-score-completed-fullygraded-with-extension.json",
    "lti-ags/score-initialized-notready-21.json",
    "scorm-runtime/scorm-again-commit-object-2004-passed-085.json",
    "scorm-runtime/scorm-again-scorm12-cmi-json-string-numbers.json",
    "scorm-runtime/scorm-again-scorm12-flattened.json",
    "scorm-runtime/scorm-again-scorm12-params-querystring.txt",
}

GENERIC_OPTIONS = {
    "learner": {"email": "user.email", "user_id": "user.id"},
    "activity": {"course_id": "course.id", "name": "course.title"},
    "kind": "status",
    "kind_map": {"done": "completed"},
    "score": "result",
    "score_scale": 100,
    "time": "at",
}


def make_adapters() -> list[BaseAdapter]:
    """Return one adapter of each format this suite covers."""
    return [
        ScormCloudAdapter(),
        LtiAgsAdapter(),
        ScormRuntimeAdapter(),
        GenericAdapter(GENERIC_OPTIONS),
    ]


ADAPTERS = {adapter.name: adapter for adapter in make_adapters()}


def read_body(name: str) -> bytes:
    """Return a fixture's bytes; ``#`` note lines of ``.txt`` files are dropped."""
    body = (FIXTURES / name).read_bytes()
    if not name.endswith(".txt"):
        return body
    lines = body.decode("utf-8").splitlines()
    return "\n".join(ln for ln in lines if not ln.startswith("#")).strip().encode()


def sample_request(name: str, content_type: str) -> InboundRequest:
    """Return the request that posts fixture ``name`` with ``content_type``."""
    body = read_body(name)
    form = {}
    if content_type == FORM:
        form = dict(parse_qsl(body.decode().lstrip("?"), keep_blank_values=True))
    return InboundRequest(
        source="test-source", body=body, content_type=content_type, form=form
    )


def test_every_index_sample_has_a_fixture_and_an_expectation() -> None:
    samples = {k for k, v in EXPECTATIONS.items() if v["origin"] == "sample"}

    assert samples == INDEX_SAMPLES
    for name in EXPECTATIONS:
        assert (FIXTURES / name).is_file(), name


def test_every_fixture_file_has_an_expectation() -> None:
    found = {
        f"{folder}/{path.name}"
        for folder in ("scorm-cloud", "lti-ags", "scorm-runtime")
        for path in (FIXTURES / folder).iterdir()
        if path.name != "README.md"
    }

    assert found == set(EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_fixture_gives_the_outcome_its_expectation_names(name: str) -> None:
    expected = EXPECTATIONS[name]
    adapter = ADAPTERS[expected["format"]]
    request = sample_request(name, expected["content_type"])

    if expected.get("rejects"):
        with pytest.raises(InboundError) as caught:
            adapter.parse(request)
        assert caught.value.status == expected["status"]
        assert caught.value.errors, "a refusal names the path and the reason"
        return

    result = adapter.parse(request)
    assert len(result.events) == 1
    event = result.events[0]
    assert event.kind == Kind(expected["kind"])
    assert event.score == expected["score"]
    assert event.source == "test-source"
    assert event.event_id


def assert_well_formed(result: AdapterResult) -> None:
    """Fail unless every event holds a known kind, a 0-100 score and UTC time."""
    assert isinstance(result, AdapterResult)
    for event in result.events:
        assert isinstance(event.kind, Kind)
        assert event.event_id and isinstance(event.event_id, str)
        assert event.occurred_at.utcoffset() == UTC.utcoffset(None)
        if event.score is not None:
            assert math.isfinite(event.score) and 0 <= event.score <= 100
        if event.kind is Kind.INFORMATIONAL:
            assert event.note


def parse_or_refuse(adapter: BaseAdapter, request: InboundRequest) -> None:
    """Parse ``request``; only a well-formed result or an InboundError may come."""
    try:
        result = adapter.parse(request)
    except InboundError as exc:
        assert 400 <= exc.status < 500
        return
    assert_well_formed(result)


CONTENT_TYPES = sorted({t for a in ADAPTERS.values() for t in a.content_types})
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["completed", "passed", "COMPLETED", "unknown", "85", ""])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
KEYS = [
    "cmi", "core", "lesson_status", "score", "raw", "scaled", "max", "min",
    "completionStatus", "successStatus", "runtimeData", "cmi.core.lesson_status",
    "cmi.completion_status", "cmi.success_status", "cmi.score.scaled", "id",
    "registrationCompletion", "registrationSuccess", "learner", "course", "body",
    "payloadId", "topic", "regid", "complete", "success", "userId", "scoreGiven",
    "scoreMaximum", "timestamp", "activityProgress", "gradingProgress", "user",
    "status", "result", "at", "email", "title",
]  # fmt: skip
keyed_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=25,
)
xml_ish = st.lists(
    st.sampled_from(
        [
            "<",
            ">",
            "</",
            "/>",
            "<?xml version='1.0'?>",
            '<rsp stat="ok">',
            "</rsp>",
            '<registrationreport regid="r">',
            "</registrationreport>",
            "<complete>",
            "</complete>",
            "complete",
            "<success>",
            "</success>",
            "passed",
            "<score>",
            "</score>",
            "50",
            "&amp;",
            "&x;",
            "<!DOCTYPE a>",
            "<!ENTITY x 'y'>",
            "<activity>",
            "</activity>",
            " ",
            "\u00e9",
            "]]>",
        ]
    )
    | st.text(alphabet=string.printable, max_size=5),
    max_size=30,
).map("".join)
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(
    name=st.sampled_from(sorted(ADAPTERS)),
    document=json_values | keyed_values,
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_any_json_gives_events_or_an_inbound_error(
    name: str, document: object, content_type: str
) -> None:
    body = json.dumps(document).encode()
    request = InboundRequest(source="s", body=body, content_type=content_type)

    parse_or_refuse(ADAPTERS[name], request)


@PROPERTY_SETTINGS
@given(
    name=st.sampled_from(sorted(ADAPTERS)),
    body=st.binary(max_size=300),
    content_type=st.sampled_from([*CONTENT_TYPES, "", "image/png"]),
)
def test_any_bytes_give_events_or_an_inbound_error(
    name: str, body: bytes, content_type: str
) -> None:
    request = InboundRequest(source="s", body=body, content_type=content_type)

    parse_or_refuse(ADAPTERS[name], request)


@PROPERTY_SETTINGS
@given(text=xml_ish, content_type=st.sampled_from(["text/xml", FORM]))
def test_any_xml_ish_text_gives_events_or_an_inbound_error(
    text: str, content_type: str
) -> None:
    form = {"data": text} if content_type == FORM else {}
    body = b"" if form else text.encode()
    request = InboundRequest(
        source="s", body=body, content_type=content_type, form=form
    )

    parse_or_refuse(ADAPTERS["scorm-cloud"], request)


@PROPERTY_SETTINGS
@given(
    name=st.sampled_from(["scorm-cloud", "scorm-runtime"]),
    form=st.dictionaries(
        st.sampled_from(["data", "username", *KEYS]) | st.text(max_size=10),
        st.text(max_size=40) | st.sampled_from(["completed", "{}", "<a/>", "85"]),
        max_size=6,
    ),
)
def test_any_form_gives_events_or_an_inbound_error(
    name: str, form: dict[str, str]
) -> None:
    request = InboundRequest(source="s", body=b"", content_type=FORM, form=form)

    parse_or_refuse(ADAPTERS[name], request)


def mutate(data: bytes, choices: st.DataObject) -> bytes:
    """Return ``data`` with a few bytes deleted, replaced or inserted."""
    buffer = bytearray(data)
    for _ in range(choices.draw(st.integers(1, 4))):
        at = choices.draw(st.integers(0, max(len(buffer) - 1, 0)))
        action = choices.draw(st.sampled_from(["delete", "replace", "insert"]))
        byte = choices.draw(st.sampled_from(b'{}[]<>"\\:,=&%0a9 .-'))
        if action == "delete" and buffer:
            del buffer[at]
        elif action == "replace" and buffer:
            buffer[at] = byte
        else:
            buffer.insert(at, byte)
    return bytes(buffer)


@PROPERTY_SETTINGS
@given(name=st.sampled_from(sorted(EXPECTATIONS)), choices=st.data())
def test_mutated_samples_give_events_or_an_inbound_error(
    name: str, choices: st.DataObject
) -> None:
    expected = EXPECTATIONS[name]
    request = sample_request(name, expected["content_type"])
    body = mutate(request.body, choices)
    form = {"data": mutate(request.form["data"].encode(), choices).decode(
        "utf-8", "replace")} if "data" in request.form else {}  # fmt: skip
    mutated = InboundRequest(
        source="s", body=body, content_type=request.content_type, form=form
    )

    parse_or_refuse(ADAPTERS[expected["format"]], mutated)
