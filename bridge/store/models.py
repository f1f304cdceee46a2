"""Tables of the intake side and the plain records that queries return.

The ORM classes mirror migration ``0001_intake`` column for column;
``bridge.store.migrate.check`` reports any drift between the two. Queries
hand out the frozen records below rather than ORM objects, so nothing a
caller holds is tied to a session that has closed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints compare equal on every backend, so `check` sees no drift
# from names a database made up.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC and read them back aware, on every backend.

    SQLite keeps no offset, so values are written as naive UTC there and
    given their UTC zone back on reading.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        """Refuse naive datetimes and convert aware ones to UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} given; the store keeps UTC")

        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base holding the bridge's metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class EventStatus(enum.StrEnum):
    """Where an event stands on its way to Open ELMS."""

    PENDING = "pending"
    INFORMATIONAL = "informational"
    UNRESOLVED = "unresolved"
    DISPATCHED = "dispatched"
    SKIPPED = "skipped"
    FAILED = "failed"
    VOIDED_REPORTED = "voided-reported"


class SourceModel(Base):
    """A source added at run time (the sources file is read elsewhere)."""

    __tablename__ = "sources"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(32))
    auth: Mapped[dict[str, Any]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    max_body_bytes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class InboundRequestModel(Base):
    """One webhook request as received, with the answer it was given."""

    __tablename__ = "inbound_requests"
    __table_args__ = (
        UniqueConstraint("source", "dedupe_key"),
        Index(None, "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(2048))
    content_type: Mapped[str | None] = mapped_column(String(255))
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    event_ids: Mapped[list[str]] = mapped_column(JSON)
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSON)


class EventModel(Base):
    """One normalised progress event and its dispatch status."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "source_event_id"),
        Index(None, "status", "created_at"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "source"),
        Index(None, "request_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("inbound_requests.id")
    )
    source: Mapped[str] = mapped_column(String(64))
    source_event_id: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    learner: Mapped[dict[str, str]] = mapped_column(JSON)
    activity: Mapped[dict[str, str]] = mapped_column(JSON)
    registration: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(32))
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Dispatch (migration 0002): the event row is its own outbox entry.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    user_id: Mapped[str | None] = mapped_column(String(64))
    learning_id: Mapped[str | None] = mapped_column(String(64))
    elms_call: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Migration 0004: the X-Request-ID of the request that carried it first.
    correlation_id: Mapped[str | None] = mapped_column(String(128))


class MappingModel(Base):
    """An explicit activity -> Open ELMS learning id mapping.

    ``source`` is ``*`` for a mapping that applies to every source.
    ``activity_key`` is compared with the event's IRI, course id and
    content id, case-insensitively (stored lower-cased).
    """

    __tablename__ = "mappings"
    __table_args__ = (UniqueConstraint("source", "activity_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    activity_key: Mapped[str] = mapped_column(String(1024))
    learning_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ProgressModel(Base):
    """What the bridge knows of one (user, learning) pair in Open ELMS.

    The progress rules read and move this row; it only moves forward.
    ``status`` is ``not attempted`` until the bridge applies something.
    ``completed_event_at`` is when the applied completion occurred, for the
    ``latest`` score policy.
    """

    __tablename__ = "progress"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    learning_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    completed_event_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_event_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # A worker holds the pair while its Open ELMS call is in flight, so two
    # workers never send calls for one pair at once; no lock is held meanwhile.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ElmsCallModel(Base):
    """One Open ELMS call the dispatcher made for an event, and its answer."""

    __tablename__ = "elms_calls"
    __table_args__ = (Index(None, "event_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), ForeignKey("events.id"))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(64))
    called_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WorkerStateModel(Base):
    """Shared worker state by key: the dispatch pause, worker heartbeats."""

    __tablename__ = "worker_state"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


@dataclass(frozen=True)
class IntakeRequest:
    """The parts of an inbound HTTP request that are kept.

    ``headers`` must already be stripped of credentials.
    """

    method: str
    path: str
    content_type: str | None
    headers: dict[str, str]
    body: bytes = field(repr=False)
    correlation_id: str | None = None  # the request's X-Request-ID


@dataclass(frozen=True)
class IntakeOutcome:
    """What ``record_intake`` did, and the answer the client is to get.

    ``event_ids`` follow the request's order and include events stored by
    an earlier request; ``new_event_ids`` are the ones this call inserted.
    """

    duplicate: bool
    request_id: str
    response_status: int
    response_body: dict[str, Any]
    event_ids: list[str]
    new_event_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RequestRow:
    """A stored inbound request, raw headers and body included."""

    id: str
    source: str
    received_at: datetime
    method: str
    path: str
    content_type: str | None
    headers: dict[str, str]
    body: bytes = field(repr=False)
    body_sha256: str
    dedupe_key: str
    event_ids: list[str]
    response_status: int
    response_body: dict[str, Any]


@dataclass(frozen=True)
class EventRow:
    """A stored event; ``request`` is filled in by ``get_event`` only."""

    id: str
    request_id: str
    source: str
    source_event_id: str
    content_hash: str
    kind: str
    score: float | None
    learner: dict[str, str]
    activity: dict[str, str]
    registration: str | None
    occurred_at: datetime
    note: str | None
    extra: dict[str, Any]
    status: str
    status_reason: str | None
    created_at: datetime
    updated_at: datetime
    request: RequestRow | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    user_id: str | None = None
    learning_id: str | None = None
    elms_call: str | None = None
    last_error: str | None = None
    dispatched_at: datetime | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class SourceRow:
    """A runtime-managed source; ``auth`` holds secrets and stays out of repr."""

    name: str
    format: str
    auth: dict[str, Any] = field(repr=False)
    options: dict[str, Any]
    max_body_bytes: int | None
    created_at: datetime
    updated_at: datetime


# The outbound tables share Base's metadata; importing them here puts them
# in every metadata comparison (migrations, ``db check``).
from bridge.store import outbound_models  # noqa: E402, F401
