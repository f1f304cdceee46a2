"""Turn cmi5 statements into progress events, applying cmi5's own rules.

cmi5 statements are xAPI statements with extra MUSTs (cmi5 spec §9): the
actor is an Agent identified by ``account``, a completed statement has no
score, a passed one meets the mastery score and a failed one falls short.
"Defined" statements carry the cmi5 category and map by the cmi5 table;
"allowed" statements (no category) map as plain xAPI, except that they
cannot complete, pass or fail anything (§7.1.3) and so stay informational.

Options:
    default_move_on: moveOn used when the batch has no ``launched`` statement
        for a registration; one of Passed, Completed, CompletedAndPassed,
        CompletedOrPassed, NotApplicable. Default CompletedOrPassed.
    trust_lms_satisfied: whether an LMS ``satisfied`` statement completes
        (True, the default) or stays informational.
    failed_policy: as for xAPI.

Every event carries ``extra["move_on"]`` and ``extra["move_on_satisfied"]``,
the latter computed from the kinds seen so far in the same batch for the
same registration; satisfaction across requests is the store's business.
"""

from __future__ import annotations

from typing import Any

from bridge.adapters.common import error, join_path
from bridge.adapters.xapi import Outcome, XapiAdapter, short_verb
from bridge.events import Kind, ProgressEvent

CMI5_CATEGORY = "https://w3id.org/xapi/cmi5/context/categories/cmi5"
EXTENSIONS = "https://w3id.org/xapi/cmi5/context/extensions/"
MOVE_ON_EXTENSION = EXTENSIONS + "moveon"
MASTERY_EXTENSION = EXTENSIONS + "masteryscore"

MOVE_ON_VALUES = (
    "Passed",
    "Completed",
    "CompletedAndPassed",
    "CompletedOrPassed",
    "NotApplicable",
)
DEFAULT_MOVE_ON = "CompletedOrPassed"
DEFAULT_TRUST_LMS_SATISFIED = True

DEFINED_KINDS = {
    "launched": Kind.STARTED,
    "initialized": Kind.STARTED,
    "completed": Kind.COMPLETED,
    "passed": Kind.PASSED,
    "failed": Kind.FAILED,
    "waived": Kind.COMPLETED,
    "terminated": Kind.INFORMATIONAL,
    "abandoned": Kind.INFORMATIONAL,
    "satisfied": Kind.COMPLETED,
}
OUTCOME_KINDS = frozenset({Kind.COMPLETED, Kind.PASSED, Kind.FAILED})


def is_move_on_satisfied(move_on: str, seen: set[Kind]) -> bool:
    """Return whether the kinds seen for a registration satisfy ``move_on``.

    Implements cmi5 §13.1.4: Passed needs a pass, Completed a completion,
    CompletedAndPassed both, CompletedOrPassed either; NotApplicable is
    satisfied from the start. An unknown value is never satisfied.
    """
    passed = Kind.PASSED in seen
    completed = Kind.COMPLETED in seen
    rules = {
        "Passed": passed,
        "Completed": completed,
        "CompletedAndPassed": completed and passed,
        "CompletedOrPassed": completed or passed,
        "NotApplicable": True,
    }
    return rules.get(move_on, False)


class Cmi5Adapter(XapiAdapter):
    """Read cmi5 statements posted as JSON, one or an array per request."""

    option_keys = frozenset({"failed_policy", "default_move_on", "trust_lms_satisfied"})

    name = "cmi5"

    def __init__(self, options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        options = dict(options or {})
        self.default_move_on = options.get("default_move_on", DEFAULT_MOVE_ON)
        self.trust_lms_satisfied = options.get(
            "trust_lms_satisfied", DEFAULT_TRUST_LMS_SATISFIED
        )
        super().__init__(options, **kwargs)

    def check_options(self) -> list[str]:
        """Return one sentence per problem with this source's options."""
        problems = super().check_options()
        if self.default_move_on not in MOVE_ON_VALUES:
            allowed = ", ".join(MOVE_ON_VALUES)
            problems.append(f"cmi5: default_move_on must be one of {allowed}.")
        if not isinstance(self.trust_lms_satisfied, bool):
            problems.append("cmi5: trust_lms_satisfied must be true or false.")
        return problems

    def check_statement(self, data: dict[str, Any], path: str) -> list[dict[str, str]]:
        """Return xAPI problems plus breaches of cmi5 §9."""
        problems = super().check_statement(data, path)
        if "account" not in data["actor"]:
            message = "cmi5 requires an Agent identified by account"
            problems.append(error(join_path(path, "actor"), message))

        if is_defined(data):
            problems.extend(check_defined_statement(data, path))
        return problems

    def classify(self, data: dict[str, Any]) -> Outcome:
        """Return the cmi5 outcome of a defined statement, else the xAPI one."""
        if not is_defined(data):
            return classify_allowed(super().classify(data))

        verb = short_verb(data["verb"]["id"]) or ""
        extra: dict[str, Any] = {"cmi5_verb": verb}
        extensions = (data.get("context") or {}).get("extensions") or {}
        if MASTERY_EXTENSION in extensions:
            extra["mastery_score"] = extensions[MASTERY_EXTENSION]

        if verb == "launched":
            extra["launched_move_on"] = extensions.get(MOVE_ON_EXTENSION)
            extra["mastery_score"] = extensions.get(MASTERY_EXTENSION)
        if verb == "failed":
            extra["failed_policy"] = self.failed_policy
        if verb == "satisfied":
            return self.classify_satisfied(extra)

        kind = DEFINED_KINDS[verb]
        note = f"cmi5 {verb} ends a session" if kind is Kind.INFORMATIONAL else None
        return Outcome(kind, note, extra)

    def classify_satisfied(self, extra: dict[str, Any]) -> Outcome:
        """Return a satisfied statement's outcome under ``trust_lms_satisfied``."""
        extra["satisfied"] = True
        if self.trust_lms_satisfied:
            return Outcome(Kind.COMPLETED, extra=extra)
        return Outcome(Kind.INFORMATIONAL, "LMS satisfied is not trusted", extra)

    def finish_batch(self, events: list[ProgressEvent]) -> list[ProgressEvent]:
        """Return the events with moveOn and its satisfaction so far marked."""
        launched: dict[str | None, str] = {}
        for event in events:
            move_on = event.extra.pop("launched_move_on", None)
            if move_on is not None:
                launched[event.registration] = move_on

        seen: dict[str | None, set[Kind]] = {}
        for event in events:
            move_on = launched.get(event.registration, self.default_move_on)
            kinds = seen.setdefault(event.registration, set())
            kinds.update(kinds_counted(event))

            event.extra["move_on"] = move_on
            event.extra["move_on_from"] = (
                "launched" if event.registration in launched else "default"
            )
            event.extra["move_on_satisfied"] = is_move_on_satisfied(move_on, kinds)
        return events


def is_defined(data: dict[str, Any]) -> bool:
    """Return whether the statement carries the cmi5 category."""
    context = data.get("context") or {}
    categories = (context.get("contextActivities") or {}).get("category") or []
    return any(c.get("id") == CMI5_CATEGORY for c in categories)


def check_defined_statement(data: dict[str, Any], path: str) -> list[dict[str, str]]:
    """Return breaches of the defined-statement rules in cmi5 §9."""
    verb = short_verb(data["verb"]["id"])
    if verb not in DEFINED_KINDS:
        message = "a statement with the cmi5 category must use a cmi5 defined verb"
        return [error(join_path(path, "verb.id"), message)]

    score = (data.get("result") or {}).get("score")
    if verb == "completed" and score:
        message = "a cmi5 completed statement must not carry a score (§9.5)"
        return [error(join_path(path, "result.score"), message)]

    problems = check_move_on_extension(data, path)
    if verb in ("passed", "failed"):
        problems.extend(check_mastery(data, path, verb))
    return problems


def check_move_on_extension(data: dict[str, Any], path: str) -> list[dict[str, str]]:
    """Return a problem if the moveOn context extension is not a cmi5 value."""
    extensions = (data.get("context") or {}).get("extensions") or {}
    if MOVE_ON_EXTENSION not in extensions:
        return []
    if extensions[MOVE_ON_EXTENSION] in MOVE_ON_VALUES:
        return []
    where = join_path(path, f"context.extensions.{MOVE_ON_EXTENSION}")
    return [error(where, "moveOn must be a cmi5 moveOn value")]


def check_mastery(data: dict[str, Any], path: str, verb: str) -> list[dict[str, str]]:
    """Return a problem if a passed/failed score contradicts the mastery score."""
    extensions = (data.get("context") or {}).get("extensions") or {}
    mastery = extensions.get(MASTERY_EXTENSION)
    if mastery is None:
        return []
    if isinstance(mastery, bool) or not isinstance(mastery, int | float):
        where = join_path(path, f"context.extensions.{MASTERY_EXTENSION}")
        return [error(where, "masteryscore must be a number")]

    scaled = ((data.get("result") or {}).get("score") or {}).get("scaled")
    if scaled is None:
        return []

    where = join_path(path, "result.score.scaled")
    if verb == "passed" and scaled < mastery:
        message = f"scaled {scaled} is below masteryscore {mastery} in a passed"
        return [error(where, message)]
    if verb == "failed" and scaled >= mastery:
        message = f"scaled {scaled} meets masteryscore {mastery} in a failed"
        return [error(where, message)]
    return []


def classify_allowed(outcome: Outcome) -> Outcome:
    """Return an allowed statement's outcome; it cannot complete (§7.1.3)."""
    if outcome.kind not in OUTCOME_KINDS:
        return outcome
    note = "cmi5 allowed statement cannot complete, pass or fail (§7.1.3)"
    extra = dict(outcome.extra or {}, allowed_outcome=outcome.kind.value)
    return Outcome(Kind.INFORMATIONAL, note, extra)


def kinds_counted(event: ProgressEvent) -> set[Kind]:
    """Return the kinds an event contributes to moveOn.

    A waived statement and a trusted satisfied one are the LMS saying the
    requirements are met, so they count as both completed and passed.
    """
    lms_says_met = event.extra.get("cmi5_verb") in ("waived", "satisfied")
    if lms_says_met and event.kind is Kind.COMPLETED:
        return {Kind.COMPLETED, Kind.PASSED}
    if event.kind in (Kind.COMPLETED, Kind.PASSED):
        return {event.kind}
    return set()
