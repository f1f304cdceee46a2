"""The source options that steer resolution: reading and checking them.

A source's ``options`` may tell the resolver that its user ids are Open
ELMS ids, which field to try as a username, which home pages are the Open
ELMS site's own, whether missing users may be created, and a pattern that
reads the learning id out of an activity IRI. Sources are checked when
they are loaded, so a mistake is reported at start, not at the first event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bridge.errors import ConfigError

LEARNER_FIELDS = ("account_name", "user_id", "email", "openid")
PATTERN_GROUP = "learning_id"
OPTION_KEYS = (
    "user_id_is_elms_id",
    "learner_field",
    "elms_home_pages",
    "create_missing_users",
    "activity_pattern",
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


@dataclass(frozen=True)
class ResolutionOptions:
    """The source options that steer resolution, validated."""

    user_id_is_elms_id: bool = False
    learner_field: str | None = None
    elms_home_pages: frozenset[Origin] = frozenset()
    create_missing_users: bool = False
    activity_pattern: re.Pattern[str] | None = None


def resolution_option_problems(options: dict[str, Any]) -> list[str]:
    """Return one sentence per problem with the resolution options of a source."""
    problems = []
    for key in ("user_id_is_elms_id", "create_missing_users"):
        if key in options and not isinstance(options[key], bool):
            problems.append(f"{key}: must be true or false")

    field = options.get("learner_field")
    if field is not None and field not in LEARNER_FIELDS:
        problems.append(f"learner_field: must be one of {', '.join(LEARNER_FIELDS)}")
    if options.get("user_id_is_elms_id") is True and field == "user_id":
        problems.append(
            "learner_field: user_id cannot be a username when user_id_is_elms_id "
            "says it is the Open ELMS id"
        )

    _read_home_pages(options.get("elms_home_pages", []), problems)
    _compile_pattern(options.get("activity_pattern"), problems)
    return problems


def read_resolution_options(options: dict[str, Any]) -> ResolutionOptions:
    """Return the resolution options of a source's options.

    Raises:
        ConfigError: listing every problem with them.
    """
    problems = resolution_option_problems(options)
    if problems:
        raise ConfigError(problems)

    pages = _read_home_pages(options.get("elms_home_pages", []), [])
    pattern = _compile_pattern(options.get("activity_pattern"), [])
    return ResolutionOptions(
        user_id_is_elms_id=options.get("user_id_is_elms_id", False),
        learner_field=options.get("learner_field"),
        elms_home_pages=frozenset(pages),
        create_missing_users=options.get("create_missing_users", False),
        activity_pattern=pattern,
    )


def _read_home_pages(value: Any, problems: list[str]) -> list[Origin]:
    """Return the origins of the ``elms_home_pages`` URLs, noting bad ones."""
    if not isinstance(value, list):
        problems.append("elms_home_pages: must be a list of URLs")
        return []

    origins = []
    for index, url in enumerate(value):
        origin = site_origin(url) if isinstance(url, str) else None
        if origin is None:
            problems.append(
                f"elms_home_pages[{index}]: must be an http(s) URL with a host; "
                f"got {url!r}"
            )
        else:
            origins.append(origin)
    return origins


def _compile_pattern(value: Any, problems: list[str]) -> re.Pattern[str] | None:
    """Return the compiled ``activity_pattern``, or None, noting problems."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.append("activity_pattern: must be a non-empty regular expression")
        return None

    try:
        pattern = re.compile(value)
    except re.error as exc:
        problems.append(f"activity_pattern: is not a valid regular expression: {exc}")
        return None
    if pattern.groups == 0:
        problems.append(
            f"activity_pattern: needs a capture group, named {PATTERN_GROUP} or "
            "the first, giving the learning id"
        )
        return None
    return pattern


def site_origin(url: str) -> Origin | None:
    """Return the (scheme, host, port) of an http(s) URL, or None."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    return parts.scheme, parts.hostname.lower(), port
