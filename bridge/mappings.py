"""Load the mappings file and copy its mappings into the store.

The mappings file (``BRIDGE_MAPPINGS_FILE``, YAML or TOML like the sources
file) lists explicit activity -> Open ELMS learning id mappings::

    mappings:
      - activity: https://courses.example.org/fire-safety
        learning_id: 1
      - activity: COURSE-7          # an IRI, course id or content id
        learning_id: 2
        source: lms-one             # optional; `*` (every source) by default

At start :func:`sync_file_mappings` upserts them into the ``mappings``
table, so the resolver and ``python -m bridge mappings list`` see one set.
A mapping deleted from the file stays in the table until it is removed
with ``python -m bridge mappings remove``: the table cannot tell a mapping
that came from the file from one added on the command line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.elms import segment
from bridge.errors import ConfigError
from bridge.sources import NAME_PATTERN, read_config_document
from bridge.store import mapping_queries
from bridge.store.mapping_queries import ANY_SOURCE

if TYPE_CHECKING:
    from bridge.store.db import Store

logger = logging.getLogger(__name__)

ENTRY_KEYS = ("activity", "learning_id", "source")
# Column widths of the mappings table.
MAX_ACTIVITY_KEY_LENGTH = 1024
MAX_LEARNING_ID_LENGTH = 64


@dataclass(frozen=True)
class FileMapping:
    """One mapping of the mappings file."""

    activity_key: str
    learning_id: str
    source: str = ANY_SOURCE


def load_mappings_file(path: str | Path) -> list[FileMapping]:
    """Return the mappings defined in a YAML or TOML file.

    Raises:
        ConfigError: listing every problem, each naming the file and place.
    """
    label = str(path)
    document = read_config_document(Path(path), label)
    mappings, problems = _check_document(document)
    if problems:
        raise ConfigError([f"{label}: {problem}" for problem in problems])

    logger.info("mappings file %s: %d mappings loaded", label, len(mappings))
    return mappings


def sync_file_mappings(store: Store, path: str | Path) -> int:
    """Upsert the file's mappings into the store; return how many changed.

    Unresolved events that a new or changed mapping covers go back to
    pending, so they are tried again.

    Raises:
        ConfigError: the file is wrong; nothing is written then.
    """
    mappings = load_mappings_file(path)
    changed = requeued = 0
    with store.session() as session:
        for mapping in mappings:
            written = mapping_queries.put_mapping(
                session,
                activity_key=mapping.activity_key,
                learning_id=mapping.learning_id,
                source=mapping.source,
            )
            if written:
                changed += 1
                requeued += mapping_queries.requeue_unresolved(
                    session, mapping.activity_key, mapping.source
                )

    logger.info(
        "mappings file %s: %d of %d mappings written, %d events requeued",
        path,
        changed,
        len(mappings),
        requeued,
    )
    return changed


def _check_document(document: Any) -> tuple[list[FileMapping], list[str]]:
    """Return the mappings of a parsed file and every problem found in it."""
    if document is None:
        return [], ["the file is empty; expected a `mappings` list"]
    if not isinstance(document, dict):
        return [], ["the file must hold a mapping with a `mappings` list"]

    problems = [
        f"{key}: is not a known key; expected `mappings`"
        for key in document
        if key != "mappings"
    ]
    entries = document.get("mappings")
    if not isinstance(entries, list):
        problems.append("mappings: is required and must be a list of mappings")
        return [], problems

    mappings = []
    for index, entry in enumerate(entries):
        mapping = _check_entry(entry, f"mappings[{index}]", problems)
        if mapping is not None:
            mappings.append(mapping)

    problems.extend(_find_duplicate_keys(entries))
    return mappings, problems


def _find_duplicate_keys(entries: list[Any]) -> list[str]:
    """Return a problem for each entry mapping a key an earlier one maps.

    Keys are compared case-insensitively, as the resolver compares them.
    """
    first_seen: dict[tuple[Any, str], int] = {}
    problems = []
    for index, entry in enumerate(entries):
        activity = entry.get("activity") if isinstance(entry, dict) else None
        if not isinstance(activity, str) or not activity.strip():
            continue

        source = entry.get("source", ANY_SOURCE)
        scope = (source, activity.strip().lower())
        if scope in first_seen:
            problems.append(
                f"mappings[{index}].activity: {activity.strip()!r} is already "
                f"mapped by mappings[{first_seen[scope]}] for source {source!r}"
            )
        else:
            first_seen[scope] = index
    return problems


def _check_entry(entry: Any, where: str, problems: list[str]) -> FileMapping | None:
    """Return the mapping of one entry, or None after noting its problems."""
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a mapping with activity and learning_id")
        return None

    expected = ", ".join(ENTRY_KEYS)
    found = [
        f"{where}.{key}: is not a key of a mapping; expected {expected}"
        for key in entry
        if key not in ENTRY_KEYS
    ]
    activity = _check_activity(entry.get("activity"), f"{where}.activity", found)
    learning_id = _check_learning_id(
        entry.get("learning_id"), f"{where}.learning_id", found
    )
    source = _check_source(entry.get("source", ANY_SOURCE), f"{where}.source", found)

    problems.extend(found)
    if found or activity is None or learning_id is None or source is None:
        return None
    return FileMapping(activity_key=activity, learning_id=learning_id, source=source)


def _check_activity(value: Any, where: str, problems: list[str]) -> str | None:
    """Return the activity key, or None after noting why it is wrong."""
    if value is None:
        problems.append(f"{where}: is required (an IRI, course id or content id)")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: must be non-empty text")
        return None
    if len(value.strip()) > MAX_ACTIVITY_KEY_LENGTH:
        problems.append(f"{where}: is longer than {MAX_ACTIVITY_KEY_LENGTH} characters")
        return None
    return value.strip()


def _check_learning_id(value: Any, where: str, problems: list[str]) -> str | None:
    """Return the learning id as text, or None after noting why it is wrong."""
    if value is None:
        problems.append(f"{where}: is required (the Open ELMS learning id)")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.append(f"{where}: must be a number or text; got {value!r}")
        return None

    text = str(value).strip()
    try:
        segment(text)
    except ValueError:
        problems.append(f"{where}: {value!r} is not a valid learning id")
        return None
    if len(text) > MAX_LEARNING_ID_LENGTH:
        problems.append(f"{where}: is longer than {MAX_LEARNING_ID_LENGTH} characters")
        return None
    return text


def _check_source(value: Any, where: str, problems: list[str]) -> str | None:
    """Return the source name or ``*``, or None after noting why it is wrong."""
    if value == ANY_SOURCE:
        return ANY_SOURCE
    if isinstance(value, str) and re.fullmatch(NAME_PATTERN, value):
        return value
    problems.append(f"{where}: must be a source name or `*`; got {value!r}")
    return None
