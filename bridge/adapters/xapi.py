"""Turn xAPI statements (1.0.x and 2.0) into normalised progress events.

The body is one statement or an array of them. Any invalid statement
rejects the whole batch (xAPI Communication §3.2), so nothing is half
applied. Verbs map to kinds as the bridge's format notes recommend:
launched, initialized, attempted, resumed, progressed and experienced
start; completed completes; passed passes; failed fails; ``result.completion``
true completes a top-level activity whatever the verb; everything else is
informational, with a note saying why.

Scores become 0-100: ``scaled`` x 100 with negatives raised to 0; else
``(raw - min) / (max - min)`` x 100, ``min`` taken as 0 when only ``max`` is
given; else ``raw`` itself when it lies in 0-100, read as a percentage;
else no score. The result is clamped to 0-100 and rounded to 2 decimals.

Validation (see :mod:`bridge.adapters.xapi_schema`) is strict where the
spec says MUST and lenient where producers break SHOULDs; paths in errors
read ``[0].result.score.scaled`` in an array, ``result.score.scaled`` for a
lone statement and ``$`` for the body as a whole. H5P sub-content ids such
as ``undefined?subContentId=...`` are let through and are informational.

Option ``failed_policy`` (``started``, ``completed`` or ``informational``;
default ``started``) is passed along in ``extra``: the adapter always emits
``Kind.FAILED`` and the delivery policy decides, by default treating a
failure as "still in progress".
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from bridge.adapters.base import AdapterResult, BaseAdapter, InboundRequest
from bridge.adapters.common import ROOT, decode_json, error, join_path, utc_now
from bridge.adapters.xapi_schema import StatementSchema, load_statement
from bridge.errors import ConfigError, PayloadError, UnsupportedMediaError
from bridge.events import ActivityRef, Kind, LearnerRef, ProgressEvent

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from marshmallow import Schema

logger = logging.getLogger(__name__)

VERB_NAMESPACES = (
    "http://adlnet.gov/expapi/verbs/",
    "https://adlnet.gov/expapi/verbs/",
    "https://w3id.org/xapi/adl/verbs/",
    "http://w3id.org/xapi/adl/verbs/",
)
STARTED_VERBS = frozenset(
    {"launched", "initialized", "attempted", "resumed", "progressed", "experienced"}
)
SESSION_END_VERBS = frozenset({"terminated", "suspended", "abandoned"})
CHILD_ONLY_VERBS = frozenset({"answered", "interacted"})

VERSION_HEADER = "X-Experience-API-Version"
ACCEPTED_VERSIONS = frozenset({"1.0", "1.0.0", "1.0.1", "1.0.2", "1.0.3", "2.0.0"})
FAILED_POLICIES = ("started", "completed", "informational")
DEFAULT_FAILED_POLICY = "started"


@dataclass
class ParsedStatement:
    """One statement that passed validation, with where it sat in the body."""

    path: str
    raw: dict[str, Any]
    data: dict[str, Any]
    statement_id: str


@dataclass
class Outcome:
    """What a statement means for progress: its kind, why, and extra facts."""

    kind: Kind
    note: str | None = None
    extra: dict[str, Any] | None = None


class XapiAdapter(BaseAdapter):
    """Read xAPI statements posted as JSON, one or an array per request."""

    option_keys = frozenset({"failed_policy"})

    name = "xapi"
    content_types: ClassVar[frozenset[str]] = frozenset({"application/json"})
    statement_schema: ClassVar[type[Schema]] = StatementSchema

    def __init__(
        self,
        options: dict[str, Any] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(options)
        self.clock = clock or utc_now
        self.failed_policy = self.options.get("failed_policy", DEFAULT_FAILED_POLICY)

        problems = self.check_options()
        if problems:
            raise ConfigError(problems)

    def check_options(self) -> list[str]:
        """Return one sentence per problem with this source's options."""
        if self.failed_policy not in FAILED_POLICIES:
            allowed = ", ".join(FAILED_POLICIES)
            return [f"{self.name}: failed_policy must be one of {allowed}."]
        return []

    def parse(self, request: InboundRequest) -> AdapterResult:
        """Return one event per statement, or raise for the whole batch."""
        require_json_media(request.content_type)
        check_version_header(request.headers)

        body = decode_json(request.body)
        statements = self.validate(self.split_body(body))

        now = self.clock()
        events = [self.build_event(s, request.source, now) for s in statements]
        events = self.finish_batch(events)

        logger.debug("source %s: %d statements parsed", request.source, len(events))
        return AdapterResult(events=events, statement_ids=[e.event_id for e in events])

    def split_body(self, body: Any) -> list[tuple[str, Any]]:
        """Return the statements of a body with the path of each."""
        if isinstance(body, dict):
            return [("", body)]
        if isinstance(body, list):
            return [(f"[{index}]", item) for index, item in enumerate(body)]
        raise PayloadError(
            "body must be a statement or an array of statements",
            errors=[error(ROOT, "must be a JSON object or array")],
        )

    def validate(self, items: list[tuple[str, Any]]) -> list[ParsedStatement]:
        """Load every statement; raise one PayloadError listing all problems."""
        parsed: list[ParsedStatement] = []
        errors: list[dict[str, str]] = []
        for path, raw in items:
            data, problems = load_statement(self.statement_schema, raw, path)
            if data is None:
                errors.extend(problems)
                continue

            problems = self.check_statement(data, path)
            if problems:
                errors.extend(problems)
                continue
            raw, statement_id = with_canonical_id(raw, data.get("id", ""))
            parsed.append(ParsedStatement(path, raw, data, statement_id))

        errors.extend(find_duplicate_ids(parsed))
        if errors:
            raise PayloadError(describe_failure(len(items)), errors=errors)

        for statement in parsed:
            statement.statement_id = statement.statement_id or str(uuid.uuid4())
        return parsed

    def check_statement(self, data: dict[str, Any], path: str) -> list[dict[str, str]]:
        """Return rule violations the schema cannot see; subclasses add theirs."""
        voiding = short_verb(data["verb"]["id"]) == "voided"
        if voiding and data["object"]["objectType"] != "StatementRef":
            message = "a voiding statement's object must be a StatementRef"
            return [error(join_path(path, "object.objectType"), message)]
        return []

    def build_event(
        self, statement: ParsedStatement, source: str, now: datetime
    ) -> ProgressEvent:
        """Return the normalised event for one validated statement."""
        data = statement.data
        outcome = self.classify(data)
        context = data.get("context") or {}

        extra = describe_statement(data)
        extra.update(outcome.extra or {})
        return ProgressEvent(
            source=source,
            event_id=statement.statement_id,
            learner=learner_from_agent(data["actor"]),
            activity=self.activity_from_object(data["object"]),
            kind=outcome.kind,
            occurred_at=data.get("timestamp") or now,
            raw=statement.raw,
            score=score_from_result(data.get("result")),
            note=outcome.note,
            registration=context.get("registration"),
            extra=extra,
        )

    def classify(self, data: dict[str, Any]) -> Outcome:
        """Return what the statement's verb and result mean for progress."""
        verb = short_verb(data["verb"]["id"])
        target = data["object"]
        result = data.get("result") or {}
        child = has_parent(data)

        if verb == "voided":
            return describe_voiding(target["id"])
        if target["objectType"] != "Activity":
            return Outcome(Kind.INFORMATIONAL, f"object is a {target['objectType']}")
        if "subContentId=" in target["id"]:
            return Outcome(Kind.INFORMATIONAL, "H5P sub-content statement")

        if verb == "passed":
            return Outcome(Kind.PASSED)
        if verb == "failed":
            return Outcome(Kind.FAILED, extra={"failed_policy": self.failed_policy})
        if verb == "completed":
            return Outcome(Kind.COMPLETED)

        if result.get("completion") is True and child:
            return Outcome(Kind.INFORMATIONAL, "completion of a child activity")
        if result.get("completion") is True:
            return Outcome(Kind.COMPLETED)
        if verb in STARTED_VERBS:
            return Outcome(Kind.STARTED)
        return Outcome(Kind.INFORMATIONAL, explain_unmapped(data, verb, child))

    def activity_from_object(self, target: dict[str, Any]) -> ActivityRef:
        """Return the activity reference of a statement's object."""
        if target["objectType"] != "Activity":
            return ActivityRef()
        return ActivityRef(iri=target["id"], name=first_language_value(target))

    def finish_batch(self, events: list[ProgressEvent]) -> list[ProgressEvent]:
        """Return the events after batch-wide rules; plain xAPI has none."""
        return events


def require_json_media(content_type: str) -> None:
    """Refuse any media type but ``application/json`` and ``+json`` variants."""
    if content_type == "application/json" or content_type.endswith("+json"):
        return
    raise UnsupportedMediaError(
        f"content type {content_type or '(none)'} is not accepted; send JSON"
    )


def check_version_header(headers: dict[str, str]) -> None:
    """Refuse an xAPI version header other than 1.0, 1.0.0-1.0.3 or 2.0.0."""
    version = next(
        (v for k, v in headers.items() if k.lower() == VERSION_HEADER.lower()), None
    )
    if version is None or version.strip() in ACCEPTED_VERSIONS:
        return

    message = "accepted versions are 1.0, 1.0.0 to 1.0.3 and 2.0.0"
    raise PayloadError(
        f"xAPI version {version!r} is not supported",
        errors=[error(f"headers.{VERSION_HEADER}", message)],
    )


def with_canonical_id(raw: Any, statement_id: str) -> tuple[Any, str]:
    """Return the statement and its id with the id in lower case.

    A UUID names the same statement in either case, so a statement sent
    again with its id in upper case is the same event, not a new one (and
    not a 409 for the "other" content either).
    """
    canonical = statement_id.lower()
    if canonical != statement_id and isinstance(raw, dict):
        raw = {**raw, "id": canonical}
    return raw, canonical


def find_duplicate_ids(statements: list[ParsedStatement]) -> list[dict[str, str]]:
    """Return an error for each statement reusing an id seen earlier in the batch."""
    seen: set[str] = set()
    errors = []
    for statement in statements:
        key = statement.statement_id.lower()
        if key and key in seen:
            path = join_path(statement.path, "id")
            errors.append(error(path, "duplicate statement id in batch"))
        seen.add(key)
    return errors


def describe_failure(count: int) -> str:
    """Return the top-level message of a rejected request."""
    if count == 1:
        return "the statement is invalid"
    return "the statement batch is invalid; no statement was applied"


def short_verb(verb_id: str) -> str | None:
    """Return the ADL verb's short name (``completed``), or None for others."""
    for namespace in VERB_NAMESPACES:
        if verb_id.startswith(namespace):
            return verb_id[len(namespace) :]
    return None


def has_parent(data: dict[str, Any]) -> bool:
    """Return whether the statement names a parent activity (a child object)."""
    context = data.get("context") or {}
    activities = context.get("contextActivities") or {}
    return bool(activities.get("parent"))


def describe_voiding(target_id: str) -> Outcome:
    """Return the informational outcome of a voiding statement."""
    logger.info("statement %s voided; Open ELMS has no call to undo it", target_id)
    return Outcome(
        Kind.INFORMATIONAL, f"voided statement {target_id}", {"voids": target_id}
    )


def explain_unmapped(data: dict[str, Any], verb: str | None, child: bool) -> str:
    """Return why a statement carries no progress change."""
    if verb in SESSION_END_VERBS:
        return f"verb {verb} ends a session"
    if verb in CHILD_ONLY_VERBS:
        where = "a child activity" if child else "an activity"
        return f"verb {verb} on {where} without completion"
    if verb == "scored":
        return "verb scored records a score without completion"
    return f"verb {data['verb']['id']} is not mapped"


def describe_statement(data: dict[str, Any]) -> dict[str, Any]:
    """Return the facts every event keeps in ``extra``: verb, flags, parents."""
    extra: dict[str, Any] = {"verb": data["verb"]["id"]}
    result = data.get("result") or {}
    for flag in ("success", "completion"):
        if flag in result:
            extra[flag] = result[flag]

    context = data.get("context") or {}
    parents = (context.get("contextActivities") or {}).get("parent") or []
    parent_ids = [p["id"] for p in parents if p.get("id")]
    if parent_ids:
        extra["parents"] = parent_ids
    return extra


def learner_from_agent(agent: dict[str, Any]) -> LearnerRef:
    """Return every handle an Agent carries; the email loses ``mailto:``."""
    mbox = agent.get("mbox")
    sha1 = agent.get("mbox_sha1sum")
    account = agent.get("account") or {}
    return LearnerRef(
        email=mbox.removeprefix("mailto:").lower() if mbox else None,
        mbox_sha1=sha1.lower() if sha1 else None,
        account_name=account.get("name"),
        account_home_page=account.get("homePage"),
        openid=agent.get("openid"),
        name=agent.get("name"),
    )


def first_language_value(target: dict[str, Any]) -> str | None:
    """Return the first value of the object's ``definition.name``, if any."""
    names = (target.get("definition") or {}).get("name") or {}
    return next(iter(names.values()), None)


def score_from_result(result: dict[str, Any] | None) -> float | None:
    """Return the result's score as 0-100 with 2 decimals, or None."""
    score = (result or {}).get("score") or {}
    scaled, raw = score.get("scaled"), score.get("raw")
    low, high = score.get("min"), score.get("max")
    if low is None and high is not None and high > 0:
        low = 0.0

    if scaled is not None:
        value = max(scaled, 0.0) * 100
    elif raw is not None and low is not None and high is not None and high > low:
        value = (raw - low) / (high - low) * 100
    elif raw is not None and 0 <= raw <= 100:
        value = raw
    else:
        return None
    return round(min(max(value, 0.0), 100.0), 2)
