"""Load and validate the sources the bridge accepts webhooks from.

A source is a named inbound channel: a format, credentials and options. The
sources file (YAML or TOML) lists them under ``sources``; every mistake in it
is reported at once, one sentence each, naming the file and the place.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from bridge.auth import (
    AUTH_TYPES,
    DEFAULT_SIGNATURE_HEADER,
    DEFAULT_TOLERANCE_SECONDS,
    HMAC_ENCODINGS,
    MASK,
    SECRET_FIELDS,
    TYPE_FIELDS,
    AuthSpec,
)
from bridge.errors import ConfigError

if TYPE_CHECKING:
    from marshmallow.types import ErrorMessages

logger = logging.getLogger(__name__)

FORMATS = ("xapi", "cmi5", "scorm-cloud", "lti-ags", "scorm-runtime", "h5p", "generic")
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Bodies are read into memory whole; this ceiling keeps one source from
# letting a client exhaust a worker.
MAX_BODY_BYTES_CEILING = 64 * 1024 * 1024
MAX_TOLERANCE_SECONDS = 24 * 60 * 60
NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"

# Option keys whose values are never printed back, at any depth.
_SECRET_OPTION = re.compile(r"secret|password|token|api_key|private_key", re.I)
_TOML_POSITION = re.compile(r"(?P<message>.*) \(at line (?P<line>\d+), column \d+\)$")

_NAME_MESSAGE = (
    "must be 1 to 64 lower-case letters, digits, _ or -, starting with a "
    'letter or digit; got "{input}"'
)

AdapterFactory = Callable[[str, dict[str, Any]], object]


@dataclass(frozen=True)
class Source:
    """One named inbound channel: its format, credentials and options."""

    name: str
    format: str
    auth: AuthSpec
    options: dict[str, Any] = field(default_factory=dict)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def public_dict(self) -> dict[str, Any]:
        """Return the source as a JSON-ready dict with every secret masked."""
        return {
            "name": self.name,
            "format": self.format,
            "auth": self.auth.public_dict(),
            "options": _mask_options(self.options),
            "max_body_bytes": self.max_body_bytes,
        }

    def to_storage(self) -> dict[str, Any]:
        """Return the database row's dict; secrets kept, ``*_env`` kept as names."""
        return {
            "name": self.name,
            "format": self.format,
            "auth": self.auth.to_storage(),
            "options": dict(self.options),
            "max_body_bytes": self.max_body_bytes,
        }

    @classmethod
    def from_storage(
        cls, data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None
    ) -> Source:
        """Return the source of a database row, resolving ``*_env`` references.

        Raises:
            ConfigError: the row breaks a rule or names an unset variable.
        """
        where = f"stored source {data.get('name', '?')}"
        return validate_source(dict(data), where=where, environ=environ)


def load_sources_file(
    path: str | Path,
    *,
    adapter_factory: AdapterFactory | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Source]:
    """Return the sources defined in a YAML or TOML file.

    Args:
        path: the file; ``.yaml``/``.yml`` is read as YAML, ``.toml`` as TOML.
        adapter_factory: called as ``adapter_factory(format, options)`` to
            validate each source's options; it raises ConfigError.
        environ: where ``*_env`` references are looked up; ``os.environ``
            by default.

    Raises:
        ConfigError: listing every problem, each naming the file and place.
    """
    label = str(path)
    document = read_config_document(Path(path), label)
    sources, problems = _check_document(document, adapter_factory, environ)
    if problems:
        raise ConfigError([f"{label}: {problem}" for problem in problems])

    logger.info("sources file %s: %d sources loaded", label, len(sources))
    return sources


def validate_source(
    data: Any,
    *,
    where: str = "source",
    adapter_factory: AdapterFactory | None = None,
    environ: Mapping[str, str] | None = None,
) -> Source:
    """Return one source built from a dict, by the rules of the sources file.

    Raises:
        ConfigError: listing every problem, each naming its place under
            ``where``.
    """
    source, problems = _check_source(data, where, adapter_factory, environ)
    if problems or source is None:
        raise ConfigError(problems)
    return source


def read_config_document(path: Path, label: str) -> Any:
    """Return the parsed content of a YAML or TOML config file, or raise one problem."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise ConfigError(
            [f"{label}: the file must end in .yaml, .yml or .toml; got {suffix!r}"]
        )

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{label}: cannot be read: {error}"]) from error

    if suffix == ".toml":
        return _parse_toml(text, label)
    return _parse_yaml(text, label)


def _parse_yaml(text: str, label: str) -> Any:
    """Return the YAML document in ``text``, or raise its syntax error's line."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f"line {mark.line + 1}: " if mark else ""
        reason = error.problem or error.context or "syntax error"
        problem = f"{label}: {line}not valid YAML: {reason}"
        raise ConfigError([problem]) from error
    except yaml.YAMLError as error:
        raise ConfigError([f"{label}: not valid YAML: {error}"]) from error


def _parse_toml(text: str, label: str) -> Any:
    """Return the TOML document in ``text``, or raise its syntax error's line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _TOML_POSITION.match(str(error))
        if found is None:
            problem = f"{label}: not valid TOML: {error}"
        else:
            reason = found["message"]
            problem = f"{label}: line {found['line']}: not valid TOML: {reason}"
        raise ConfigError([problem]) from error


def _check_document(
    document: Any,
    adapter_factory: AdapterFactory | None,
    environ: Mapping[str, str] | None,
) -> tuple[list[Source], list[str]]:
    """Return the sources of a parsed file and every problem found in it."""
    if document is None:
        return [], ["the file is empty; expected a `sources` list"]
    if not isinstance(document, dict):
        return [], ["the file must hold a mapping with a `sources` list"]

    problems = [
        f"{key}: is not a known key; expected `sources`"
        for key in document
        if key != "sources"
    ]
    entries = document.get("sources")
    if not isinstance(entries, list):
        problems.append("sources: is required and must be a list of sources")
        return [], problems

    sources = []
    for index, entry in enumerate(entries):
        where = f"sources[{index}]"
        source, found = _check_source(entry, where, adapter_factory, environ)
        problems.extend(found)
        if source is not None:
            sources.append(source)

    problems.extend(_find_duplicate_names(entries))
    return sources, problems


def _find_duplicate_names(entries: list[Any]) -> list[str]:
    """Return a problem for each source reusing an earlier source's name."""
    first_seen: dict[str, int] = {}
    problems = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        if name in first_seen:
            problems.append(
                f'sources[{index}].name: "{name}" is already used by '
                f"sources[{first_seen[name]}]; names must be unique"
            )
        else:
            first_seen[name] = index

    return problems


# Marshmallow's own messages, reworded as the rest of a sentence.
_TEXT_MESSAGES: ErrorMessages = {
    "required": "is required",
    "null": "must not be empty",
    "invalid": "must be text; quote the value",
}
_NOT_EMPTY = validate.Length(min=1, error="must not be empty")


def _text(**kwargs: Any) -> fields.String:
    """Return a non-empty string field with our messages."""
    validators = [_NOT_EMPTY, *kwargs.pop("validate", [])]
    return fields.String(error_messages=_TEXT_MESSAGES, validate=validators, **kwargs)


def _whole_number(low: int, high: int, **kwargs: Any) -> fields.Integer:
    """Return a strict integer field bounded to ``low``..``high``."""
    message = f'must be a whole number from {low} to {high}; got "{{input}}"'
    return fields.Integer(
        strict=True,
        error_messages={**_TEXT_MESSAGES, "invalid": message},
        validate=validate.Range(min=low, max=high, error=message),
        **kwargs,
    )


def _one_of(choices: tuple[str, ...], **kwargs: Any) -> fields.String:
    """Return a string field limited to ``choices``."""
    listed = ", ".join(choices)
    messages: ErrorMessages = {**_TEXT_MESSAGES, "invalid": f"must be one of {listed}"}
    messages.update(kwargs.pop("error_messages", {}))
    return fields.String(
        error_messages=messages,
        validate=validate.OneOf(
            choices, error=f'must be one of {listed}; got "{{input}}"'
        ),
        **kwargs,
    )


class _SourceSchema(Schema):
    """The keys of one source; ``auth`` is checked by its type's schema."""

    class Meta:
        unknown = EXCLUDE

    name = _text(
        required=True,
        validate=[
            validate.Regexp(
                rf"{NAME_PATTERN}\Z",
                error=_NAME_MESSAGE,
            )
        ],
    )
    format = _one_of(FORMATS, required=True)
    auth = fields.Raw(
        required=True,
        error_messages={"required": "is required; write `type: none` to accept anyone"},
    )
    options = fields.Dict(
        load_default=dict,
        error_messages={"invalid": "must be a mapping", "null": "must be a mapping"},
    )
    max_body_bytes = _whole_number(
        1, MAX_BODY_BYTES_CEILING, load_default=DEFAULT_MAX_BODY_BYTES
    )


class _AuthTypeSchema(Schema):
    """The ``type`` key every auth section starts with."""

    class Meta:
        unknown = EXCLUDE

    type = _one_of(
        AUTH_TYPES,
        required=True,
        error_messages={
            "required": "is required; write `none` to accept anyone",
        },
    )


def _secret_pair(name: str) -> dict[str, fields.Field]:
    """Return the fields of a secret given inline or as ``<name>_env``."""
    return {name: _text(), f"{name}_env": _text()}


_SCHEMA_FIELDS: dict[str, dict[str, fields.Field]] = {
    "none": {},
    "hmac": {
        **_secret_pair("secret"),
        "header": _text(load_default=DEFAULT_SIGNATURE_HEADER),
        "encoding": _one_of(HMAC_ENCODINGS, load_default="hex"),
        "prefix": fields.String(error_messages=_TEXT_MESSAGES, load_default=""),
        "timestamp_header": _text(load_default=""),
        "tolerance_seconds": _whole_number(
            1, MAX_TOLERANCE_SECONDS, load_default=DEFAULT_TOLERANCE_SECONDS
        ),
        "algorithm": _one_of(("sha256",)),
    },
    "standard-webhooks": _secret_pair("secret"),
    "basic": {"username": _text(required=True), **_secret_pair("password")},
    "bearer": _secret_pair("token"),
    "scorm-cloud-form": {"username": _text(required=True), **_secret_pair("password")},
}

_AUTH_SCHEMAS: dict[str, Schema] = {
    kind: Schema.from_dict(
        {"type": fields.String(), **schema_fields}, name=f"Auth_{kind}"
    )(unknown=EXCLUDE)
    for kind, schema_fields in _SCHEMA_FIELDS.items()
}


def _check_source(
    data: Any,
    where: str,
    adapter_factory: AdapterFactory | None,
    environ: Mapping[str, str] | None,
) -> tuple[Source | None, list[str]]:
    """Return the source built from ``data`` and every problem found in it."""
    if not isinstance(data, dict):
        return None, [f"{where}: must be a mapping of source keys"]

    schema = _SourceSchema()
    problems = _unknown_keys(data, schema, where)
    loaded = _load(schema, data, where, problems)

    auth = None
    if "auth" in data:
        auth = _check_auth(data["auth"], f"{where}.auth", environ, problems)

    if adapter_factory is not None:
        _check_options(adapter_factory, data, where, problems)

    if problems or loaded is None or auth is None:
        return None, problems
    return Source(**{**loaded, "auth": auth}), problems


def _check_auth(
    data: Any,
    where: str,
    environ: Mapping[str, str] | None,
    problems: list[str],
) -> AuthSpec | None:
    """Return the auth spec of an ``auth`` section, appending its problems."""
    if not isinstance(data, dict):
        problems.append(f"{where}: must be a mapping with a `type`")
        return None
    if _load(_AuthTypeSchema(), data, where, problems) is None:
        return None

    kind = data["type"]
    schema = _AUTH_SCHEMAS[kind]
    found = _unknown_keys(data, schema, where, f"{kind} auth")
    loaded = _load(schema, data, where, found)
    secrets = _resolve_secrets(
        data, kind, where, os.environ if environ is None else environ, found
    )
    if kind == "standard-webhooks" and "secret" in secrets:
        found.extend(_check_whsec(secrets["secret"], data, where))

    problems.extend(found)
    if found or loaded is None:
        return None
    return _build_auth(kind, loaded, secrets)


def _build_auth(kind: str, loaded: dict[str, Any], secrets: dict[str, str]) -> AuthSpec:
    """Return the AuthSpec of validated fields and resolved secrets."""
    values: dict[str, Any] = {
        key: loaded[key]
        for key in TYPE_FIELDS[kind]
        if key in loaded and key not in SECRET_FIELDS
    }
    env = {key: loaded[f"{key}_env"] for key in SECRET_FIELDS if f"{key}_env" in loaded}
    values.update(secrets)
    return AuthSpec(type=kind, **values, env=env)


def _resolve_secrets(
    data: dict[str, Any],
    kind: str,
    where: str,
    environ: Mapping[str, str],
    problems: list[str],
) -> dict[str, str]:
    """Return each secret of ``kind``, inline or read from its ``_env`` variable."""
    resolved = {}
    for key in TYPE_FIELDS[kind]:
        if key not in SECRET_FIELDS:
            continue

        inline, variable = data.get(key), data.get(f"{key}_env")
        if inline is not None and variable is not None:
            problems.append(f"{where}: give {key} or {key}_env, not both")
        elif inline is None and variable is None:
            problems.append(
                f"{where}.{key}: is required (or {key}_env naming an "
                "environment variable that holds it)"
            )
        elif isinstance(inline, str) and inline:
            resolved[key] = inline
        elif isinstance(variable, str) and variable:
            _read_variable(variable, key, where, environ, problems, resolved)

    return resolved


def _read_variable(
    variable: str,
    key: str,
    where: str,
    environ: Mapping[str, str],
    problems: list[str],
    resolved: dict[str, str],
) -> None:
    """Put the value of ``variable`` into ``resolved[key]``, or note it is unset."""
    value = environ.get(variable, "")
    if value:
        resolved[key] = value
    else:
        problems.append(
            f'{where}.{key}_env: environment variable "{variable}" is not set '
            "or is empty"
        )


def _check_whsec(secret: str, data: dict[str, Any], where: str) -> list[str]:
    """Return a problem unless ``secret`` is a ``whsec_`` base64 key."""
    place = f"{where}.secret_env" if "secret_env" in data else f"{where}.secret"
    encoded = secret.removeprefix("whsec_")
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except binascii.Error:
        key = b""

    if secret.startswith("whsec_") and key:
        return []
    return [f"{place}: must be a whsec_ secret followed by base64 key bytes"]


def _unknown_keys(
    data: dict[str, Any], schema: Schema, where: str, what: str = "a source"
) -> list[str]:
    """Return a problem for each key the schema does not read, to catch typos."""
    known = sorted(schema.load_fields)
    expected = ", ".join(name for name in known if name != "type") or "only type"
    return [
        f"{where}.{key}: is not a key of {what}; expected {expected}"
        for key in data
        if key not in schema.load_fields
    ]


def _load(
    schema: Schema, data: dict[str, Any], where: str, problems: list[str]
) -> dict[str, Any] | None:
    """Return the data loaded by ``schema``, appending its errors as sentences."""
    try:
        return schema.load(data)
    except ValidationError as error:
        problems.extend(_sentences(error.messages, where))
        return None


def _sentences(messages: Any, where: str) -> list[str]:
    """Turn marshmallow's nested error messages into one sentence each."""
    if isinstance(messages, dict):
        found = []
        for key, nested in messages.items():
            place = where if key == "_schema" else f"{where}.{key}"
            found.extend(_sentences(nested, place))
        return found
    if isinstance(messages, list):
        return [sentence for item in messages for sentence in _sentences(item, where)]
    return [f"{where}: {messages}"]


def _check_options(
    adapter_factory: AdapterFactory,
    data: dict[str, Any],
    where: str,
    problems: list[str],
) -> None:
    """Let the format's adapter validate the options, appending its problems.

    The adapter is asked only when the format is known and the options are a
    mapping; otherwise those keys already carry their own problem.
    """
    options = data.get("options", {})
    if data.get("format") not in FORMATS or not isinstance(options, dict):
        return

    try:
        adapter_factory(data["format"], dict(options))
    except ConfigError as error:
        problems.extend(f"{where}.options: {problem}" for problem in error.problems)


def _mask_options(value: Any) -> Any:
    """Return ``value`` with the values of secret-looking keys masked."""
    if isinstance(value, dict):
        return {
            key: MASK if _SECRET_OPTION.search(str(key)) else _mask_options(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_options(item) for item in value]
    return value
