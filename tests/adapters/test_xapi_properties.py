"""Property tests: the xAPI-family adapters answer anything with a result or a 4xx.

Whatever arrives (any JSON value, any bytes, a real sample with parts
replaced or removed, any form fields), ``parse`` returns an AdapterResult
whose events keep the model's promises, or raises an InboundError. Any
other exception would surface as a 500, which the bridge never gives for
client input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.adapters.base import AdapterResult, InboundRequest
from bridge.adapters.cmi5 import Cmi5Adapter
from bridge.adapters.h5p import H5pAdapter
from bridge.adapters.xapi import XapiAdapter
from bridge.errors import InboundError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ADAPTERS = [XapiAdapter(), Cmi5Adapter(), H5pAdapter()]
SAMPLES = [
    json.loads(path.read_text(encoding="utf-8"))
    for folder in ("xapi", "cmi5", "h5p")
    for path in sorted((FIXTURES / folder).glob("*.json"))
]
# Keys the adapters look at, so generated objects reach deep code paths.
KEYS = [
    "id",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "version",
    "objectType",
    "mbox",
    "mbox_sha1sum",
    "openid",
    "account",
    "homePage",
    "name",
    "display",
    "definition",
    "score",
    "scaled",
    "raw",
    "min",
    "max",
    "success",
    "completion",
    "registration",
    "extensions",
    "contextActivities",
    "parent",
    "category",
    "type",
    "data",
    "statement",
    "member",
    "https://w3id.org/xapi/cmi5/context/extensions/moveon",
    "https://w3id.org/xapi/cmi5/context/extensions/masteryscore",
]
STRINGS = st.sampled_from(
    [
        "Agent",
        "Group",
        "Activity",
        "StatementRef",
        "SubStatement",
        "xAPI",
        "mailto:a@example.com",
        "http://adlnet.gov/expapi/verbs/completed",
        "http://adlnet.gov/expapi/verbs/passed",
        "http://adlnet.gov/expapi/verbs/voided",
        "https://w3id.org/xapi/adl/verbs/satisfied",
        "https://w3id.org/xapi/cmi5/context/categories/cmi5",
        "2024-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2024-01-01T00:00:00-00:00",
        "a1c3f1e2-0b6f-4b59-9a4e-2f1c0d7e9b10",
        "Passed",
        "NotApplicable",
        "undefined?subContentId=1",
    ]
) | st.text(max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | STRINGS
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=6
        )
    ),
    max_leaves=40,
)
HEADERS = st.dictionaries(
    st.just("X-Experience-API-Version"),
    st.sampled_from(["1.0.3", "2.0.0"]) | st.text(max_size=6),
    max_size=1,
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/ld+json",
        "",
    ]
)
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def assert_answers_with_result_or_inbound_error(
    adapter: Any, request: InboundRequest
) -> None:
    try:
        result = adapter.parse(request)
    except InboundError as exc:
        assert 400 <= exc.status < 500
        assert all({"path", "message"} <= set(row) for row in exc.errors)
        return

    assert isinstance(result, AdapterResult)
    assert len(result.statement_ids) == len(result.events)
    for event in result.events:
        assert event.score is None or 0 <= event.score <= 100
        assert event.occurred_at.utcoffset().total_seconds() == 0
        assert isinstance(event.event_id, str) and event.event_id
        json.dumps(event.to_dict(), default=str)


def json_request(value: Any, headers: dict[str, str]) -> InboundRequest:
    body = json.dumps(value).encode()
    return InboundRequest(
        source="prop", body=body, content_type="application/json", headers=headers
    )


@st.composite
def mutated_samples(draw: st.DrawFn) -> Any:
    document = json.loads(json.dumps(draw(st.sampled_from(SAMPLES))))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        document = mutate(draw, document)
    return document


def mutate(draw: st.DrawFn, value: Any) -> Any:
    """Replace, drop or wrap one node reached by a random walk from ``value``."""
    stop_here = draw(st.integers(min_value=0, max_value=5)) == 0
    if not isinstance(value, dict | list) or not value or stop_here:
        return replace_node(draw, value)

    if isinstance(value, list):
        index = draw(st.integers(min_value=0, max_value=len(value) - 1))
        value[index] = mutate(draw, value[index])
        return value

    key = draw(st.sampled_from(sorted(value)))
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        del value[key]
    else:
        value[key] = mutate(draw, value[key])
    return value


def replace_node(draw: st.DrawFn, value: Any) -> Any:
    """Return a new value for a node: alike, any JSON, in an array, as a string."""
    how = draw(st.sampled_from(["alike", "any", "in_array", "as_string"]))
    if how == "alike":
        return draw(alike(value))
    if how == "any":
        return draw(JSON_VALUES)
    if how == "in_array":
        return [value]
    return json.dumps(value)


def alike(value: Any) -> st.SearchStrategy[Any]:
    """Return a strategy for values of the same JSON type as ``value``."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int | float):
        return st.integers(-200, 200) | st.floats(-2, 200, allow_nan=False)
    if isinstance(value, str):
        return STRINGS
    return JSON_VALUES


@PROPERTY_SETTINGS
@given(value=JSON_VALUES, headers=HEADERS)
def test_any_json_value_gives_a_result_or_an_inbound_error(
    value: Any, headers: dict[str, str]
) -> None:
    for adapter in ADAPTERS:
        assert_answers_with_result_or_inbound_error(
            adapter, json_request(value, headers)
        )


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=300), content_type=CONTENT_TYPES)
def test_any_bytes_give_a_result_or_an_inbound_error(
    body: bytes, content_type: str
) -> None:
    request = InboundRequest(source="prop", body=body, content_type=content_type)
    for adapter in ADAPTERS:
        assert_answers_with_result_or_inbound_error(adapter, request)


@PROPERTY_SETTINGS
@given(document=mutated_samples())
def test_mutated_samples_give_a_result_or_an_inbound_error(document: Any) -> None:
    for adapter in ADAPTERS:
        assert_answers_with_result_or_inbound_error(adapter, json_request(document, {}))


@PROPERTY_SETTINGS
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "contentId",
                "score",
                "maxScore",
                "opened",
                "finished",
                "time",
                "user",
                "email",
            ]
        )
        | st.text(max_size=6),
        st.sampled_from(["", "0", "7", "10", "-1", "1e400", "nan", "99999999999999"])
        | st.text(max_size=8),
    ),
    as_body=st.booleans(),
)
def test_any_set_finished_form_gives_a_result_or_an_inbound_error(
    fields: dict[str, str], as_body: bool
) -> None:
    request = InboundRequest(
        source="prop",
        body=urlencode(fields).encode(),
        content_type="application/x-www-form-urlencoded",
        form={} if as_body else fields,
    )
    for options in ({}, {"user_field": "user"}):
        adapter = H5pAdapter(options, clock=lambda: datetime(2024, 1, 1, tzinfo=UTC))
        assert_answers_with_result_or_inbound_error(adapter, request)
