"""Read SCORM Cloud registration postbacks and Rustici Engine webhooks.

Three bodies arrive here:

* the legacy XML registration report (``resultsformat`` course, activity or
  full, or ``format="summary"``; with or without the ``<rsp>`` wrapper),
  either as the ``data`` field of a form post or as a ``text/xml`` body;
* that report already turned into flat JSON (``regid``, ``complete``...);
* the JSON registration (``registrationCompletion``, ``score.scaled``...),
  bare or inside an Engine webhook envelope (``payloadId``, ``body``).

Credentials were checked before the adapter runs and are never kept: the raw
payload of a form post is its ``data`` field alone.

Options:
    regid_pattern: a regular expression with the named groups ``user_id``
        and/or ``course_id``, matched against the whole registration id to
        fill the learner or course when the report does not name them (the
        legacy XML never does). Default: none.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.adapters.base import AdapterResult, BaseAdapter
from bridge.adapters.common import (
    ROOT,
    clamp_score,
    decode_json,
    decode_query,
    decode_text,
    decode_xml,
    error,
    id_text,
    join_path,
    parse_timestamp,
    require_media_type,
    require_object,
    to_number,
    utc_now,
    without_none,
)
from bridge.errors import ConfigError, PayloadError
from bridge.events import ActivityRef, Kind, LearnerRef, ProgressEvent

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from bridge.adapters.base import InboundRequest

logger = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
XML_TYPES = frozenset({"text/xml", "application/xml"})
PATTERN_GROUPS = frozenset({"user_id", "course_id"})

# Legacy XML writes complete/incomplete; the JSON API writes COMPLETED and
# mixes cases ("Unknown" beside "UNKNOWN"), so both compare lower-cased.
COMPLETION = {
    "complete": "completed",
    "completed": "completed",
    "incomplete": "incomplete",
    "unknown": "unknown",
}
SUCCESS = {"passed": "passed", "failed": "failed", "unknown": "unknown"}
FINAL_KINDS = frozenset({Kind.COMPLETED, Kind.PASSED, Kind.FAILED})


@dataclass
class Report:
    """What one postback says about one registration, before mapping."""

    registration: str
    completion: str
    success: str
    score: float | None
    raw: Any
    learner: dict[str, str] = field(default_factory=dict)
    activity: dict[str, str] = field(default_factory=dict)
    occurred_at: datetime | None = None
    payload_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ScormCloudAdapter(BaseAdapter):
    """Turn a SCORM Cloud postback or Engine webhook into one progress event."""

    option_keys = frozenset({"regid_pattern"})

    name = "scorm-cloud"
    content_types = frozenset({FORM, "application/json"}) | XML_TYPES

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.regid_pattern = compile_regid_pattern(self.options.get("regid_pattern"))

    def parse(self, request: InboundRequest) -> AdapterResult:
        """Return the event of one postback, or raise a 400 or 415."""
        require_media_type(request, self.content_types)

        report = self.read_report(request)
        self.fill_from_regid(report)

        event = build_event(request.source, report)
        logger.debug(
            "registration %s: %s (%s/%s)",
            report.registration,
            event.kind,
            report.completion,
            report.success,
        )
        return AdapterResult(events=[event])

    def read_report(self, request: InboundRequest) -> Report:
        """Return the report in the body, whichever of the shapes it has."""
        if request.content_type in XML_TYPES:
            return read_xml_report(request.body)
        if request.content_type == "application/json":
            return read_json_report(decode_json(request.body))

        fields = request.form or decode_query(decode_text(request.body))
        data = fields.get("data")
        if not data or not data.strip():
            raise PayloadError(
                "form post has no data field",
                errors=[error("data", "required: the registration report")],
            )
        if data.lstrip().startswith("{"):
            return read_json_report(decode_json(data))
        return read_xml_report(data)

    def fill_from_regid(self, report: Report) -> None:
        """Fill a missing learner or course id from the registration id."""
        if self.regid_pattern is None:
            return

        match = self.regid_pattern.fullmatch(report.registration)
        if match is None:
            return
        found = {k: v for k, v in match.groupdict().items() if v}
        if "user_id" in found:
            report.learner.setdefault("user_id", found["user_id"])
        if "course_id" in found:
            report.activity.setdefault("course_id", found["course_id"])


def compile_regid_pattern(value: Any) -> re.Pattern[str] | None:
    """Return the compiled ``regid_pattern`` option, or raise a ConfigError."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(["scorm-cloud option regid_pattern must be a string."])

    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise ConfigError(
            [f"scorm-cloud option regid_pattern is not a regular expression: {exc}."]
        ) from exc

    groups = set(pattern.groupindex)
    problems = []
    if not groups & PATTERN_GROUPS:
        problems.append(
            "scorm-cloud option regid_pattern needs a named group user_id or course_id."
        )
    for extra in sorted(groups - PATTERN_GROUPS):
        problems.append(f"scorm-cloud option regid_pattern has unknown group {extra}.")
    if problems:
        raise ConfigError(problems)
    return pattern


def read_xml_report(body: bytes | str) -> Report:
    """Return the report of a legacy XML postback, refusing DTDs and entities."""
    root = decode_xml(body)
    report = find_report(root)

    # Course and summary formats carry the status on the report itself; the
    # activity and full formats put it on the top activity.
    holder = report
    activity = report.find("activity")
    if report.find("complete") is None and activity is not None:
        holder = activity

    registration = report.get("regid") or child_text(report, "regid")
    if not registration:
        raise PayloadError(
            "registration report has no regid",
            errors=[error("registrationreport.regid", "required")],
        )

    return Report(
        registration=registration,
        completion=read_enum(
            child_text(holder, "complete"), COMPLETION, "registrationreport.complete"
        ),
        success=read_enum(
            child_text(holder, "success") or "unknown",
            SUCCESS,
            "registrationreport.success",
        ),
        score=percent(to_number(child_text(holder, "score"))),
        raw=body if isinstance(body, str) else body.decode("utf-8", "replace"),
        learner=without_none({"user_id": child_text(report, "learnerid")}),
        activity=without_none({"course_id": child_text(report, "courseid")}),
        extra=without_none(
            {"format": report.get("format"), "instance": report.get("instanceid")}
        ),
    )


def find_report(root: Element) -> Element:
    """Return the ``<registrationreport>`` element, bare or inside ``<rsp>``."""
    if root.tag == "registrationreport":
        return root

    if root.tag == "rsp" and root.get("stat", "ok") != "ok":
        raise PayloadError(
            "postback reports a failure",
            errors=[error("rsp.stat", f"expected 'ok', got {root.get('stat')!r}")],
        )
    report = root.find("registrationreport") if root.tag == "rsp" else None
    if report is None:
        raise PayloadError(
            "no registration report in the XML",
            errors=[error(root.tag, "expected <registrationreport>")],
        )
    return report


def child_text(element: Element, tag: str) -> str | None:
    """Return the stripped text of a direct child, or None if absent or empty."""
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def read_json_report(document: Any) -> Report:
    """Return the report in a JSON body: envelope, registration or flat report."""
    document = require_object(document)

    if isinstance(document.get("body"), dict) and (
        "payloadId" in document or "topic" in document
    ):
        report = read_registration(document["body"], "body")
        report.payload_id = id_text(document.get("payloadId"))
        report.occurred_at = first_time(document.get("timestamp"), report.occurred_at)
        report.extra["topic"] = id_text(document.get("topic"))
        report.raw = document
        return report

    if "regid" in document or "complete" in document:
        return read_flat_report(document)
    return read_registration(document, "")


def read_flat_report(document: dict[str, Any]) -> Report:
    """Return the report of a legacy XML report already turned into flat JSON."""
    registration = id_text(document.get("regid"))
    if registration is None:
        raise PayloadError(
            "registration report has no regid", errors=[error("regid", "required")]
        )

    return Report(
        registration=registration,
        completion=read_enum(document.get("complete"), COMPLETION, "complete"),
        success=read_enum(document.get("success", "unknown"), SUCCESS, "success"),
        score=percent(to_number(document.get("score"))),
        raw=document,
        learner=without_none({"user_id": id_text(document.get("learnerid"))}),
        activity=without_none({"course_id": id_text(document.get("courseid"))}),
        extra=without_none(
            {
                "format": id_text(document.get("format")),
                "instance": id_text(document.get("instanceid")),
            }
        ),
    )


def read_registration(document: dict[str, Any], prefix: str) -> Report:
    """Return the report of a JSON registration (the API's RegistrationSchema)."""
    registration = id_text(document.get("id"))
    if registration is None:
        raise PayloadError(
            "registration has no id",
            errors=[error(join_path(prefix, "id"), "required")],
        )

    score = document.get("score")
    scaled = score.get("scaled") if isinstance(score, dict) else None
    return Report(
        registration=registration,
        completion=read_enum(
            document.get("registrationCompletion"),
            COMPLETION,
            join_path(prefix, "registrationCompletion"),
        ),
        success=read_enum(
            document.get("registrationSuccess", "unknown"),
            SUCCESS,
            join_path(prefix, "registrationSuccess"),
        ),
        # score.scaled is already a percentage here, not -1..1.
        score=percent(to_number(scaled)),
        raw=document,
        learner=read_learner(document.get("learner")),
        activity=read_course(document.get("course")),
        occurred_at=first_time(document.get("updated"), None)
        or first_time(document.get("lastAccessDate"), None),
        extra=without_none({"instance": id_text(document.get("instance"))}),
    )


def read_learner(value: Any) -> dict[str, str]:
    """Return the learner handles of a registration's ``learner`` object."""
    if not isinstance(value, dict):
        return {}

    names = [id_text(value.get("firstName")), id_text(value.get("lastName"))]
    full_name = " ".join(n for n in names if n) or None
    return without_none(
        {
            "user_id": id_text(value.get("id")),
            "email": id_text(value.get("email")),
            "name": full_name,
        }
    )


def read_course(value: Any) -> dict[str, str]:
    """Return the activity handles of a registration's ``course`` object."""
    if not isinstance(value, dict):
        return {}
    return without_none(
        {"course_id": id_text(value.get("id")), "name": id_text(value.get("title"))}
    )


def read_enum(value: Any, allowed: dict[str, str], path: str) -> str:
    """Return the normalised enum value, comparing case-insensitively."""
    if value is None:
        raise PayloadError(f"{path} is missing", errors=[error(path, "required")])

    key = value.strip().lower() if isinstance(value, str) else ""
    if key not in allowed:
        choices = ", ".join(sorted(allowed))
        raise PayloadError(
            f"{path} has an unknown value",
            errors=[error(path, f"expected one of {choices}, got {value!r}")],
        )
    return allowed[key]


def build_event(source: str, report: Report) -> ProgressEvent:
    """Return the normalised event for one report."""
    kind, note = classify(report.completion, report.success)
    score = report.score if kind in FINAL_KINDS else None
    score_key = "-" if score is None else f"{score:g}"
    event_id = report.payload_id or ":".join(
        [report.registration, report.completion, report.success, score_key]
    )

    return ProgressEvent(
        source=source,
        event_id=event_id,
        learner=LearnerRef(**report.learner),
        activity=ActivityRef(**report.activity),
        kind=kind,
        occurred_at=report.occurred_at or utc_now(),
        raw=report.raw,
        score=score,
        note=note,
        registration=report.registration,
        extra=without_none(report.extra),
    )


def classify(completion: str, success: str) -> tuple[Kind, str | None]:
    """Return the kind and note for a completion and success pair."""
    if completion == "completed":
        if success == "passed":
            return Kind.PASSED, None
        if success == "failed":
            return Kind.FAILED, None
        return Kind.COMPLETED, None

    if completion == "incomplete":
        return Kind.STARTED, None
    return Kind.INFORMATIONAL, f"nothing known: completion unknown, success {success}"


def percent(value: float | None) -> float | None:
    """Return a 0-100 score clamped into range, keeping None as None."""
    return None if value is None else clamp_score(value)


def first_time(value: Any, fallback: datetime | None) -> datetime | None:
    """Return ``value`` as a UTC time if it is one, else ``fallback``.

    Dates in these bodies are informative only; an odd one must not turn a
    postback into a 400 that SCORM Cloud would retry seventy times.
    """
    if value is None:
        return fallback
    try:
        return parse_timestamp(value, ROOT)
    except PayloadError:
        return fallback
