"""Tests of the cmi5 adapter: defined-statement rules, options and moveOn."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from bridge.adapters.base import InboundRequest
from bridge.adapters.cmi5 import (
    MOVE_ON_EXTENSION,
    Cmi5Adapter,
    is_move_on_satisfied,
)
from bridge.errors import ConfigError, PayloadError
from bridge.events import Kind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cmi5"
MASTERY_PATH = (
    "context.extensions.https://w3id.org/xapi/cmi5/context/extensions/masteryscore"
)
REGISTRATION_A = "b22893ae-a13e-406f-abb6-fd463ed7c645"
REGISTRATION_B = "5ed2d7f2-7fd0-47c9-bf6c-b856de31ee45"


def sample(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def without_id(name: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(sample(name))
    del body["id"]
    body.update(changes)
    return body


def in_registration(body: dict[str, Any], registration: str) -> dict[str, Any]:
    body["context"]["registration"] = registration
    return body


def parse(body: Any, options: dict[str, Any] | None = None):
    adapter = Cmi5Adapter(options, clock=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    request = InboundRequest(
        source="test-source",
        body=json.dumps(body).encode(),
        content_type="application/json",
    )
    return adapter.parse(request)


def error_paths(body: Any) -> set[str]:
    with pytest.raises(PayloadError) as caught:
        parse(body)
    return {row["path"] for row in caught.value.errors}


# --- is_move_on_satisfied --------------------------------------------------

OUTCOMES = (Kind.COMPLETED, Kind.PASSED)
ALL_SEEN = [set(c) for n in range(3) for c in combinations(OUTCOMES, n)]


@pytest.mark.parametrize("seen", ALL_SEEN, ids=lambda s: "+".join(sorted(s)) or "none")
@pytest.mark.parametrize(
    ("move_on", "rule"),
    [
        ("Passed", lambda s: Kind.PASSED in s),
        ("Completed", lambda s: Kind.COMPLETED in s),
        ("CompletedAndPassed", lambda s: s == {Kind.COMPLETED, Kind.PASSED}),
        ("CompletedOrPassed", lambda s: bool(s)),
        ("NotApplicable", lambda s: True),
    ],
)
def test_move_on_satisfaction_follows_cmi5_13_1_4(
    move_on: str, rule: Any, seen: set[Kind]
) -> None:
    assert is_move_on_satisfied(move_on, seen | {Kind.STARTED}) is rule(seen)


def test_failed_alone_satisfies_only_not_applicable() -> None:
    satisfied = [
        m
        for m in (
            "Passed",
            "Completed",
            "CompletedAndPassed",
            "CompletedOrPassed",
            "NotApplicable",
        )
        if is_move_on_satisfied(m, {Kind.FAILED})
    ]
    assert satisfied == ["NotApplicable"]


def test_unknown_move_on_is_never_satisfied() -> None:
    assert is_move_on_satisfied("Whenever", {Kind.COMPLETED, Kind.PASSED}) is False


# --- options ---------------------------------------------------------------


def test_defaults_are_completed_or_passed_and_trusting_the_lms() -> None:
    adapter = Cmi5Adapter()
    assert adapter.default_move_on == "CompletedOrPassed"
    assert adapter.trust_lms_satisfied is True
    assert adapter.failed_policy == "started"


def test_every_option_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        Cmi5Adapter(
            {
                "default_move_on": "passed",
                "trust_lms_satisfied": "yes",
                "failed_policy": "maybe",
            }
        )
    assert len(caught.value.problems) == 3
    assert "default_move_on" in caught.value.problems[1]
    assert "trust_lms_satisfied" in caught.value.problems[2]


def test_untrusted_satisfied_is_informational_but_marked() -> None:
    body = sample("satisfied-course-lms.json")
    event = parse(body, {"trust_lms_satisfied": False}).events[0]
    assert event.kind is Kind.INFORMATIONAL
    assert event.extra["satisfied"] is True
    assert event.extra["move_on_satisfied"] is False


def test_default_move_on_applies_without_a_launched_statement() -> None:
    body = sample("completed.json")
    event = parse(body, {"default_move_on": "Passed"}).events[0]
    assert event.extra["move_on"] == "Passed"
    assert event.extra["move_on_satisfied"] is False


# --- defined-statement rules -----------------------------------------------


def test_actor_without_account_is_a_400() -> None:
    body = sample("initialized.json")
    body["actor"] = {"objectType": "Agent", "mbox": "mailto:learner@example.com"}
    assert error_paths(body) == {"actor"}


def test_completed_with_a_score_is_a_400() -> None:
    body = sample("completed.json")
    body["result"]["score"] = {"scaled": 0.8}
    assert error_paths(body) == {"result.score"}


def test_passed_below_the_mastery_score_is_a_400() -> None:
    body = sample("passed-score094-mastery09.json")
    body["result"]["score"] = {"scaled": 0.85, "raw": 85, "min": 0, "max": 100}
    assert error_paths([body]) == {"[0].result.score.scaled"}


def test_failed_at_the_mastery_score_is_a_400() -> None:
    body = sample("passed-score094-mastery09.json")
    body["verb"]["id"] = "http://adlnet.gov/expapi/verbs/failed"
    body["result"]["success"] = False
    body["result"]["score"] = {"scaled": 0.9}
    assert error_paths(body) == {"result.score.scaled"}


def test_mastery_score_that_is_not_a_number_is_a_400() -> None:
    body = sample("passed-score094-mastery09.json")
    body["context"]["extensions"][
        "https://w3id.org/xapi/cmi5/context/extensions/masteryscore"
    ] = "0.9"
    assert error_paths(body) == {MASTERY_PATH}


def test_passed_without_a_mastery_score_keeps_its_score() -> None:
    body = sample("passed-score094-mastery09.json")
    del body["context"]["extensions"][
        "https://w3id.org/xapi/cmi5/context/extensions/masteryscore"
    ]
    event = parse(body).events[0]
    assert (event.kind, event.score) == (Kind.PASSED, 94.0)


def test_cmi5_category_with_a_verb_cmi5_does_not_define_is_a_400() -> None:
    body = sample("initialized.json")
    body["verb"]["id"] = "http://adlnet.gov/expapi/verbs/progressed"
    assert error_paths(body) == {"verb.id"}


def test_launched_with_a_move_on_outside_cmi5_is_a_400() -> None:
    body = sample("launched-lms-moveon-passed-mastery09.json")
    body["context"]["extensions"][MOVE_ON_EXTENSION] = "Sometimes"
    assert error_paths(body) == {f"context.extensions.{MOVE_ON_EXTENSION}"}


def test_waived_completes_and_satisfies_any_move_on() -> None:
    body = sample("satisfied-course-lms.json")
    body["verb"]["id"] = "https://w3id.org/xapi/adl/verbs/waived"
    event = parse(body, {"default_move_on": "CompletedAndPassed"}).events[0]
    assert event.kind is Kind.COMPLETED
    assert event.extra["move_on_satisfied"] is True


def test_allowed_statement_cannot_complete() -> None:
    body = sample("allowed-statement.json")
    body["verb"]["id"] = "http://adlnet.gov/expapi/verbs/completed"
    event = parse(body).events[0]
    assert event.kind is Kind.INFORMATIONAL
    assert "§7.1.3" in event.note
    assert event.extra["allowed_outcome"] == "completed"
    assert event.extra["move_on_satisfied"] is False


# --- moveOn within one batch -----------------------------------------------


def test_batch_tracks_move_on_per_registration() -> None:
    launched = without_id("launched-lms-moveon-passed-mastery09.json")
    launched["context"]["extensions"][MOVE_ON_EXTENSION] = "CompletedAndPassed"
    batch = [
        without_id("passed-score094-mastery09.json"),
        launched,
        in_registration(without_id("completed.json"), REGISTRATION_A),
        in_registration(without_id("completed.json"), REGISTRATION_B),
        without_id("terminated.json"),
    ]

    events = parse(batch).events

    assert [e.extra["move_on"] for e in events] == [
        "CompletedAndPassed",
        "CompletedAndPassed",
        "CompletedAndPassed",
        "CompletedOrPassed",
        "CompletedAndPassed",
    ]
    assert [e.extra["move_on_satisfied"] for e in events] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert "launched_move_on" not in events[1].extra


def test_launched_hands_on_move_on_and_mastery_score() -> None:
    event = parse(sample("launched-lms-moveon-passed-mastery09.json")).events[0]
    assert event.kind is Kind.STARTED
    assert event.extra["move_on"] == "Passed"
    assert event.extra["mastery_score"] == 0.9
    assert event.registration == REGISTRATION_A
