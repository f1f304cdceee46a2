"""Batched intake writes on SQLite: each request answered as if alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bridge.errors import ConflictError
from bridge.store import create_store, migrate, queries
from bridge.store.group_commit import GroupCommitter
from bridge.store.intake_queries import IntakeWrite, record_intakes
from tests.store.conftest import accept, build_event, build_request


@pytest.fixture
def sqlite_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'batch.db'}"
    migrate.upgrade(url)
    store = create_store(url)
    yield store
    store.dispose()


def writer_for(event_id: str, verb: str | None = None, body: bytes | None = None):
    event = build_event(event_id, verb=verb)
    request = build_request(body or f"body-{event_id}-{verb}".encode())

    return IntakeWrite(event.source, request, [event], request.body.decode(), accept)


def test_concurrent_writes_are_batched_and_all_stored(sqlite_store):
    committer = GroupCommitter(sqlite_store)
    batches = []
    original = committer._write_batch

    def counting(batch):
        batches.append(len(batch))
        original(batch)

    committer._write_batch = counting
    gate = threading.Barrier(16)

    def send(number):
        gate.wait()
        return committer.write(writer_for(f"stmt-{number}"))

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(send, range(16)))

    with sqlite_store.session(write=False) as session:
        stored = queries.count_events_by_status(session)
    assert stored == {"pending": 16}
    assert len({o.event_ids[0] for o in outcomes}) == 16
    assert sum(batches) == 16
    assert max(batches) > 1


def test_a_conflict_in_a_batch_refuses_only_its_own_request(sqlite_store):
    committer = GroupCommitter(sqlite_store)
    committer.write(writer_for("stmt-x", verb="completed"))
    gate = threading.Barrier(3)

    def send(write):
        gate.wait()
        try:
            return committer.write(write)
        except ConflictError as exc:
            return exc

    writes = [
        writer_for("stmt-y"),
        writer_for("stmt-x", verb="attempted"),
        writer_for("stmt-z"),
    ]
    with ThreadPoolExecutor(3) as pool:
        first, conflict, last = pool.map(send, writes)

    assert isinstance(conflict, ConflictError)
    assert not first.duplicate and not last.duplicate
    with sqlite_store.session(write=False) as session:
        ids = {row.source_event_id for row in queries.list_events(session)}
    assert ids == {"stmt-x", "stmt-y", "stmt-z"}


def test_the_same_request_twice_in_one_batch_is_stored_once(sqlite_store):
    committer = GroupCommitter(sqlite_store)
    gate = threading.Barrier(2)
    write = writer_for("stmt-same", body=b"same body")

    def send(_):
        gate.wait()
        return committer.write(write)

    with ThreadPoolExecutor(2) as pool:
        one, two = pool.map(send, range(2))

    assert one.request_id == two.request_id
    assert sorted([one.duplicate, two.duplicate]) == [False, True]
    with sqlite_store.session(write=False) as session:
        assert len(queries.list_events(session)) == 1


def test_one_batch_answers_each_request_as_if_it_came_alone(sqlite_store):
    """The batch path, without threads: repeats, conflicts and shared ids."""
    with sqlite_store.write_connection() as connection:
        [stored] = record_intakes(connection, [writer_for("stmt-x", verb="completed")])

    batch = [
        writer_for("stmt-y"),
        writer_for("stmt-x", verb="attempted"),  # stored id, other content
        writer_for("stmt-x", verb="completed", body=b"stmt-x again"),  # same content
        writer_for("stmt-y"),  # the first request of this batch, repeated
        writer_for("stmt-w", verb="completed", body=b"w-1"),
        writer_for("stmt-w", verb="attempted", body=b"w-2"),  # conflicts in-batch
    ]
    with sqlite_store.write_connection() as connection:
        outcomes = record_intakes(connection, batch)

    first_y, conflict, same_x, repeated_y, first_w, conflict_w = outcomes
    assert isinstance(conflict, ConflictError)
    assert isinstance(conflict_w, ConflictError)
    assert not first_y.duplicate and repeated_y.duplicate
    assert repeated_y.request_id == first_y.request_id
    assert repeated_y.response_body == first_y.response_body
    assert not same_x.duplicate and same_x.new_event_ids == []
    assert same_x.event_ids == stored.event_ids
    assert first_w.new_event_ids == first_w.event_ids
    with sqlite_store.session(write=False) as session:
        events = queries.list_events(session)
        requests = {e.request_id for e in events}
    assert sorted(e.source_event_id for e in events) == ["stmt-w", "stmt-x", "stmt-y"]
    assert requests == {
        stored.request_id,
        first_y.request_id,
        first_w.request_id,
    }
