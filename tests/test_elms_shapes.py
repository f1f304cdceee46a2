"""Response bodies the reference leaves vague: every plausible shape."""

from __future__ import annotations

import pytest

from bridge.elms_shapes import Progress, Status, parse_progress, parse_user_id
from bridge.errors import ElmsShapeError


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (["completed", 85], Progress(Status.COMPLETED, 85.0)),
        (["in progress", None], Progress(Status.IN_PROGRESS, None)),
        (["not attempted"], Progress(Status.NOT_ATTEMPTED, None)),
        ({"status": "Complete", "score": "72"}, Progress(Status.COMPLETED, 72.0)),
        ({"status": "IN PROGRESS", "score": None}, Progress(Status.IN_PROGRESS)),
        ({"status": "not_attempted"}, Progress(Status.NOT_ATTEMPTED)),
        ([{"status": "completed", "score": 90}], Progress(Status.COMPLETED, 90.0)),
        (["Completed", "unknown"], Progress(Status.COMPLETED, None)),
    ],
)
def test_parse_progress_accepts_plausible_shapes(body, expected):
    assert parse_progress(body) == expected


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"unexpected": True}, "unreadable progress body: dict"),
        ([], "unreadable progress body: list []"),
        (["done", 10], 'unknown progress status: str "done"'),
        (["completed", "lots"], "score is not a number"),
        (["completed", True], "score is not a number"),
        (42, "unreadable progress body: int 42"),
        ("completed", "unreadable progress body: str"),
    ],
)
def test_parse_progress_names_the_shape_it_cannot_read(body, fragment):
    with pytest.raises(ElmsShapeError) as caught:
        parse_progress(body)

    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [(42, 42), ("42", 42), (" 42 ", 42), ({"id": 7}, 7), ({"id": "u-9"}, "u-9")],
)
def test_parse_user_id_accepts_number_string_and_object(body, expected):
    assert parse_user_id(body) == expected


@pytest.mark.parametrize("body", [{"nope": 1}, None, "", True, [1], 4.5])
def test_parse_user_id_rejects_other_shapes(body):
    with pytest.raises(ElmsShapeError, match="unreadable user id"):
        parse_user_id(body)
