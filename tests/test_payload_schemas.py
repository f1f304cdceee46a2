"""Check the outbound payloads the bridge stores against docs/schemas.

Each payload is produced by the real code path on a migrated SQLite store
and read back from the ``outbound_events`` table, so the check covers the
JSON round trip as well as the dictionaries the code builds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from sqlalchemy import select

from bridge.elms_shapes import Status
from bridge.outbound import announce_event_failed
from bridge.outbound_types import EVENT_TYPES
from bridge.store import Store, create_store, migrate
from bridge.store.delivery_queries import disable_and_announce
from bridge.store.outbound_models import OutboundEventModel
from bridge.store.poll_queries import record_transition
from bridge.store.queries import get_event, record_intake
from bridge.store.subscription_queries import add_subscription
from tests.store.conftest import SOURCE, accept, build_event, build_request

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bridge.store.models import EventRow

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
USER = {"email": "learner@example.org", "username": "learner1"}
LEARNING = {"name": "Fire safety"}

# (old status, old score, new status, new score) -> the type it announces
TRANSITIONS = [
    (Status.NOT_ATTEMPTED, None, Status.IN_PROGRESS, None, "progress.started"),
    (Status.IN_PROGRESS, None, Status.COMPLETED, 85.0, "progress.completed"),
    (Status.NOT_ATTEMPTED, None, Status.COMPLETED, None, "progress.completed"),
    (Status.COMPLETED, 70.0, Status.COMPLETED, 92.5, "progress.score_changed"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Yield a migrated, empty store on a SQLite file."""
    url = f"sqlite:///{tmp_path / 'var' / 'bridge.db'}"
    migrate.upgrade(url)
    store = create_store(url)
    yield store
    store.dispose()


def validator(event_type: str) -> Draft202012Validator:
    """Return a validator for one type's schema file, checking formats too."""
    schema = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def stored_payloads(store: Store, event_ids: list[str]) -> list[dict[str, Any]]:
    """Read the payloads of some outbound events back from the table."""
    with store.session() as session:
        query = select(OutboundEventModel).where(OutboundEventModel.id.in_(event_ids))
        rows = list(session.scalars(query))
        return [row.payload for row in rows]


def store_failed_event(session: Session) -> EventRow:
    """Record one inbound event through intake and return its stored row."""
    outcome = record_intake(
        session,
        source=SOURCE,
        request=build_request(),
        events=[build_event("stmt-failed")],
        dedupe_key="dedupe-failed",
        respond=accept,
        now=NOW,
    )
    event_row = get_event(session, outcome.event_ids[0])
    assert event_row is not None
    return event_row


def assert_valid(event_type: str, payload: dict[str, Any]) -> None:
    """Validate a payload and check its time is an aware ISO 8601 moment."""
    validator(event_type).validate(payload)

    assert payload["type"] == event_type
    assert datetime.fromisoformat(payload["time"]).utcoffset() is not None


def test_every_event_type_has_a_schema_file() -> None:
    names = sorted(path.name for path in SCHEMAS.glob("*.schema.json"))

    assert names == sorted(f"{event_type}.schema.json" for event_type in EVENT_TYPES)


@pytest.mark.parametrize(("known_user", "known_learning"), [(USER, LEARNING), ({}, {})])
@pytest.mark.parametrize(("old", "old_score", "new", "new_score", "type_"), TRANSITIONS)
def test_polled_transition_payload_matches_its_schema(
    store: Store,
    known_user: dict[str, str],
    known_learning: dict[str, str],
    old: Status,
    old_score: float | None,
    new: Status,
    new_score: float | None,
    type_: str,
) -> None:
    with store.session() as session:
        ids = record_transition(
            session,
            user_id="u-17",
            learning_id="l-4",
            old_status=old,
            old_score=old_score,
            new_status=new,
            new_score=new_score,
            cause="elms",
            user=known_user,
            learning=known_learning,
            now=NOW,
        )

    [payload] = stored_payloads(store, ids)
    assert_valid(type_, payload)
    assert payload["inbound_event_id"] is None
    assert ("email" in payload["user"]) == bool(known_user)


def test_inbound_transition_payload_names_the_inbound_event(store: Store) -> None:
    with store.session() as session:
        event_row = store_failed_event(session)
        ids = record_transition(
            session,
            user_id="u-17",
            learning_id="l-4",
            old_status=Status.IN_PROGRESS,
            old_score=None,
            new_status=Status.COMPLETED,
            new_score=85.0,
            cause="inbound",
            inbound_event_id=event_row.id,
            now=NOW,
        )

    [payload] = stored_payloads(store, ids)
    assert_valid("progress.completed", payload)
    assert payload["inbound_event_id"] == event_row.id


@pytest.mark.parametrize(
    ("status", "reason"),
    [("failed", "Open ELMS answered 500"), ("unresolved", None)],
)
def test_event_failed_payload_matches_its_schema(
    store: Store, status: str, reason: str | None
) -> None:
    with store.session() as session:
        event_row = store_failed_event(session)
        event_id = announce_event_failed(
            session, event_row, NOW, status=status, reason=reason
        )

    [payload] = stored_payloads(store, [event_id])
    assert_valid("bridge.event_failed", payload)
    assert payload["status"] == status


def test_subscription_disabled_payload_matches_its_schema(store: Store) -> None:
    with store.session() as session:
        subscription = add_subscription(
            session, url="https://hooks.example.org/elms", event_types=["*"], now=NOW
        )
        event_id = disable_and_announce(
            session, subscription.id, reason="the subscriber answered 410 Gone", now=NOW
        )

    assert event_id is not None
    [payload] = stored_payloads(store, [event_id])
    assert_valid("bridge.subscription_disabled", payload)


def produce_one_of_each(store: Store) -> dict[str, dict[str, Any]]:
    """Write one outbound event of every type and return the payloads by type."""
    with store.session() as session:
        # The dispatcher always names the final status; the row is as claimed.
        failed = store_failed_event(session)
        ids = [announce_event_failed(session, failed, NOW, status="failed")]
        for old, old_score, new, new_score, _ in TRANSITIONS:
            ids += record_transition(
                session,
                user_id="u-17",
                learning_id="l-4",
                old_status=old,
                old_score=old_score,
                new_status=new,
                new_score=new_score,
                cause="elms",
                now=NOW,
            )
        subscription = add_subscription(
            session, url="https://hooks.example.org/elms", event_types=["*"], now=NOW
        )
        disabled = disable_and_announce(session, subscription.id, reason="410", now=NOW)
        assert disabled is not None
        ids.append(disabled)

    return {payload["type"]: payload for payload in stored_payloads(store, ids)}


def test_schemas_reject_a_real_payload_missing_any_required_field(
    store: Store,
) -> None:
    payloads = produce_one_of_each(store)
    assert sorted(payloads) == sorted(EVENT_TYPES)

    for event_type, payload in payloads.items():
        check = validator(event_type)
        check.validate(payload)
        for field in check.schema["required"]:
            partial = {key: value for key, value in payload.items() if key != field}
            with pytest.raises(ValidationError, match="is a required property"):
                check.validate(partial)


def test_progress_schema_rejects_an_unknown_field_and_a_wrong_status(
    store: Store,
) -> None:
    with store.session() as session:
        ids = record_transition(
            session,
            user_id="u-17",
            learning_id="l-4",
            old_status=Status.NOT_ATTEMPTED,
            old_score=None,
            new_status=Status.IN_PROGRESS,
            new_score=None,
            cause="elms",
            now=NOW,
        )
    [payload] = stored_payloads(store, ids)
    started = validator("progress.started")

    with pytest.raises(ValidationError):
        started.validate({**payload, "extra": 1})
    with pytest.raises(ValidationError):
        started.validate({**payload, "status": "completed"})
    with pytest.raises(ValidationError):
        started.validate({**payload, "cause": "manual"})
