"""Check operator input with marshmallow and report every mistake by field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow.exceptions import SCHEMA

from bridge.errors import InvalidInputError

# A NUL cannot be stored in PostgreSQL text, and a lone surrogate (which a
# JSON body may spell as "\ud800") cannot be encoded to UTF-8 at all.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class InputSchema(ma.Schema):
    """Base of every input schema: refuses text no database can store."""

    @ma.pre_load
    def refuse_unstorable_text(self, data: Any, **kwargs: Any) -> Any:
        """Refuse NUL characters and lone surrogates anywhere in the input."""
        errors = find_unstorable(data)
        if errors:
            raise ma.ValidationError(errors)
        return data


def find_unstorable(value: Any, path: str = "") -> dict[str, list[str]]:
    """Return {field path: [message]} for each text holding unstorable characters."""
    message = "must not hold NUL characters or lone surrogates"
    if isinstance(value, str):
        return {path or "input": [message]} if UNSTORABLE.search(value) else {}

    found: dict[str, list[str]] = {}
    if isinstance(value, Mapping):
        items = [(str(key), item) for key, item in value.items()]
        for key, _ in items:
            if UNSTORABLE.search(key):
                found[_join(path, "key")] = [message]
    elif isinstance(value, list | tuple):
        items = [(str(index), item) for index, item in enumerate(value)]
    else:
        return found
    for key, item in items:
        found.update(find_unstorable(item, _join(path, key)))
    return found


def load_input(schema: ma.Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``data`` loaded by ``schema``.

    Loading is idempotent for every field the services use, so the API may
    load a body once to document and check it and the service again.

    Raises:
        InvalidInputError: naming every field that is wrong.
    """
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ma.ValidationError as exc:
        raise invalid_from(exc.messages) from None
    return loaded


def invalid_from(messages: Any, prefix: str = "") -> InvalidInputError:
    """Return an error whose field errors are ``messages`` flattened to paths."""
    errors = flatten_messages(messages, prefix)
    first = next(iter(errors.items()), ("input", ["is invalid"]))
    return InvalidInputError(f"{first[0]}: {first[1][0]}", errors=errors)


def invalid_field(field: str, message: str) -> InvalidInputError:
    """Return an error about one field, worded as ``field: message``."""
    return InvalidInputError(f"{field}: {message}", errors={field: [message]})


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Return marshmallow's nested messages as {"a.b.0": [message, ...]}.

    Errors about the body as a whole (``_schema``) are filed under the
    prefix, or under ``input`` when there is none.
    """
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = prefix if key == SCHEMA else _join(prefix, str(key))
            for path, texts in flatten_messages(value, name).items():
                flat.setdefault(path, []).extend(texts)
        return flat

    texts = messages if isinstance(messages, list) else [messages]
    if texts and all(isinstance(text, str) for text in texts):
        return {prefix or "input": list(texts)}
    return flatten_messages(dict(enumerate(texts)), prefix)


def _join(prefix: str, key: str) -> str:
    """Return ``prefix.key``, or ``key`` at the top level."""
    return f"{prefix}.{key}" if prefix else key
