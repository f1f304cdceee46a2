"""The Open ELMS client against a running sandbox, over real HTTP."""

from __future__ import annotations

import socket
import time
import zipfile

import pytest
import requests

from bridge.elms import OpenElmsClient
from bridge.elms_shapes import Progress, Status
from bridge.errors import (
    ElmsAuthError,
    ElmsNotFoundError,
    ElmsNotImplementedError,
    ElmsPreconditionError,
    ElmsServerError,
    ElmsShapeError,
    ElmsTransportError,
    ElmsUnavailableError,
    ElmsValidationError,
)


@pytest.fixture
def client(sandbox):
    with OpenElmsClient(
        sandbox.base_url, sandbox.token, retries=3, backoff=0.01, backoff_max=0.05
    ) as client:
        yield client


def calls(sandbox) -> list[dict]:
    return requests.get(f"{sandbox.admin_url}/calls", timeout=5).json()["calls"]


def clear_calls(sandbox) -> None:
    requests.delete(f"{sandbox.admin_url}/calls", timeout=5).raise_for_status()


def set_faults(sandbox, **faults) -> None:
    response = requests.put(f"{sandbox.admin_url}/faults", json=faults, timeout=5)
    response.raise_for_status()


def set_shapes(sandbox, **shapes) -> None:
    response = requests.put(f"{sandbox.admin_url}/shapes", json=shapes, timeout=5)
    response.raise_for_status()


def a_user(client, **criteria) -> dict:
    found = client.search_users(**criteria)
    assert len(found) == 1, found
    return found[0]


def a_learning(client, learning_type: str) -> dict:
    return next(r for r in client.list_learning() if r["type"] == learning_type)


def test_progress_round_trip_start_then_complete(client, sandbox):
    user = a_user(client, email="learner1@example.com")
    course = a_learning(client, "e-learning")

    client.start(course["id"], user["id"])
    after_start = client.get_progress(course["id"], user["id"])
    client.complete(course["id"], user["id"], 85)
    after_complete = client.get_progress(course["id"], user["id"])

    assert after_start.status in (Status.IN_PROGRESS, Status.COMPLETED)
    assert after_complete == Progress(Status.COMPLETED, 85.0)
    paths = [c["path"] for c in calls(sandbox) if c["method"] == "PUT"]
    assert paths == [
        f"learning/{course['id']}/{user['id']}/start",
        f"learning/{course['id']}/{user['id']}/complete/85",
    ]


def test_complete_without_score_sends_no_score_segment(client, sandbox):
    user = a_user(client, email="xapi-test@example.com")
    course = a_learning(client, "e-learning")

    client.complete(course["id"], user["id"])

    put = [c for c in calls(sandbox) if c["method"] == "PUT"][-1]
    assert put["path"] == f"learning/{course['id']}/{user['id']}/complete"
    assert client.get_progress(course["id"], user["id"]).status is Status.COMPLETED


def test_score_is_rounded_to_a_whole_number(client, sandbox):
    user = a_user(client, email="user@example.com")
    course = a_learning(client, "e-learning")

    client.complete(course["id"], user["id"], 72.6)

    assert calls(sandbox)[-1]["path"].endswith("/complete/73")


def test_users_list_get_and_search_by_every_field(client):
    users = client.list_users()
    first = users[0]

    assert len(users) >= 8
    assert client.get_user(first["id"])["username"] == first["username"]
    searches = {
        "fname": first["fname"],
        "lname": first["lname"],
        "username": first["username"],
        "usercode": first["usercode"],
        "email": first["email"],
        "company_id": first["company"]["id"],
        "department_id": first["department"]["id"],
        "country_id": first["country"]["id"],
        "city_id": first["city"]["id"],
        "location_id": first["location"]["id"],
        "group_id": first["groups"][0]["id"],
    }
    for field, value in searches.items():
        found = client.search_users(**{field: value})
        assert first["id"] in [u["id"] for u in found], field
    both = client.search_users(fname=first["fname"], email=first["email"])
    assert [u["id"] for u in both] == [first["id"]]


def test_search_refuses_an_undocumented_field(client):
    with pytest.raises(ValueError, match="unknown search field"):
        client.search_users(shoe_size="9")


def test_create_and_update_user_with_form_data(client):
    new_id = client.create_user(
        username="new.learner", fname="New", lname="Learner", email="new@example.com"
    )
    client.update_user(new_id, lname="Renamed")

    user = client.get_user(new_id)
    assert user["username"] == "new.learner"
    assert user["lname"] == "Renamed"


@pytest.mark.parametrize(
    ("shape", "expected_type"), [("number", int), ("string", int), ("object", int)]
)
def test_create_user_reads_each_id_shape(client, sandbox, shape, expected_type):
    set_shapes(sandbox, user_id_shape=shape)

    new_id = client.create_user(username=f"shape-{shape}", email=f"{shape}@example.com")

    assert isinstance(new_id, expected_type)
    assert client.get_user(new_id)["username"] == f"shape-{shape}"


def test_create_user_with_unreadable_id_raises_shape_error(client, sandbox):
    set_shapes(sandbox, user_id_shape="garbage")

    with pytest.raises(ElmsShapeError, match="unreadable user id: dict"):
        client.create_user(username="garbage-shape")


@pytest.mark.parametrize(
    "shape", ["list", "object", "list_of_object", "object_alt_spelling"]
)
def test_progress_reads_each_shape(client, sandbox, shape):
    user = a_user(client, email="guest@example.com")
    course = a_learning(client, "e-learning")
    client.complete(course["id"], user["id"], 64)
    set_shapes(sandbox, progress_shape=shape)

    assert client.get_progress(course["id"], user["id"]) == Progress(
        Status.COMPLETED, 64.0
    )


def test_progress_garbage_shape_raises_clear_error(client, sandbox):
    user = a_user(client, email="guest@example.com")
    course = a_learning(client, "e-learning")
    set_shapes(sandbox, progress_shape="garbage")

    with pytest.raises(ElmsShapeError, match=r"unreadable progress body: dict"):
        client.get_progress(course["id"], user["id"])


def test_wrong_token_is_an_auth_error_and_not_retried(sandbox):
    with OpenElmsClient(sandbox.base_url, "wrong", retries=3, backoff=0.01) as bad:
        with pytest.raises(ElmsAuthError) as caught:
            bad.list_users()

    assert caught.value.status == 403
    assert caught.value.method == "GET"
    assert caught.value.path == "users/"
    assert len(calls(sandbox)) == 1


def test_unknown_user_is_not_found_after_one_call(client, sandbox):
    course = a_learning(client, "e-learning")
    clear_calls(sandbox)

    with pytest.raises(ElmsNotFoundError) as caught:
        client.get_progress(course["id"], 999999)

    assert caught.value.status == 404
    assert caught.value.path == f"learning/{course['id']}/999999"
    assert len(calls(sandbox)) == 1


def test_invalid_form_data_is_a_validation_error_with_message(client, sandbox):
    with pytest.raises(ElmsValidationError) as caught:
        client.create_user(username="x", email="not-an-email")

    assert caught.value.status == 400
    assert caught.value.method == "POST"
    assert "email" in str(caught.value)
    assert len(calls(sandbox)) == 1


def test_undocumented_method_is_not_implemented(client):
    with pytest.raises(ElmsNotImplementedError) as caught:
        client.send("DELETE", "users/1")

    assert caught.value.status == 501


def test_precondition_failed_is_its_own_class_and_not_retried(client, sandbox):
    set_faults(sandbox, fail_next=[{"status": 412, "body": "bad header"}])

    with pytest.raises(ElmsPreconditionError) as caught:
        client.list_learning()

    assert caught.value.status == 412
    assert len(calls(sandbox)) == 1


def test_two_503s_then_success_takes_three_calls(client, sandbox):
    set_faults(sandbox, fail_next=[{"status": 503}, {"status": 503}])

    learning = client.list_learning()

    assert learning
    statuses = [c["status"] for c in calls(sandbox)]
    assert statuses == [503, 503, 200]


def test_500_is_retried_up_to_the_limit_then_raised(client, sandbox):
    set_faults(sandbox, fail_next=[{"status": 500}] * 5)

    with pytest.raises(ElmsServerError) as caught:
        client.list_users()

    assert caught.value.status == 500
    assert len(calls(sandbox)) == 4  # the call and three retries


def test_retry_after_is_waited_for(client, sandbox):
    set_faults(sandbox, fail_next=[{"status": 503, "retry_after": 1}])

    started = time.monotonic()
    client.list_learning()
    elapsed = time.monotonic() - started

    assert [c["status"] for c in calls(sandbox)] == [503, 200]
    assert elapsed >= 0.9


def test_unavailable_error_carries_retry_after(sandbox):
    set_faults(sandbox, outage=True, outage_retry_after=7)

    with OpenElmsClient(sandbox.base_url, sandbox.token, retries=0) as client:
        with pytest.raises(ElmsUnavailableError) as caught:
            client.list_users()

    assert caught.value.status == 503
    assert caught.value.retry_after == 7.0


def test_create_user_is_not_retried_on_503(client, sandbox):
    set_faults(sandbox, fail_next=[{"status": 503}])

    with pytest.raises(ElmsUnavailableError):
        client.create_user(username="once.only")

    assert len(calls(sandbox)) == 1


def test_progress_put_is_retried_on_500(client, sandbox):
    user = a_user(client, email="learner1@example.com")
    course = a_learning(client, "e-learning")
    clear_calls(sandbox)
    set_faults(sandbox, fail_next=[{"status": 500}])

    client.start(course["id"], user["id"])

    assert [c["status"] for c in calls(sandbox)] == [500, 200]


def test_refused_connection_is_a_transport_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/demo/backend"

    with OpenElmsClient(url, "t", retries=1, backoff=0.01) as client:
        with pytest.raises(ElmsTransportError, match="connection failed"):
            client.list_users()


def test_slow_answer_is_a_read_timeout(sandbox):
    set_faults(sandbox, latency_ms=1500)

    with OpenElmsClient(
        sandbox.base_url, sandbox.token, retries=0, read_timeout=0.3
    ) as client:
        with pytest.raises(ElmsTransportError, match="read timeout"):
            client.list_users()


def test_download_streams_a_zip_with_a_manifest(client, tmp_path):
    course = a_learning(client, "e-learning")
    target = tmp_path / "course.zip"

    size = client.download_learning(course["id"], target)

    assert size == target.stat().st_size > 0
    with zipfile.ZipFile(target) as archive:
        assert "imsmanifest.xml" in archive.namelist()
    assert list(tmp_path.iterdir()) == [target]


def test_learning_get_includes_download_link_for_scorm(client):
    course = a_learning(client, "e-learning")

    detail = client.get_learning(course["id"])

    assert detail["name"] == course["name"]
    assert detail["download_link"].endswith(f"learning/download/{course['id']}")


def test_token_never_appears_in_logs(client, sandbox, caplog):
    caplog.set_level("DEBUG")
    set_faults(sandbox, fail_next=[{"status": 503}])

    client.list_users()

    assert sandbox.token not in caplog.text
    assert "elms GET users/ -> 200" in caplog.text
    assert "attempt 1 got 503; retrying" in caplog.text


@pytest.mark.parametrize(
    "bad", ["２", "-1", "a b", "7\n2", "../1", "1?x", "", "x" * 65]
)
def test_ids_that_are_not_plain_are_refused_before_any_call(client, sandbox, bad):
    with pytest.raises(ValueError, match="not a valid id"):
        client.start("1", bad)

    assert calls(sandbox) == []
