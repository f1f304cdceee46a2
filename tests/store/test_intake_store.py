"""Contract of the intake store, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError

from bridge.errors import ConflictError
from bridge.events import Kind
from bridge.store import Store, create_store
from bridge.store.queries import (
    add_source,
    count_events_by_status,
    event_content_hash,
    get_event,
    get_source,
    list_events,
    list_sources,
    record_intake,
    remove_source,
)

if TYPE_CHECKING:
    from bridge.events import ProgressEvent
    from bridge.store.models import EventRow, IntakeOutcome, IntakeRequest

    Intake = Callable[..., IntakeOutcome]
    MakeEvent = Callable[..., ProgressEvent]
    MakeRequest = Callable[..., IntakeRequest]

SOURCE = "lms-one"
REPO_ROOT = Path(__file__).resolve().parents[2]
PRAGMA_NAMES = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")


def count_rows(store: Store, table: str) -> int:
    query = text(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
    with store.session(write=False) as session:
        return session.execute(query).scalar_one()


def fetch_event(store: Store, event_id: str) -> EventRow:
    with store.session(write=False) as session:
        row = get_event(session, event_id)
    assert row is not None and row.request is not None
    return row


def full_url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def test_record_intake_stores_request_and_events_and_returns_ids(
    store: Store, intake: Intake, make_event: MakeEvent, make_request: MakeRequest
) -> None:
    events = [
        make_event("stmt-1", kind=Kind.COMPLETED),
        make_event("stmt-2", kind=Kind.INFORMATIONAL, note="unmapped verb"),
    ]
    outcome = intake(events, "key-1", request=make_request(b'{"a": 1}'))

    assert outcome.duplicate is False
    assert len(outcome.event_ids) == 2
    assert outcome.new_event_ids == outcome.event_ids
    assert (outcome.response_status, outcome.response_body) == (
        202,
        {"request_id": outcome.request_id, "event_ids": outcome.event_ids},
    )
    assert count_rows(store, "inbound_requests") == 1
    assert count_rows(store, "events") == 2

    first = fetch_event(store, outcome.event_ids[0])
    second = fetch_event(store, outcome.event_ids[1])
    assert (first.source_event_id, first.status) == ("stmt-1", "pending")
    assert (second.source_event_id, second.status) == ("stmt-2", "informational")
    assert first.request_id == outcome.request_id
    assert first.learner == {"email": "learner@example.org"}
    assert first.score == 85.0
    assert second.note == "unmapped verb"
    assert first.content_hash == event_content_hash(events[0])


def test_same_dedupe_key_returns_stored_answer_and_adds_no_rows(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    events = [make_event("stmt-1")]
    first = intake(events, "key-1")

    def other_answer(request_id: str, event_ids: list[str]) -> tuple[int, Any]:
        return 500, {"never": "stored"}

    again = intake(events, "key-1", respond=other_answer)

    assert again.duplicate is True
    assert again.request_id == first.request_id
    assert again.event_ids == first.event_ids
    assert again.response_status == 202
    assert again.response_body == first.response_body
    assert again.new_event_ids == []
    assert count_rows(store, "inbound_requests") == 1
    assert count_rows(store, "events") == 1


def test_same_event_and_content_in_new_request_reuses_stored_id(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    first = intake([make_event("stmt-1")], "key-1")
    events = [make_event("stmt-2"), make_event("stmt-1")]
    second = intake(events, "key-2")

    assert second.duplicate is False
    assert second.request_id != first.request_id
    assert second.event_ids[1] == first.event_ids[0]
    assert second.new_event_ids == [second.event_ids[0]]
    assert second.response_body["event_ids"] == second.event_ids
    assert count_rows(store, "inbound_requests") == 2
    assert count_rows(store, "events") == 2


def test_same_event_id_with_other_content_raises_conflict_and_stores_nothing(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    intake([make_event("stmt-1", verb="completed")], "k1")
    events = [make_event("stmt-9"), make_event("stmt-1", verb="passed")]

    with pytest.raises(ConflictError) as caught:
        intake(events, "key-2")

    assert "stmt-1" in str(caught.value)
    assert caught.value.errors == [{"source": SOURCE, "event_id": "stmt-1"}]
    assert caught.value.status == 409
    assert count_rows(store, "inbound_requests") == 1
    assert count_rows(store, "events") == 1


def test_conflict_rolls_back_only_its_savepoint_inside_callers_session(
    store: Store, intake: Intake, make_event: MakeEvent, make_request: MakeRequest
) -> None:
    intake([make_event("stmt-1", verb="completed")], "k1")

    with store.session() as session:
        with pytest.raises(ConflictError):
            record_intake(
                session,
                source=SOURCE,
                request=make_request(),
                events=[make_event("stmt-2"), make_event("stmt-1", verb="failed")],
                dedupe_key="key-2",
                respond=lambda request_id, event_ids: (202, {}),
            )
        add_source(session, "after-conflict", "xapi", {"type": "none"}, {})

    assert count_rows(store, "inbound_requests") == 1
    assert count_rows(store, "events") == 1
    assert count_rows(store, "sources") == 1


def test_event_id_repeated_within_one_request(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    same = [make_event("stmt-1"), make_event("stmt-1")]
    outcome = intake(same, "key-1")
    assert outcome.event_ids[0] == outcome.event_ids[1]
    assert count_rows(store, "events") == 1

    clash = [
        make_event("stmt-2", verb="completed"),
        make_event("stmt-2", verb="failed"),
    ]
    with pytest.raises(ConflictError):
        intake(clash, "key-2")
    assert count_rows(store, "inbound_requests") == 1


def test_event_from_another_source_is_refused(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    with pytest.raises(ValueError, match="other-lms"):
        intake([make_event(source="other-lms")], "k")


def test_racing_threads_store_one_row_per_event(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[IntakeOutcome] = []
    failures: list[Exception] = []

    def post(key: str) -> None:
        try:
            barrier.wait()
            outcome = intake([make_event("stmt-1")], key)
            outcomes.append(outcome)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=post, args=(f"key-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert len({outcome.event_ids[0] for outcome in outcomes}) == 1
    assert sum(len(outcome.new_event_ids) for outcome in outcomes) == 1
    assert count_rows(store, "events") == 1
    assert count_rows(store, "inbound_requests") == 4


def wait_until_blocked(store: Store, seconds: float = 5.0) -> None:
    """Wait until another connection waits on a lock (PostgreSQL) or a while."""
    if store.dialect != "postgresql":
        time.sleep(0.3)
        return

    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with store.session(write=False) as session:
            if session.execute(query).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError("the second writer never waited on the first one's lock")


@pytest.mark.parametrize("same_key", [False, True], ids=["new-key", "same-key"])
def test_writer_losing_insert_race_returns_winners_row(
    store: Store,
    intake: Intake,
    make_event: MakeEvent,
    make_request: MakeRequest,
    same_key: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.store.queries")
    winner_inserted = threading.Event()
    release_winner = threading.Event()
    results: dict[str, IntakeOutcome] = {}

    def win() -> None:
        with store.session() as session:
            results["winner"] = record_intake(
                session,
                source=SOURCE,
                request=make_request(),
                events=[make_event("stmt-1")],
                dedupe_key="key-1",
                respond=lambda request_id, event_ids: (202, {"ids": event_ids}),
            )
            winner_inserted.set()
            release_winner.wait(10)

    def lose() -> None:
        key = "key-1" if same_key else "key-2"
        results["loser"] = intake([make_event("stmt-1")], key)

    winner = threading.Thread(target=win)
    winner.start()
    assert winner_inserted.wait(10)
    loser = threading.Thread(target=lose)
    loser.start()

    wait_until_blocked(store)
    release_winner.set()
    winner.join()
    loser.join()

    assert results["loser"].event_ids == results["winner"].event_ids
    assert results["loser"].duplicate is same_key
    assert results["loser"].new_event_ids == []
    assert count_rows(store, "events") == 1
    assert count_rows(store, "inbound_requests") == (1 if same_key else 2)
    if store.dialect == "postgresql":
        assert "lost an insert race" in caplog.text


CHILD_SCRIPT = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from bridge.events import ActivityRef, Kind, LearnerRef, ProgressEvent
from bridge.store import create_store
from bridge.store.models import IntakeRequest
from bridge.store.queries import record_intake

url, key, go = sys.argv[1:4]
event = ProgressEvent(
    source="lms-one", event_id="stmt-1", learner=LearnerRef(user_id="7"),
    activity=ActivityRef(course_id="c1"), kind=Kind.COMPLETED,
    occurred_at=datetime(2026, 1, 1, tzinfo=UTC), raw={"id": "stmt-1"},
)
request = IntakeRequest("POST", "/hooks/lms-one", None, {}, b"{}")
store = create_store(url)
while not Path(go).exists():
    time.sleep(0.005)
with store.session() as session:
    outcome = record_intake(
        session, source="lms-one", request=request, events=[event],
        dedupe_key=key, respond=lambda rid, ids: (202, {"ids": ids}),
    )
print(outcome.event_ids[0], len(outcome.new_event_ids))
"""


def test_racing_processes_store_one_row_per_event(store: Store, tmp_path: Path) -> None:
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_SCRIPT, full_url(store), f"key-{n}", str(go)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    time.sleep(0.5)
    go.touch()
    results = [child.communicate(timeout=60) for child in children]

    assert [child.returncode for child in children] == [0] * 4, results
    lines = [out.split() for out, _ in results]
    assert len({event_id for event_id, _ in lines}) == 1
    assert sum(int(new) for _, new in lines) == 1
    assert count_rows(store, "events") == 1


def test_datetimes_round_trip_as_aware_utc(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    plus_two = timezone(timedelta(hours=2))
    occurred = datetime(2026, 3, 1, 11, 30, 15, 123456, tzinfo=plus_two)
    now = datetime(2026, 3, 2, 8, 0, 0, 654321, tzinfo=UTC)
    event = make_event(occurred_at=occurred)
    outcome = intake([event], "k", now=now)

    row = fetch_event(store, outcome.event_ids[0])
    request = row.request
    assert request is not None

    assert row.occurred_at == occurred
    assert row.occurred_at.utcoffset() == timedelta(0)
    assert row.occurred_at.hour == 9
    assert row.created_at == now and row.created_at.tzinfo is not None
    assert request.received_at == now
    assert request.received_at.utcoffset() == timedelta(0)


def test_naive_datetime_is_refused(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    event = make_event(occurred_at=datetime(2026, 3, 1, 9, 30))
    with pytest.raises(StatementError, match="naive datetime"):
        intake([event], "k")
    assert count_rows(store, "events") == 0


def test_list_events_newest_first_with_filters_and_pages(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(5):
        kind = Kind.INFORMATIONAL if n == 2 else Kind.STARTED
        events = [make_event(f"stmt-{n}", kind=kind)]
        now = start + timedelta(minutes=n)
        intake(events, f"key-{n}", now=now)

    with store.session(write=False) as session:
        everything = list_events(session)
        page_one = list_events(session, limit=2)
        page_two = list_events(session, limit=2, before=page_one[-1].id)
        page_three = list_events(session, limit=2, before=page_two[-1].id)
        pending = list_events(session, status="pending")
        informational = list_events(session, status="informational")
        elsewhere = list_events(session, source="other")
        unknown_cursor = list_events(session, before="no-such-id")

    names = [row.source_event_id for row in everything]
    assert names == ["stmt-4", "stmt-3", "stmt-2", "stmt-1", "stmt-0"]
    pages = page_one + page_two + page_three
    assert [row.source_event_id for row in pages] == names
    assert [row.source_event_id for row in informational] == ["stmt-2"]
    assert len(pending) == 4
    assert elsewhere == []
    assert unknown_cursor == []
    assert everything[0].request is None


def test_list_events_pages_through_events_of_one_instant(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    events = [make_event(f"stmt-{n}") for n in range(5)]
    intake(events, "key-1")

    seen: list[str] = []
    with store.session(write=False) as session:
        page = list_events(session, limit=2)
        while page:
            seen += [row.id for row in page]
            page = list_events(session, limit=2, before=page[-1].id)

    assert sorted(seen) == sorted({*seen})
    assert len(seen) == 5


def test_get_event_returns_its_request_with_raw_headers_and_body(
    store: Store, intake: Intake, make_event: MakeEvent, make_request: MakeRequest
) -> None:
    body = b'{"id": "stmt-1", "bytes": "\\u00e9"}\x00\xff'
    outcome = intake([make_event()], "key-1", request=make_request(body))

    row = fetch_event(store, outcome.event_ids[0])
    request = row.request
    assert request is not None
    with store.session(write=False) as session:
        missing = get_event(session, "no-such-id")

    assert missing is None
    assert request.body == body
    assert request.headers == make_request().headers
    assert request.method == "POST"
    assert request.path == "/hooks/lms-one"
    assert request.content_type == "application/json"
    assert request.dedupe_key == "key-1"
    assert request.event_ids == outcome.event_ids
    assert request.response_status == 202
    assert len(request.body_sha256) == 64


def test_count_events_by_status(
    store: Store, intake: Intake, make_event: MakeEvent
) -> None:
    events = [
        make_event("a", kind=Kind.STARTED),
        make_event("b", kind=Kind.PASSED),
        make_event("c", kind=Kind.INFORMATIONAL),
    ]
    intake(events, "key-1")

    with store.session(write=False) as session:
        counts = count_events_by_status(session)

    assert counts == {"pending": 2, "informational": 1}


def test_sources_can_be_added_listed_read_and_removed(store: Store) -> None:
    auth = {"type": "basic", "username": "lms", "password": "s3cret-value"}
    with store.session() as session:
        added = add_source(
            session, "moodle", "xapi", auth, {"lenient": True}, max_body_bytes=1024
        )
        add_source(session, "h5p", "generic", {"type": "none"}, {})

    with store.session() as session:
        with pytest.raises(ValueError, match="moodle"):
            add_source(session, "moodle", "cmi5", {}, {})
        names = [row.name for row in list_sources(session)]
        moodle = get_source(session, "moodle")

    assert names == ["h5p", "moodle"]
    assert moodle == added
    assert moodle.auth == auth
    assert moodle.options == {"lenient": True}
    assert moodle.max_body_bytes == 1024
    assert moodle.created_at.tzinfo is not None
    assert "s3cret-value" not in repr(moodle)

    with store.session() as session:
        assert remove_source(session, "moodle") is True
        assert remove_source(session, "moodle") is False
        assert get_source(session, "moodle") is None
        assert [row.name for row in list_sources(session)] == ["h5p"]
        assert list_sources(session)[0].max_body_bytes is None


def test_session_rolls_back_when_the_block_raises(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.session() as session:
            add_source(session, "moodle", "xapi", {}, {})
            raise RuntimeError("boom")

    assert count_rows(store, "sources") == 0


def test_event_content_hash_follows_statement_content(
    make_event: MakeEvent,
) -> None:
    statement = {"id": "s1", "verb": {"id": "v/completed"}, "object": {"id": "o"}}
    reordered = {"object": {"id": "o"}, "verb": {"id": "v/completed"}, "id": "s1"}
    other_verb = {"id": "s1", "verb": {"id": "v/failed"}, "object": {"id": "o"}}

    def digest(raw: Any) -> str:
        return event_content_hash(make_event("s1", raw=raw))

    assert digest(statement) == digest(reordered)
    assert digest(statement) != digest(other_verb)
    assert digest(b"raw bytes") != digest(b"raw bytez")
    assert len(digest(statement)) == 64


def test_store_url_masks_the_password() -> None:
    store = create_store("postgresql+psycopg://bridge:hunter2@127.0.0.1:1/db")
    try:
        assert "hunter2" not in store.url
        assert "hunter2" not in repr(store)
        assert "***" in str(store)
        assert store.dialect == "postgresql"
    finally:
        store.dispose()


def test_sqlite_store_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "var" / "nested" / "bridge.db"
    store = create_store(f"sqlite:///{path}")
    try:
        with store.session(write=False) as session:
            pragmas = {
                name: session.execute(text(f"PRAGMA {name}")).scalar_one()
                for name in PRAGMA_NAMES
            }
    finally:
        store.dispose()

    assert path.parent.is_dir()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL: a 2xx answer survives a power cut
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }


def test_sqlite_write_sessions_queue_while_readers_go_on(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'bridge.db'}")
    with store.session() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))

    finished: dict[str, float] = {}

    def use(name: str, write: bool) -> None:
        with store.session(write=write) as session:
            session.execute(text("SELECT count(*) FROM t")).scalar_one()
        finished[name] = time.monotonic()

    try:
        with store.session() as holder:
            holder.execute(text("INSERT INTO t VALUES (1)"))
            reader = threading.Thread(target=use, args=("reader", False))
            writer = threading.Thread(target=use, args=("writer", True))
            reader.start()
            writer.start()
            reader.join(5)
            time.sleep(0.3)
            assert "reader" in finished
            assert "writer" not in finished
            released = time.monotonic()
        writer.join(10)
    finally:
        store.dispose()

    assert finished["writer"] >= released
