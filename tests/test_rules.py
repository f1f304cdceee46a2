"""Progress rules: forward only, any order, each policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.elms_shapes import Status
from bridge.errors import ConfigError
from bridge.rules import Action, PairState, Policy, decide

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NEW = PairState()
STARTED = PairState(Status.IN_PROGRESS)
DONE_80 = PairState(Status.COMPLETED, 80.0, T0)


DEFAULT = Policy()


def apply_all(events, policy=DEFAULT):
    """Apply (kind, score, minutes) events in the order given; return the calls."""
    state, calls = NEW, []
    for kind, score, minutes in events:
        decision = decide(state, kind, score, T0 + timedelta(minutes=minutes), policy)
        if decision.action is not Action.SKIP:
            calls.append((decision.action.value, decision.score))
        state = decision.state
    return state, calls


def test_start_then_complete_makes_two_calls():
    state, calls = apply_all([("started", None, 0), ("completed", 85.0, 5)])

    assert calls == [("start", None), ("complete", 85.0)]
    assert state == PairState(Status.COMPLETED, 85.0, T0 + timedelta(minutes=5))


def test_complete_then_start_keeps_the_completion():
    state, calls = apply_all([("completed", 85.0, 5), ("started", None, 0)])

    assert calls == [("complete", 85.0)]
    assert state.status is Status.COMPLETED


def test_start_after_completion_is_skipped_with_reason():
    decision = decide(DONE_80, "started", None, T0, Policy())

    assert decision.action is Action.SKIP
    assert decision.reason == "start after completion; recorded and skipped"
    assert decision.state == DONE_80


def test_second_start_is_skipped():
    assert decide(STARTED, "started", None, T0, Policy()).action is Action.SKIP


def test_duplicate_completion_keeps_first_score_by_default():
    _, calls = apply_all([("completed", 70.0, 0), ("passed", 95.0, 5)])

    assert calls == [("complete", 70.0)]


def test_best_policy_sends_only_a_higher_score():
    policy = Policy(score="best")
    events = [("completed", 70.0, 0), ("completed", 60.0, 5), ("completed", 90.0, 9)]

    state, calls = apply_all(events, policy)

    assert calls == [("complete", 70.0), ("complete", 90.0)]
    assert state.score == 90.0


def test_latest_policy_follows_occurrence_not_arrival():
    policy = Policy(score="latest")
    events = [("completed", 90.0, 10), ("completed", 60.0, 5)]

    state, calls = apply_all(events, policy)

    assert calls == [("complete", 90.0)]
    assert state.score == 90.0


def test_latest_policy_sends_a_later_different_score():
    policy = Policy(score="latest")

    _, calls = apply_all([("completed", 90.0, 0), ("completed", 60.0, 5)], policy)

    assert calls == [("complete", 90.0), ("complete", 60.0)]


def test_failed_then_passed_starts_then_completes():
    state, calls = apply_all([("failed", 40.0, 0), ("passed", 88.0, 5)])

    assert calls == [("start", None), ("complete", 88.0)]
    assert state.score == 88.0


def test_failed_keeps_its_score_for_the_record_without_sending_it():
    decision = decide(NEW, "failed", 40.0, T0, Policy())

    assert decision.action is Action.START
    assert decision.score is None
    assert decision.state == PairState(Status.IN_PROGRESS, 40.0, None)


def test_failed_policy_completed_completes_with_the_score():
    decision = decide(NEW, "failed", 40.0, T0, Policy(failed="completed"))

    assert (decision.action, decision.score) == (Action.COMPLETE, 40.0)


def test_failed_policy_informational_makes_no_call():
    decision = decide(NEW, "failed", 40.0, T0, Policy(failed="informational"))

    assert decision.action is Action.SKIP


def test_completion_without_score_omits_it_by_default():
    decision = decide(STARTED, "completed", None, T0, Policy())

    assert (decision.action, decision.score) == (Action.COMPLETE, None)


def test_completion_without_score_uses_last_known_when_asked():
    state = PairState(Status.IN_PROGRESS, 94.0)

    decision = decide(state, "completed", None, T0, Policy(no_score="last_known"))

    assert decision.score == 94.0


def test_completion_without_score_uses_fixed_value_when_asked():
    policy = Policy(no_score="fixed", no_score_value=100.0)

    assert decide(NEW, "completed", None, T0, policy).score == 100.0


def test_informational_kinds_make_no_call():
    assert decide(NEW, "informational", None, T0, Policy()).action is Action.SKIP


@pytest.mark.parametrize(
    "order",
    [
        [("started", None, 0), ("failed", 30.0, 1), ("passed", 75.0, 2)],
        [("passed", 75.0, 2), ("failed", 30.0, 1), ("started", None, 0)],
        [("failed", 30.0, 1), ("passed", 75.0, 2), ("started", None, 0)],
    ],
)
def test_any_arrival_order_ends_completed_with_the_pass_score(order):
    state, calls = apply_all(order)

    assert state.status is Status.COMPLETED
    assert state.score == 75.0
    assert calls[-1] == ("complete", 75.0)
    assert calls.count(("complete", 75.0)) == 1


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"score_policy": "max"}, "score_policy must be one of first, best, latest"),
        ({"failed_policy": "ignore"}, "failed_policy must be one of"),
        ({"no_score_policy": "fixed"}, "no_score_value is required"),
        ({"no_score_value": 120}, "no_score_value must be a number from 0 to 100"),
    ],
)
def test_policy_options_are_validated(options, fragment):
    with pytest.raises(ConfigError) as caught:
        Policy.from_options(options)

    assert any(fragment in problem for problem in caught.value.problems)


def test_policy_from_options_reads_each_key():
    policy = Policy.from_options(
        {"score_policy": "best", "no_score_policy": "fixed", "no_score_value": 100}
    )

    assert policy == Policy(score="best", no_score="fixed", no_score_value=100.0)
