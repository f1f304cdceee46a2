"""Progress rules: which Open ELMS call, if any, an event leads to.

Progress on a (user, learning) pair only moves forward: not attempted ->
in progress -> completed. The decision depends on what the bridge already
applied to that pair, so events applied in any order end in the same
state: a start after a completion is skipped, a completion is never lost.
Pure functions; the dispatcher reads and stores the pair state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.elms_shapes import Status
from bridge.errors import ConfigError

SCORE_POLICIES = ("first", "best", "latest")
FAILED_POLICIES = ("started", "completed", "informational")
NO_SCORE_POLICIES = ("omit", "last_known", "fixed")

COMPLETING_KINDS = frozenset({"completed", "passed"})


class Action(enum.StrEnum):
    """What the dispatcher does for one event."""

    START = "start"
    COMPLETE = "complete"
    SKIP = "skip"


@dataclass(frozen=True)
class PairState:
    """What the bridge applied to a pair: status, score, completion time.

    ``score`` is the last score known for the pair: the completion's score
    once completed, or a score recorded on the way (a failed attempt, a
    passed statement still waiting for its moveOn).
    """

    status: Status = Status.NOT_ATTEMPTED
    score: float | None = None
    completed_event_at: datetime | None = None


@dataclass(frozen=True)
class Policy:
    """A source's choices where the formats leave room.

    Attributes:
        score: on a second completion, ``first`` keeps the first score,
            ``best`` sends a higher one, ``latest`` sends the one that
            occurred last.
        failed: a failed attempt is ``started`` (in progress, score kept
            for the record), ``completed``, or ``informational``.
        no_score: a completion without a score is sent ``omit`` (no score
            in the URL), with the ``last_known`` score of the pair, or with
            a ``fixed`` value.
        no_score_value: the value for ``fixed``.
    """

    score: str = "first"
    failed: str = "started"
    no_score: str = "omit"
    no_score_value: float | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Policy:
        """Return the policy named by a source's options.

        Raises:
            ConfigError: listing each wrong option.
        """
        problems = policy_option_problems(options)
        if problems:
            raise ConfigError(problems)
        value = options.get("no_score_value")
        return cls(
            score=options.get("score_policy", "first"),
            failed=options.get("failed_policy", "started"),
            no_score=options.get("no_score_policy", "omit"),
            no_score_value=None if value is None else float(value),
        )


@dataclass(frozen=True)
class Decision:
    """The call to make (or not), why, and the pair state once it succeeds."""

    action: Action
    score: float | None
    reason: str
    state: PairState


def policy_option_problems(options: dict[str, Any]) -> list[str]:
    """Return a sentence for each wrong policy option of a source."""
    problems = []
    choices = (
        ("score_policy", SCORE_POLICIES),
        ("failed_policy", FAILED_POLICIES),
        ("no_score_policy", NO_SCORE_POLICIES),
    )
    for key, allowed in choices:
        value = options.get(key)
        if value is not None and value not in allowed:
            problems.append(f"{key} must be one of {', '.join(allowed)}; got {value!r}")

    value = options.get("no_score_value")
    fixed = options.get("no_score_policy") == "fixed"
    if value is None and fixed:
        problems.append("no_score_value is required when no_score_policy is fixed")
    valid_number = isinstance(value, int | float) and not isinstance(value, bool)
    if value is not None and not (valid_number and 0 <= value <= 100):
        problems.append(f"no_score_value must be a number from 0 to 100; got {value!r}")
    return problems


def decide(
    state: PairState,
    kind: str,
    score: float | None,
    occurred_at: datetime,
    policy: Policy,
) -> Decision:
    """Return the decision for an event of ``kind`` on a pair in ``state``."""
    if kind == "failed":
        kind = {"started": "started", "completed": "completed"}.get(policy.failed, "")
        if not kind:
            return skip(state, "failed attempt; policy says informational")
        recording = state.status is not Status.COMPLETED and score is not None
        if kind == "started" and recording:
            state = PairState(state.status, score, state.completed_event_at)

    if kind == "started":
        return decide_start(state)
    if kind in COMPLETING_KINDS:
        return decide_completion(state, score, occurred_at, policy)
    return skip(state, f"{kind} events make no Open ELMS call")


def decide_start(state: PairState) -> Decision:
    """Start a pair not yet attempted; anything further along is left alone."""
    if state.status is Status.COMPLETED:
        return skip(state, "start after completion; recorded and skipped")
    if state.status is Status.IN_PROGRESS:
        return skip(state, "already in progress")
    started = PairState(Status.IN_PROGRESS, state.score, None)
    return Decision(Action.START, None, "first start", started)


def decide_completion(
    state: PairState, score: float | None, occurred_at: datetime, policy: Policy
) -> Decision:
    """Complete a pair, or re-complete it when the score policy says so."""
    score = score if score is not None else fill_missing_score(state, policy)
    if state.status is not Status.COMPLETED:
        done = PairState(Status.COMPLETED, score, occurred_at)
        return Decision(Action.COMPLETE, score, "first completion", done)

    if policy.score == "best":
        if score is not None and (state.score is None or score > state.score):
            done = PairState(Status.COMPLETED, score, occurred_at)
            return Decision(Action.COMPLETE, score, "higher score (best)", done)
        return skip(state, "completed again without a higher score (best)")

    if policy.score == "latest":
        earlier = state.completed_event_at
        if earlier is None or occurred_at > earlier:
            if score == state.score:
                return skip(state, "completed again with the same score (latest)")
            done = PairState(Status.COMPLETED, score, occurred_at)
            return Decision(Action.COMPLETE, score, "later completion (latest)", done)
        return skip(state, "an earlier completion than the one applied (latest)")

    return skip(state, "already completed; first score kept")


def fill_missing_score(state: PairState, policy: Policy) -> float | None:
    """Return the score to send for a completion that carries none."""
    if policy.no_score == "last_known":
        return state.score
    if policy.no_score == "fixed":
        return policy.no_score_value
    return None


def skip(state: PairState, reason: str) -> Decision:
    """Return a decision to make no call, leaving the state as it is."""
    return Decision(Action.SKIP, None, reason, state)
