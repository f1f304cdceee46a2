"""GET /readyz over real HTTP: ready, and each failing check saying why.

The heartbeat and the Open ELMS record are written by the worker's own
heartbeat function (``beat``); a real worker process against an Open ELMS
that does not answer is in tests/test_observability_processes.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from bridge.app import create_app
from bridge.config import Settings
from bridge.elms_contact import CONTACT_KEY, ElmsContact
from bridge.jobs.heartbeat import HEARTBEAT_PREFIX, beat
from bridge.store import dispatch_queries as dq
from bridge.store.db import create_store
from bridge.store.migrate import head, upgrade
from tests.pg import create_pg_database, drop_pg_database
from tests.servers import serve_wsgi


def ready(url: str) -> tuple[int, dict]:
    response = requests.get(f"{url}/readyz", timeout=10)
    return response.status_code, response.json()


def serve_app(database_url: str, **settings):
    store = create_store(database_url)
    app = create_app(Settings(database_url=database_url, **settings), store=store)
    return store, serve_wsgi(app)


@pytest.fixture
def database_url(tmp_path):
    url = f"sqlite:///{tmp_path}/bridge.db"
    upgrade(url)
    return url


@pytest.fixture
def pg_url():
    url = create_pg_database()
    upgrade(url)
    yield url
    drop_pg_database(url)


def answered_contact() -> ElmsContact:
    contact = ElmsContact()
    contact.succeeded()
    return contact


def check_ready_with_fresh_heartbeat(url: str) -> None:
    store, served = serve_app(url)
    beat(store, "w1", answered_contact())
    with served as app:
        status, body = ready(app.url)
    store.dispose()

    assert status == 200
    assert body["status"] == "ready"
    assert body["failed"] == []
    assert set(body["checks"]) == {"database", "migrations", "worker", "elms"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["migrations"]["detail"] == f"at {head()}"
    assert body["checks"]["worker"]["detail"].startswith("w1 beat ")


def test_ready_when_every_check_passes_sqlite(database_url):
    check_ready_with_fresh_heartbeat(database_url)


def test_ready_when_every_check_passes_postgresql(pg_url):
    check_ready_with_fresh_heartbeat(pg_url)


def test_no_worker_heartbeat_is_not_ready(database_url):
    store, served = serve_app(database_url)
    with served as app:
        status, body = ready(app.url)
    store.dispose()

    assert status == 503
    assert body["status"] == "not_ready"
    assert body["failed"] == ["worker"]
    assert body["checks"]["worker"] == {
        "ok": False,
        "detail": "no worker heartbeat recorded",
    }


def test_check_parameter_answers_for_the_named_checks_only(database_url):
    """A web pod's probe asks what intake needs; no worker does not fail it."""
    store, served = serve_app(database_url)
    with served as app:
        only = requests.get(
            f"{app.url}/readyz", params={"check": "database,migrations"}, timeout=10
        )
        repeated = requests.get(
            f"{app.url}/readyz?check=worker&check=database", timeout=10
        )
        unknown = requests.get(f"{app.url}/readyz?check=database,disk", timeout=10)
    store.dispose()

    assert only.status_code == 200
    assert only.json()["status"] == "ready"
    assert set(only.json()["checks"]) == {"database", "migrations"}
    assert repeated.status_code == 503
    assert repeated.json()["failed"] == ["worker"]
    assert set(repeated.json()["checks"]) == {"database", "worker"}
    assert unknown.status_code == 400
    assert unknown.json()["errors"] == [
        {
            "path": "check",
            "message": "unknown check(s) disk; known: database, migrations, "
            "worker, elms",
        }
    ]


def test_a_stale_heartbeat_is_not_ready(database_url):
    store, served = serve_app(database_url, ready_heartbeat_max=60)
    old = datetime.now(UTC) - timedelta(seconds=300)
    with store.session() as session:
        dq.write_state(
            session, HEARTBEAT_PREFIX + "w-old", {"at": old.isoformat()}, old
        )
    with served as app:
        status, body = ready(app.url)
    store.dispose()

    assert status == 503
    assert body["failed"] == ["worker"]
    detail = body["checks"]["worker"]["detail"]
    assert detail.startswith("newest heartbeat (w-old) was 30")
    assert detail.endswith("the limit is 60s")


def test_an_unreachable_sqlite_database_is_not_ready(tmp_path):
    # A directory where the database file should be: SQLite cannot open it.
    (tmp_path / "bridge.db").mkdir()
    url = f"sqlite:///{tmp_path}/bridge.db"
    store, served = serve_app(url)
    with served as app:
        status, body = ready(app.url)
    store.dispose()

    assert status == 503
    assert body["failed"] == ["database", "migrations", "worker", "elms"]
    database = body["checks"]["database"]
    assert database["ok"] is False
    assert database["detail"].startswith("unreachable: OperationalError: ")
    assert "unable to open database file" in database["detail"]
    assert body["checks"]["worker"]["detail"] == (
        "not checked: the database is unreachable"
    )


def test_an_unreachable_postgresql_server_is_not_ready():
    # Port 9 (discard) has no PostgreSQL on loopback.
    url = "postgresql+psycopg://postgres@127.0.0.1:9/nowhere"
    store, served = serve_app(url)
    with served as app:
        status, body = ready(app.url)
    store.dispose()

    assert status == 503
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["detail"].startswith("unreachable: ")


def test_a_database_behind_the_code_is_not_ready(tmp_path):
    url = f"sqlite:///{tmp_path}/bridge.db"
    upgrade(url, "0002")
    store, served = serve_app(url)
    beat(store, "w1", answered_contact())
    with served as app:
        status, body = ready(app.url)
    store.dispose()

    assert status == 503
    assert body["failed"] == ["migrations"]
    assert body["checks"]["migrations"]["detail"] == (
        f"database at revision 0002, code at {head()}"
    )


def test_failing_open_elms_is_not_ready_after_the_grace(database_url):
    store, served = serve_app(database_url, ready_elms_grace=60)
    contact = ElmsContact()
    long_ago = datetime.now(UTC) - timedelta(seconds=600)
    contact.succeeded(at=long_ago)
    contact.failed("PUT learning/{id}/{id}/start got no answer")
    beat(store, "w1", contact)
    with served as app:
        status, body = ready(app.url)
    store.dispose()

    assert status == 503
    assert body["failed"] == ["elms"]
    detail = body["checks"]["elms"]["detail"]
    assert detail.startswith("last call failed 0s ago (PUT learning/{id}/{id}/start")
    assert detail.endswith("last success: 600s ago")


def test_a_failure_within_the_grace_of_a_success_stays_ready(database_url):
    store, served = serve_app(database_url, ready_elms_grace=60)
    contact = ElmsContact()
    contact.succeeded(at=datetime.now(UTC) - timedelta(seconds=5))
    contact.failed("GET users got 503")
    beat(store, "w1", contact)
    with served as app:
        status, body = ready(app.url)
    store.dispose()

    assert status == 200
    assert body["checks"]["elms"]["detail"].startswith("last call failed, but one ")


def test_workers_merge_their_open_elms_records(database_url):
    store = create_store(database_url)
    failing, answering = ElmsContact(), ElmsContact()
    failing.failed(
        "GET users got no answer", at=datetime.now(UTC) - timedelta(seconds=60)
    )
    answering.succeeded()

    beat(store, "w1", failing)
    beat(store, "w2", answering)
    with store.session(write=False) as session:
        record = dq.read_state(session, CONTACT_KEY)
    store.dispose()

    assert record is not None
    assert record["last_error"] == "GET users got no answer"
    assert record["last_success"] > record["last_failure"]
