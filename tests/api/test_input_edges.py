"""Inputs that once reached a 500, kept as they were found: each must be a 422.

Each kind was fixed once for every route: URLs that ``urlsplit`` refuses,
text no database can store (NUL, lone surrogates) in bodies, and NUL in
path and query values.
"""

from __future__ import annotations

import json

import pytest

UNSTORABLE = "must not hold NUL characters or lone surrogates"


def post_raw(bridge, path, text):
    """Post ``text`` as a JSON body exactly as written (escapes kept)."""
    return bridge.api.post(
        bridge.at(path),
        data=text.encode("ascii"),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def test_a_url_urlsplit_refuses_is_422_on_url(bridge):
    answer = bridge.api.post(
        bridge.at("/subscriptions"), json={"url": "http://[::1"}, timeout=10
    )

    assert answer.status_code == 422
    assert answer.json()["errors"] == {
        "url": ["unsafe URL: the URL does not parse: Invalid IPv6 URL"]
    }


@pytest.mark.parametrize(
    ("path", "text", "field"),
    [
        (
            "/subscriptions",
            '{"url": "http://127.0.0.1:9/", "description": "\\ud800"}',
            "description",
        ),
        (
            "/subscriptions",
            '{"url": "http://127.0.0.1:9/", "description": "a\\u0000b"}',
            "description",
        ),
        ("/mappings", '{"activity_key": "k", "learning_id": "\\ud800"}', "learning_id"),
        (
            "/sources",
            '{"name": "s", "format": "xapi", "auth": {"type": "none"}, '
            '"options": {"x": ["\\u0000"]}}',
            "options.x.0",
        ),
    ],
)
def test_text_no_database_can_store_is_422_naming_the_field(bridge, path, text, field):
    answer = post_raw(bridge, path, text)

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == {field: [UNSTORABLE]}
    stored = bridge.api.get(bridge.at(path), timeout=10).json()
    assert [item for item in stored if item.get("defined_in") != "file"] == []


def test_nul_in_a_path_id_or_a_query_value_is_422(bridge):
    by_id = bridge.api.get(bridge.at("/events/a%00b"), timeout=10)
    by_query = bridge.api.get(
        bridge.at("/events"), params={"source": "x\0"}, timeout=10
    )

    assert by_id.status_code == 422
    assert by_id.json()["errors"] == {"event_id": [UNSTORABLE]}
    assert by_query.status_code == 422
    assert json.loads(by_query.text)["errors"] == {"source": [UNSTORABLE]}


def test_a_body_nested_thousands_deep_is_a_json_400(bridge):
    text = (
        '{"url": "http://127.0.0.1:9/", "learning_ids": '
        + "[" * 5000
        + "]" * 5000
        + "}"
    )

    answer = post_raw(bridge, "/subscriptions", text)

    assert answer.status_code == 400
    assert answer.json() == {
        "error": "bad_request",
        "message": "the request body is nested too deeply to read",
    }
