"""Decode, check and convert what the SCORM, LTI and generic adapters read.

Every helper turns a bad input into a :class:`bridge.errors.PayloadError` or
:class:`bridge.errors.UnsupportedMediaError`, never into another exception,
so an adapter built from them answers any body with a 4xx at worst. Error
paths are dotted field paths from the document root; ``$`` is the root.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from bridge.errors import PayloadError, UnsupportedMediaError

if TYPE_CHECKING:
    from bridge.adapters.base import InboundRequest

ROOT = "$"
MAX_FORM_FIELDS = 1000

# Words producers put where a number is unknown (SCORM Cloud writes
# "unknown"; Rustici Engine documents NaN for some amounts).
_NO_NUMBER = frozenset({"", "unknown", "nan", "null", "none", "n/a"})


def require_media_type(request: InboundRequest, allowed: frozenset[str]) -> None:
    """Raise a 415 unless the request's media type is one of ``allowed``."""
    if request.content_type in allowed:
        return

    accepted = ", ".join(sorted(allowed))
    raise UnsupportedMediaError(
        f"content type {request.content_type or '(none)'!r} is not accepted; "
        f"send one of: {accepted}"
    )


def decode_text(body: bytes) -> str:
    """Return ``body`` as text, or raise a 400 naming the first bad byte."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            "body is not valid UTF-8",
            errors=[error(ROOT, f"byte {exc.start}: {exc.reason}")],
        ) from exc


def decode_json(body: bytes | str) -> Any:
    """Return the JSON document in ``body``, or raise a 400 saying where it breaks.

    ``NaN`` and ``Infinity`` are refused: they are not JSON, and a score must
    never carry them onward.
    """
    text = decode_text(body) if isinstance(body, bytes) else body
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise PayloadError(
            f"malformed JSON at {where}: {exc.msg}",
            errors=[error(ROOT, f"{where}: {exc.msg}")],
        ) from exc
    except (ValueError, RecursionError) as exc:
        # Integers over Python's digit limit, constants, or nesting deeper
        # than the interpreter's recursion limit.
        raise PayloadError(
            "JSON document cannot be read", errors=[error(ROOT, str(exc))]
        ) from exc

    # A \uD800-style escape alone decodes to a lone surrogate: valid JSON
    # text, but not Unicode, and nothing downstream can encode it.
    if _SURROGATE_ESCAPE.search(text):
        path = _find_lone_surrogate(document, ROOT)
        if path is not None:
            message = "a string holds a lone UTF-16 surrogate, which is not Unicode"
            raise PayloadError(message, errors=[error(path, message)])
    return document


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _find_lone_surrogate(value: Any, path: str) -> str | None:
    """Return the path of the first string (or key) that is not valid Unicode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_lone_surrogate(key, path) or _find_lone_surrogate(
                item, join_path(path, key)
            )
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_lone_surrogate(item, join_path(path, index))
            if found is not None:
                return found
    return None


def _refuse_constant(name: str) -> Any:
    """Refuse the non-JSON literals Python's decoder would otherwise accept."""
    raise ValueError(f"{name} is not a JSON value")


def decode_xml(body: bytes | str) -> Element:
    """Return the root element, or raise a 400 saying where the XML breaks.

    DTDs, entity declarations and external references are refused before
    anything expands, which keeps XML bombs and file reads out.
    """
    try:
        return SafeElementTree.fromstring(body, forbid_dtd=True)
    except ParseError as exc:
        line, column = exc.position
        where = f"line {line}, column {column + 1}"
        raise PayloadError(
            f"malformed XML at {where}",
            errors=[error(ROOT, f"{where}: {exc.msg}")],
        ) from exc
    except DefusedXmlException as exc:
        raise PayloadError(
            "XML refused: DTDs and entity declarations are not accepted",
            errors=[error(ROOT, type(exc).__name__)],
        ) from exc
    except (ValueError, LookupError) as exc:
        raise PayloadError(
            "XML cannot be read", errors=[error(ROOT, str(exc))]
        ) from exc


def decode_query(text: str) -> dict[str, str]:
    """Return the fields of a query string or form body; the first repeat wins."""
    try:
        pairs = urllib.parse.parse_qsl(
            text.strip().lstrip("?"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError as exc:
        raise PayloadError(
            "form body cannot be read", errors=[error(ROOT, str(exc))]
        ) from exc

    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def require_object(document: Any, path: str = ROOT) -> dict[str, Any]:
    """Return ``document`` if it is a JSON object, else raise a 400."""
    if isinstance(document, dict):
        return document

    raise PayloadError(
        "expected a JSON object",
        errors=[error(path, f"expected an object, got {json_type(document)}")],
    )


def json_type(value: Any) -> str:
    """Return the JSON name of a decoded value's type, for error messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return names.get(type(value), type(value).__name__)


def parse_timestamp(value: Any, path: str) -> datetime:
    """Return an ISO 8601 timestamp as an aware UTC datetime, or raise a 400.

    A time without an offset is read as UTC, which is what xAPI 2.0 and the
    LTI examples send; any precision below a second is accepted.
    """
    if not isinstance(value, str):
        raise PayloadError(
            "timestamp is not a string",
            errors=[
                error(path, f"expected an ISO 8601 string, got {json_type(value)}")
            ],
        )

    try:
        moment = datetime.fromisoformat(value.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise PayloadError(
            f"timestamp {value!r} is not ISO 8601",
            errors=[error(path, f"not an ISO 8601 timestamp: {value!r}")],
        ) from exc


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def to_number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None when it holds no number.

    Runtimes send numbers as strings, so numeric strings count; booleans,
    ``unknown``, ``NaN``, empty strings and anything non-numeric do not.
    """
    if isinstance(value, bool) or value is None:
        return None

    if isinstance(value, str):
        if value.strip().lower() in _NO_NUMBER:
            return None
        try:
            value = float(value)
        except ValueError:
            return None

    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def clamp_score(value: float) -> float:
    """Return a percentage clamped to 0-100 and rounded to two decimals."""
    return round(min(100.0, max(0.0, value)), 2)


def sha256_hex(data: bytes | str) -> str:
    """Return the hex SHA-256 of ``data``; text is hashed as UTF-8."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> str:
    """Return a stable JSON text of ``value`` for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def error(path: str, message: str) -> dict[str, str]:
    """Return one entry of a :class:`PayloadError`'s ``errors`` list."""
    return {"path": path, "message": message}


def join_path(prefix: str, key: str | int) -> str:
    """Return ``key`` appended to a dotted path; integers become ``[n]``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return key if prefix in ("", ROOT) else f"{prefix}.{key}"


def flatten_messages(messages: Any, prefix: str = ROOT) -> list[dict[str, str]]:
    """Return marshmallow's nested error messages as a flat path list.

    Marshmallow reports ``{"field": ["msg"], "nested": {"0": {...}}}`` and
    puts schema-level problems under ``_schema``; the latter keep ``prefix``.
    """
    if isinstance(messages, str):
        return [error(prefix, messages)]
    if isinstance(messages, list | tuple):
        return [item for msg in messages for item in flatten_messages(msg, prefix)]
    if not isinstance(messages, Mapping):
        return [error(prefix, str(messages))]

    found: list[dict[str, str]] = []
    for key, nested in messages.items():
        path = prefix if key == "_schema" else join_path(prefix, key)
        found.extend(flatten_messages(nested, path))
    return found


def id_text(value: Any) -> str | None:
    """Return a string or integer id as text, or None for anything else."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    """Return ``values`` without the keys whose value is None."""
    return {k: v for k, v in values.items() if v is not None}
