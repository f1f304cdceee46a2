"""Read any JSON webhook whose fields the source's options locate.

Each option is a JMESPath expression, evaluated against the body or, with
``events``, against each item of the list that expression selects.

Options:
    learner: dict of learner handle (``email``, ``user_id``, ``account_name``,
        ...) to expression; required, at least one must find a value.
    activity: dict of activity handle (``course_id``, ``iri``, ``name``, ...)
        to expression; required, at least one must find a value.
    kind: expression for the progress value; required and must find a value.
    kind_map: dict of found value to one of started, completed, passed,
        failed, informational. Values are matched exactly, then ignoring
        case; a value that is itself one of those kinds needs no entry.
        Anything else is informational. Default: {}.
    score: expression for a number (or numeric string); optional.
    score_scale: factor applied to the score, e.g. 100 for 0..1. Default: 1.
    id: expression for the event id; must find a value when set. Default:
        SHA-256 of the body, or of each item's canonical JSON with ``events``.
    time: expression for an ISO 8601 string or Unix seconds; must find a
        value when set. Default: the time of receipt.
    registration: expression for an attempt or registration id; optional.
    events: expression selecting a list of items, each one event; optional.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jmespath
from jmespath.exceptions import JMESPathError

from bridge.adapters.base import AdapterResult, BaseAdapter
from bridge.adapters.common import (
    ROOT,
    canonical_json,
    clamp_score,
    decode_json,
    error,
    parse_timestamp,
    require_media_type,
    sha256_hex,
    to_number,
    utc_now,
)
from bridge.errors import ConfigError, PayloadError
from bridge.events import ActivityRef, Kind, LearnerRef, ProgressEvent

if TYPE_CHECKING:
    from jmespath.parser import ParsedResult

    from bridge.adapters.base import InboundRequest

logger = logging.getLogger(__name__)

LEARNER_HANDLES = frozenset(LearnerRef.__dataclass_fields__)
ACTIVITY_HANDLES = frozenset(ActivityRef.__dataclass_fields__)
SINGLE_EXPRESSIONS = ("kind", "score", "id", "time", "registration", "events")
KNOWN_OPTIONS = frozenset(
    {"learner", "activity", "kind_map", "score_scale", *SINGLE_EXPRESSIONS}
)
KINDS = {kind.value: kind for kind in Kind}


class GenericAdapter(BaseAdapter):
    """Turn any JSON body into events, with fields found by JMESPath."""

    option_keys = KNOWN_OPTIONS

    name = "generic"
    content_types = frozenset({"application/json"})

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        problems: list[str] = []

        self.learner = compile_handles(
            self.options, "learner", LEARNER_HANDLES, problems
        )
        self.activity = compile_handles(
            self.options, "activity", ACTIVITY_HANDLES, problems
        )
        self.expressions = {
            key: compile_expression(self.options.get(key), key, problems)
            for key in SINGLE_EXPRESSIONS
        }
        self.kind_map = read_kind_map(self.options.get("kind_map", {}), problems)
        self.score_scale = read_scale(self.options.get("score_scale", 1), problems)

        if self.expressions["kind"] is None and "kind" not in self.options:
            problems.append("generic option kind is required.")
        for key in sorted(set(self.options) - KNOWN_OPTIONS):
            problems.append(f"generic option {key} is not known.")
        if problems:
            raise ConfigError(problems)

    def parse(self, request: InboundRequest) -> AdapterResult:
        """Return one event per item of the body, or raise a 400 or 415."""
        require_media_type(request, self.content_types)

        document = decode_json(request.body)
        if self.expressions["events"] is None:
            items = [(document, sha256_hex(request.body), ROOT)]
        else:
            items = self.select_items(document)

        events = [self.build_event(request.source, *item) for item in items]
        logger.debug("generic body: %d events", len(events))
        return AdapterResult(events=events)

    def select_items(self, document: Any) -> list[tuple[Any, str, str]]:
        """Return each item the ``events`` expression selects, with its id."""
        found = self.search("events", document, ROOT)
        if not isinstance(found, list):
            raise PayloadError(
                "events expression did not find a list",
                errors=[self.missing("events", "expected a list", ROOT)],
            )
        return [
            (item, sha256_hex(canonical_json(item)), f"{ROOT}[{index}]")
            for index, item in enumerate(found)
        ]

    def build_event(
        self, source: str, item: Any, default_id: str, where: str
    ) -> ProgressEvent:
        """Return the event of one item, raising a 400 for a missing field."""
        kind, note = self.read_kind(item, where)
        score = self.read_score(item, where) if kind is not Kind.INFORMATIONAL else None

        return ProgressEvent(
            source=source,
            event_id=self.read_text("id", item, where) or default_id,
            learner=LearnerRef(**self.read_handles("learner", item, where)),
            activity=ActivityRef(**self.read_handles("activity", item, where)),
            kind=kind,
            occurred_at=self.read_time(item, where),
            raw=item,
            score=score,
            note=note,
            registration=self.read_text("registration", item, where),
        )

    def search(self, key: str, item: Any, where: str) -> Any:
        """Return what option ``key``'s expression finds in ``item``."""
        expression = self.expressions[key]
        if expression is None:
            return None
        try:
            return expression.search(item)
        except JMESPathError as exc:
            raise PayloadError(
                f"{key} expression failed on the payload",
                errors=[self.missing(key, str(exc), where)],
            ) from exc

    def missing(self, key: str, message: str, where: str) -> dict[str, str]:
        """Return an error entry naming the option, its expression and the item."""
        expression = self.expressions[key]
        text = expression.expression if expression is not None else key
        return error(where, f"{key} ({text}): {message}")

    def read_kind(self, item: Any, where: str) -> tuple[Kind, str | None]:
        """Return the mapped kind of one item, and a note if it is unmapped."""
        value = self.search("kind", item, where)
        if value is None:
            raise PayloadError(
                "kind not found in the payload",
                errors=[self.missing("kind", "required field is missing", where)],
            )

        key = scalar_text(value)
        kind = self.kind_map.get(key) if key is not None else None
        if kind is None and key is not None:
            kind = self.kind_map.get(key.lower()) or KINDS.get(key.lower())
        if kind is None:
            return Kind.INFORMATIONAL, f"kind value {value!r} is not in kind_map"
        return kind, None

    def read_score(self, item: Any, where: str) -> float | None:
        """Return the item's score scaled to 0-100, or None if it has none."""
        value = self.search("score", item, where)
        if value is None:
            return None

        number = to_number(value)
        if number is None:
            raise PayloadError(
                "score is not a number",
                errors=[self.missing("score", f"not a number: {value!r}", where)],
            )
        return clamp_score(number * self.score_scale)

    def read_text(self, key: str, item: Any, where: str) -> str | None:
        """Return option ``key``'s value as text; a set ``id`` must find one."""
        value = scalar_text(self.search(key, item, where))
        if value is None and key == "id" and self.expressions["id"] is not None:
            raise PayloadError(
                "id not found in the payload",
                errors=[self.missing("id", "required field is missing", where)],
            )
        return value

    def read_time(self, item: Any, where: str) -> datetime:
        """Return the item's time in UTC, or now when no expression is set."""
        if self.expressions["time"] is None:
            return utc_now()

        value = self.search("time", item, where)
        if value is None:
            raise PayloadError(
                "time not found in the payload",
                errors=[self.missing("time", "required field is missing", where)],
            )
        return to_time(value, self.missing("time", f"not a time: {value!r}", where))

    def read_handles(self, group: str, item: Any, where: str) -> dict[str, str]:
        """Return the learner or activity handles found; at least one is required."""
        expressions = self.learner if group == "learner" else self.activity
        found = {}
        for handle, expression in expressions.items():
            try:
                value = scalar_text(expression.search(item))
            except JMESPathError:
                value = None
            if value is not None:
                found[handle] = value

        if not found:
            raise PayloadError(
                f"no {group} field found in the payload",
                errors=[
                    error(where, f"{group}.{h} ({e.expression}): missing")
                    for h, e in expressions.items()
                ],
            )
        return found


def compile_expression(
    text: Any, label: str, problems: list[str]
) -> ParsedResult | None:
    """Return the compiled expression, or None after recording a problem."""
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip():
        problems.append(f"generic option {label} must be a JMESPath string.")
        return None

    try:
        return jmespath.compile(text)
    except JMESPathError as exc:
        problems.append(f"generic option {label} is not valid JMESPath: {exc}.")
        return None


def compile_handles(
    options: dict[str, Any], key: str, allowed: frozenset[str], problems: list[str]
) -> dict[str, ParsedResult]:
    """Return handle → compiled expression for ``learner`` or ``activity``."""
    value = options.get(key)
    if not isinstance(value, dict) or not value:
        problems.append(f"generic option {key} must map handles to expressions.")
        return {}

    compiled = {}
    for handle, text in value.items():
        if handle not in allowed:
            known = ", ".join(sorted(allowed))
            problems.append(f"generic option {key}.{handle} is not one of {known}.")
            continue
        expression = compile_expression(text, f"{key}.{handle}", problems)
        if expression is not None:
            compiled[handle] = expression
    return compiled


def read_kind_map(value: Any, problems: list[str]) -> dict[str, Kind]:
    """Return the ``kind_map`` option with its keys also lower-cased."""
    if not isinstance(value, dict):
        problems.append("generic option kind_map must be a mapping.")
        return {}

    mapped: dict[str, Kind] = {}
    for key, target in value.items():
        if target not in KINDS:
            problems.append(
                f"generic option kind_map.{key} must be one of {', '.join(KINDS)}."
            )
            continue
        mapped[str(key)] = KINDS[target]
        mapped.setdefault(str(key).lower(), KINDS[target])
    return mapped


def read_scale(value: Any, problems: list[str]) -> float:
    """Return the ``score_scale`` option as a finite, positive float."""
    number = None if isinstance(value, str) else to_number(value)
    if number is None or number <= 0:
        problems.append("generic option score_scale must be a positive number.")
        return 1.0
    return number


def scalar_text(value: Any) -> str | None:
    """Return a found string, number or boolean as text; None for the rest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return format(value, "g")
    return None


def to_time(value: Any, problem: dict[str, str]) -> datetime:
    """Return an ISO 8601 string or Unix seconds as UTC, or raise a 400."""
    if isinstance(value, str):
        try:
            return parse_timestamp(value, problem["path"])
        except PayloadError as exc:
            raise PayloadError("time is not ISO 8601", errors=[problem]) from exc

    seconds = to_number(value)
    try:
        if seconds is None:
            raise ValueError(value)
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise PayloadError("time is not a timestamp", errors=[problem]) from exc
