"""Check the Open ELMS sandbox over real HTTP on loopback."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from defusedxml import ElementTree
from sandbox_fixtures import SandboxClient

from bridge.sandbox.server import RunningSandbox, running_sandbox

SAMPLE_EMAILS = {
    "xapi-test@example.com",
    "learner1@example.com",
    "user@example.com",
    "player-1@example.com",
    "guest@example.com",
    "admin@example.com",
    "teampb@example.com",
}
SAMPLE_ACCOUNTS = {
    "13936749",
    "5323497",
    "43ce1094-a6e0-43f8-9368-5aac8352c357",
    "xAPI account name",
    "500-627-490",
    "9678f235-4b77-478e-a536-d1e24655a61d",
    "learner-789",
}
IMSCP = "{http://www.imsproject.org/xsd/imscp_rootv1p1p2}"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server() -> Iterator[RunningSandbox]:
    """Yield a fresh, seeded sandbox on a free loopback port."""
    with running_sandbox() as running:
        yield running


@pytest.fixture
def client(server: RunningSandbox) -> Iterator[SandboxClient]:
    """Yield a client of a fresh sandbox."""
    sandbox_client = SandboxClient(server)
    yield sandbox_client
    sandbox_client.close()


def user_ids(response: requests.Response) -> list[int]:
    """Return the ids of a user list response, after checking it is a 200."""
    assert response.status_code == 200, response.text
    return [user["id"] for user in response.json()]


# Authentication


def test_call_without_token_answers_403_with_json_error(server):
    response = requests.get(f"{server.base_url}/users/1", timeout=5)

    assert response.status_code == 403
    assert set(response.json()) == {"error", "message"}


def test_call_with_wrong_token_answers_403(client: SandboxClient):
    response = client.api("GET", "users/1", token="not-the-token")

    assert response.status_code == 403


def test_call_with_base64_credentials_instead_of_raw_token_answers_403(
    client: SandboxClient,
):
    response = client.api(
        "GET", "users/1", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )

    assert response.status_code == 403


def test_call_with_right_token_answers_200_with_the_user(client):
    response = client.api("GET", "users/1")

    assert response.status_code == 200
    assert response.json()["email"] == "xapi-test@example.com"


# Users


def test_seeded_users_include_every_sample_email_and_account_name(client):
    users = client.api("GET", "users/").json()

    assert len(users) >= 8
    assert SAMPLE_EMAILS <= {user["email"] for user in users}
    assert SAMPLE_ACCOUNTS <= {user["username"] for user in users}


def test_user_record_has_documented_fields_and_related_records(client):
    user = client.api("GET", "users/2").json()

    assert user["id"] == 2
    assert user["username"] == "learner1"
    assert user["employee_id"] == "E1002"
    assert user["country"] == {"id": 1, "name": "United Kingdom"}
    assert user["company"] == {"id": 2, "name": "Harbour Health Trust"}
    assert user["job"] == {"id": 2, "name": "Staff Nurse"}
    assert [group["id"] for group in user["groups"]] == [1, 2]
    assert {"id": 1, "name": "Fire Safety Awareness"} in user["learning"]


def test_trailing_slash_is_optional_on_documented_paths(client):
    with_slash = client.api("GET", "users/3/")
    without_slash = client.api("GET", "users/3")

    assert with_slash.status_code == without_slash.status_code == 200
    assert with_slash.json() == without_slash.json()
    assert client.api("GET", "learning").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "users/999"),
        ("PUT", "users/999"),
        ("GET", "learning/999"),
        ("GET", "learning/download/999"),
        ("GET", "learning/999/1"),
        ("GET", "learning/1/999"),
        ("PUT", "learning/999/1/start"),
        ("PUT", "learning/1/999/complete/50"),
        ("GET", "no/such/resource"),
    ],
)
def test_unknown_resource_answers_404(client, method, path):
    response = client.api(method, path, data={"fname": "X"})

    assert response.status_code == 404
    assert response.json()["error"] == "not found"


def test_create_user_from_form_returns_id_of_a_readable_user(client):
    form = {
        "fname": "Nadia",
        "lname": "New",
        "username": "nadia.new",
        "usercode": "NN01",
        "email": "nadia@example.net",
        "description": "created by a test",
    }
    created = client.api("POST", "users/", data=form)

    assert created.status_code == 200
    new_id = created.json()
    assert new_id == 18
    user = client.api("GET", f"users/{new_id}").json()
    assert {name: user[name] for name in form} == form


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"fname": "No", "email": "no@example.com"}, "username"),
        ({"username": "  ", "email": "blank@example.com"}, "username"),
        ({"username": "bad.mail", "email": "not-an-address"}, "email"),
        ({"username": "two@@example.com", "email": "a@b@example.com"}, "email"),
        ({"username": "teampb"}, "username"),
        ({"username": "TeamPB"}, "username"),
    ],
)
def test_create_user_with_invalid_form_answers_400_naming_field(client, form, field):
    response = client.api("POST", "users/", data=form)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert field in response.json()["message"]


def test_create_user_with_json_body_answers_400(client):
    response = client.api("POST", "users/", json={"username": "json.user"})

    assert response.status_code == 400
    assert "form" in response.json()["message"]
    assert client.api("GET", "users/?username=json.user").json() == []


def test_update_user_changes_text_fields_and_related_records(client):
    form = {"fname": "Renamed", "email": "renamed@example.com", "country_id": "4"}
    form.update({"city_id": "5", "company_id": "3", "department_id": "2"})
    response = client.api("PUT", "users/3", data={**form, "location_id": ""})

    assert response.status_code == 200
    user = response.json()
    assert user["fname"] == "Renamed"
    assert user["lname"] == "Sample"
    assert user["email"] == "renamed@example.com"
    assert user["country"] == {"id": 4, "name": "Germany"}
    assert user["city"]["name"] == "Berlin"
    assert user["company"]["name"] == "Brightside Retail"
    assert user["department"]["name"] == "Nursing"
    assert user["location"] is None
    assert client.api("GET", "users/3").json() == user


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"email": "broken@"}, "email"),
        ({"username": ""}, "username"),
        ({"username": "admin"}, "username"),
        ({"country_id": "99"}, "country_id"),
        ({"city_id": "99"}, "city_id"),
        ({"company_id": "acme"}, "company_id"),
        ({"department_id": "42"}, "department_id"),
        ({"location_id": "7"}, "location_id"),
    ],
)
def test_update_user_with_invalid_form_answers_400_and_changes_nothing(
    client, form, field
):
    before = client.api("GET", "users/4").json()

    response = client.api("PUT", "users/4", data=form)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert client.api("GET", "users/4").json() == before


def test_update_user_with_json_body_answers_400(client):
    response = client.api("PUT", "users/4", json={"fname": "Json"})

    assert response.status_code == 400
    assert client.api("GET", "users/4").json()["fname"] == "Player"


# Search


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("fname=Learner", [2]),
        ("lname=One", [2, 4, 8]),
        ("username=teampb", [7]),
        ("usercode=UC0003", [3]),
        ("email=GUEST@Example.com", [5]),
        ("company_id=2", [2, 5, 8, 13, 16]),
        ("department_id=4", [4, 9, 12, 14]),
        ("country_id=2", [3, 10, 15]),
        ("city_id=5", [5, 13]),
        ("location_id=3", [4, 5, 9, 12, 13, 14]),
        ("group_id=3", [6, 7]),
        ("username=xAPI+account+name", [11]),
        ("fname=learner", []),
    ],
)
def test_search_by_one_field_finds_exact_matches(client, query, expected):
    response = client.api("GET", f"users/?{query}")

    assert user_ids(response) == expected


def test_search_by_two_fields_finds_users_matching_both(client):
    response = client.api("GET", "users/?country_id=1&group_id=2")

    assert user_ids(response) == [2, 8, 11, 16]


@pytest.mark.parametrize("query", ["job_id=1", "country_id=uk", "group_id="])
def test_search_by_unknown_field_or_bad_id_answers_400(client, query):
    response = client.api("GET", f"users/?{query}")

    assert response.status_code == 400
    assert response.json()["field"] == query.split("=")[0]


# Learning resources


def test_learning_list_has_types_and_download_links_for_scorm_only(client):
    learning = client.api("GET", "learning/").json()

    assert len(learning) >= 6
    scorm = [item for item in learning if item["type"] == "e-learning"]
    assert len(scorm) >= 2
    for item in scorm:
        link = f"{client.running.base_url}/learning/download/{item['id']}"
        assert item["download_link"] == link
    others = [item for item in learning if item["type"] != "e-learning"]
    assert {"classroom", "video", "document"} <= {item["type"] for item in others}
    assert all("download_link" not in item for item in others)


def test_learning_by_id_returns_one_record(client):
    response = client.api("GET", "learning/3")

    assert response.json() == {
        "id": 3,
        "name": "Manual Handling in Practice",
        "type": "classroom",
    }


def test_download_is_a_zip_with_a_valid_scorm_12_manifest(client):
    link = client.api("GET", "learning/2").json()["download_link"]

    response = client.session.get(
        link, headers={"Authorization": f"Basic {client.running.token}"}
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        assert set(archive.namelist()) == {"imsmanifest.xml", "index.html"}
        manifest = ElementTree.fromstring(archive.read("imsmanifest.xml"))
        page = archive.read("index.html").decode()
    assert manifest.tag == f"{IMSCP}manifest"
    assert manifest.findtext(f"{IMSCP}metadata/{IMSCP}schemaversion") == "1.2"
    title = manifest.find(f"{IMSCP}organizations/{IMSCP}organization/{IMSCP}title")
    assert title is not None and title.text == "Data Protection Essentials"
    resource = manifest.find(f"{IMSCP}resources/{IMSCP}resource")
    assert resource is not None and resource.get("href") == "index.html"
    assert "Data Protection Essentials" in page


def test_download_of_a_non_scorm_learning_answers_400(client):
    response = client.api("GET", "learning/download/3")

    assert response.status_code == 400
    assert "e-learning" in response.json()["message"]


# Progress


def test_pair_without_record_reads_not_attempted(client):
    response = client.api("GET", "learning/5/2")

    assert response.json() == ["not attempted", None]


def test_seeded_progress_covers_all_three_states(client):
    states = client.admin("GET", "state").json()

    assert {record["status"] for record in states} == {
        "not attempted",
        "in progress",
        "completed",
    }
    assert client.api("GET", "learning/1/1").json() == ["completed", 85]


def test_start_marks_the_pair_in_progress(client):
    started = client.api("PUT", "learning/3/4/start")

    assert started.status_code == 200
    assert started.json() == ["in progress", None]
    assert client.api("GET", "learning/3/4").json() == ["in progress", None]


def test_complete_with_score_records_completed_with_that_score(client):
    completed = client.api("PUT", "learning/3/7/complete/85")

    assert completed.status_code == 200
    assert completed.json() == ["completed", 85]
    assert client.api("GET", "learning/3/7").json() == ["completed", 85]
    assert {"id": 3, "name": "Manual Handling in Practice"} in (
        client.api("GET", "users/7").json()["learning"]
    )


@pytest.mark.parametrize(("segment", "score"), [("85.0", 85), ("0", 0), ("100", 100)])
def test_complete_accepts_whole_number_scores(client, segment, score):
    response = client.api("PUT", f"learning/4/4/complete/{segment}")

    assert response.json() == ["completed", score]


def test_complete_without_score_records_a_null_score(client):
    response = client.api("PUT", "learning/4/4/complete")

    assert response.json() == ["completed", None]


@pytest.mark.parametrize("segment", ["abc", "101", "-1", "85.5", "nan", "inf"])
def test_complete_with_invalid_score_answers_400_and_changes_nothing(client, segment):
    response = client.api("PUT", f"learning/2/1/complete/{segment}")

    assert response.status_code == 400
    assert response.json()["field"] == "score"
    assert client.api("GET", "learning/2/1").json() == ["in progress", None]


def test_start_after_complete_stays_completed(client):
    client.api("PUT", "learning/5/5/complete/70")

    restarted = client.api("PUT", "learning/5/5/start")

    assert restarted.status_code == 200
    assert restarted.json() == ["completed", 70]
    assert client.api("GET", "learning/5/5").json() == ["completed", 70]


def test_unknown_progress_action_answers_404(client):
    response = client.api("PUT", "learning/1/2/finish")

    assert response.status_code == 404
    assert client.api("GET", "learning/1/2").json() == ["in progress", None]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "users/1"),
        ("PATCH", "users/1"),
        ("POST", "users/1"),
        ("DELETE", "users/"),
        ("POST", "learning/"),
        ("PUT", "learning/1"),
        ("DELETE", "learning/1"),
        ("POST", "learning/1/1"),
        ("PUT", "learning/1/1"),
        ("GET", "learning/1/1/start"),
        ("POST", "learning/download/1"),
        ("OPTIONS", "users/1"),
    ],
)
def test_undocumented_method_answers_501_with_json(client, method, path):
    response = client.api(method, path)

    assert response.status_code == 501
    assert method in response.json()["message"]


def test_concurrent_calls_are_all_served_and_logged(client):
    statuses: list[int] = []

    def start(user_id: int) -> None:
        url = f"{client.running.base_url}/learning/7/{user_id}/start"
        headers = {"Authorization": f"Basic {client.running.token}"}
        statuses.append(requests.put(url, headers=headers, timeout=10).status_code)

    threads = [threading.Thread(target=start, args=(uid,)) for uid in range(1, 18)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 17
    calls = client.admin("GET", "calls").json()["calls"]
    assert len(calls) == 17
    states = client.admin("GET", "state").json()
    started = [item for item in states if item["learning_id"] == 7]
    assert [item["status"] for item in started] == ["in progress"] * 17


# Faults


def test_latency_delays_every_documented_call(client):
    client.set_faults(latency_ms=300)

    started = time.perf_counter()
    response = client.api("GET", "users/1")
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert 0.3 <= elapsed < 3
    call = client.admin("GET", "calls").json()["calls"][-1]
    assert call["duration_ms"] >= 300


def test_error_rate_of_one_answers_500_to_every_call(client):
    client.set_faults(error_rate=1.0)

    statuses = {client.api("GET", "users/1").status_code for _ in range(5)}

    assert statuses == {500}


def test_seeded_error_rate_gives_the_same_sequence_twice(client):
    def sequence() -> list[int]:
        client.set_faults(error_rate=0.5, seed=7)
        return [client.api("GET", "users/1").status_code for _ in range(20)]

    first, second = sequence(), sequence()

    assert first == second
    assert set(first) == {200, 500}


def test_rate_limit_answers_503_with_retry_after_beyond_the_limit(client):
    client.set_faults(rate_limit=3, retry_after=2)

    responses = [client.api("GET", "users/1") for _ in range(8)]

    statuses = [response.status_code for response in responses]
    assert statuses[:3] == [200, 200, 200]
    assert 503 in statuses
    limited = [response for response in responses if response.status_code == 503]
    assert all(response.headers["Retry-After"] == "2" for response in limited)


def test_rate_limit_window_admits_calls_again_after_a_second(client):
    client.set_faults(rate_limit=1)
    assert client.api("GET", "users/1").status_code == 200
    assert client.api("GET", "users/1").status_code == 503

    time.sleep(1.1)

    assert client.api("GET", "users/1").status_code == 200


def test_outage_answers_503_whatever_the_request(client):
    client.set_faults(outage=True, outage_retry_after=30)

    no_token = client.api("GET", "users/1", token="wrong")
    unknown = client.api("DELETE", "no/such/thing")

    assert no_token.status_code == unknown.status_code == 503
    assert no_token.headers["Retry-After"] == "30"
    assert client.admin("GET", "faults").status_code == 200


def test_outage_without_retry_after_sends_no_header(client):
    client.set_faults(outage=True)

    response = client.api("GET", "users/1")

    assert response.status_code == 503
    assert "Retry-After" not in response.headers


def test_fail_next_script_is_consumed_in_order_then_calls_succeed(client):
    script = [
        {"status": 503, "retry_after": 1},
        {"status": 500, "body": "boom"},
        {"status": 412, "body": '{"error": "precondition"}'},
    ]
    client.set_faults(fail_next=script)

    responses = [client.api("PUT", "learning/3/9/start") for _ in range(4)]

    assert [response.status_code for response in responses] == [503, 500, 412, 200]
    assert responses[0].headers["Retry-After"] == "1"
    assert responses[1].text == "boom"
    assert responses[2].json() == {"error": "precondition"}
    assert client.admin("GET", "faults").json()["fail_next"] == []
    assert client.api("GET", "learning/3/9").json() == ["in progress", None]


def test_faults_do_not_touch_the_admin_api(client):
    client.set_faults(error_rate=1.0, outage=True)

    assert client.admin("GET", "state").status_code == 200
    assert client.admin("GET", "calls").status_code == 200


# Call log


def test_call_log_records_every_documented_call_with_its_outcome(client):
    client.api("PUT", "learning/3/7/complete/85")
    client.api("GET", "users/999")
    client.api("GET", "users/?email=guest@example.com", token="bad")
    client.set_faults(fail_next=[{"status": 503}])
    client.api("GET", "learning/")
    client.admin("GET", "state")

    calls = client.admin("GET", "calls").json()["calls"]

    summary = [(c["method"], c["path"], c["query"], c["status"]) for c in calls]
    assert summary == [
        ("PUT", "learning/3/7/complete/85", "", 200),
        ("GET", "users/999", "", 404),
        ("GET", "users/", "email=guest@example.com", 403),
        ("GET", "learning/", "", 503),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT.*\+00:00", c["time"]) for c in calls)
    assert all(c["duration_ms"] >= 0 for c in calls)


def test_call_log_since_returns_later_calls_and_delete_clears_it(client):
    for user_id in (1, 2, 3):
        client.api("GET", f"users/{user_id}")

    later = client.admin("GET", "calls", params={"since": 1}).json()
    cleared = client.admin("DELETE", "calls")
    after = client.admin("GET", "calls").json()

    assert [call["path"] for call in later["calls"]] == ["users/2", "users/3"]
    assert later["next"] == 3
    assert cleared.status_code == 200
    assert after == {"calls": [], "next": 0}


# Response shapes


@pytest.mark.parametrize(
    ("shape", "completed", "in_progress"),
    [
        ("list", ["completed", 85], ["in progress", None]),
        (
            "object",
            {"status": "completed", "score": 85},
            {"status": "in progress", "score": None},
        ),
        (
            "list_of_object",
            [{"status": "completed", "score": 85}],
            [{"status": "in progress", "score": None}],
        ),
        (
            "object_alt_spelling",
            {"status": "Complete", "score": 85},
            {"status": "In Progress", "score": None},
        ),
        ("garbage", {"unexpected": True}, {"unexpected": True}),
    ],
)
def test_progress_shape_variant_is_served(client, shape, completed, in_progress):
    changed = client.admin("PUT", "shapes", json={"progress_shape": shape})

    assert changed.json()["progress_shape"] == shape
    assert client.api("GET", "learning/1/1").json() == completed
    assert client.api("PUT", "learning/2/1/start").json() == in_progress


@pytest.mark.parametrize(
    ("shape", "body"),
    [
        ("number", 18),
        ("string", "18"),
        ("object", {"id": 18}),
        ("garbage", {"nope": 1}),
    ],
)
def test_user_id_shape_variant_is_served(client, shape, body):
    client.admin("PUT", "shapes", json={"user_id_shape": shape})

    response = client.api("POST", "users/", data={"username": "shaped"})

    assert response.status_code == 200
    assert response.json() == body
    assert client.api("GET", "users/18").json()["username"] == "shaped"


# Admin API


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 1.5},
        {"error_rate": "0.5"},
        {"latency_ms": -1},
        {"latency_ms": 2.5},
        {"rate_limit": 0},
        {"outage": "yes"},
        {"outage": 1},
        {"retry_after": True},
        {"fail_next": {"status": 503}},
        {"fail_next": [{"status": 200}]},
        {"fail_next": [{"status": 503, "retry_after": -5}]},
        {"fail_next": [{"status": 503, "colour": "red"}]},
        {"latency": 10},
        ["not", "an", "object"],
    ],
)
def test_admin_rejects_invalid_fault_settings_with_400(client, changes):
    before = client.admin("GET", "faults").json()

    response = client.admin("PUT", "faults", json=changes)

    assert response.status_code == 400
    assert response.json()["message"]
    assert client.admin("GET", "faults").json() == before


def test_admin_rejects_non_json_bodies_with_400(client):
    faults = client.admin("PUT", "faults", data="outage=true")
    shapes = client.admin("PUT", "shapes", data="not json")

    assert faults.status_code == shapes.status_code == 400


@pytest.mark.parametrize(
    "changes",
    [{"progress_shape": "tuple"}, {"user_id_shape": 42}, {"colour": "list"}],
)
def test_admin_rejects_invalid_shapes_with_400(client, changes):
    response = client.admin("PUT", "shapes", json=changes)

    assert response.status_code == 400
    assert client.admin("GET", "shapes").json() == {
        "progress_shape": "list",
        "user_id_shape": "number",
    }


def test_admin_partial_fault_update_keeps_other_settings(client):
    client.set_faults(latency_ms=5, rate_limit=50)

    faults = client.set_faults(error_rate=0.25)

    assert faults["latency_ms"] == 5
    assert faults["rate_limit"] == 50
    assert faults["error_rate"] == 0.25
    assert faults["outage"] is False


def test_admin_progress_sets_a_record_seen_by_the_api(client):
    response = client.admin(
        "PUT", "progress/6/3", json={"status": "completed", "score": 64}
    )

    assert response.status_code == 200
    assert client.api("GET", "learning/6/3").json() == ["completed", 64]
    records = client.admin("GET", "state").json()
    record = next(r for r in records if (r["learning_id"], r["user_id"]) == (6, 3))
    assert record["status"] == "completed"
    assert record["score"] == 64
    assert record["updated_at"] > "2024-01-15T09:00:00+00:00"


def test_admin_progress_can_move_a_record_backwards(client):
    client.admin("PUT", "progress/1/1", json={"status": "in progress"})

    assert client.api("GET", "learning/1/1").json() == ["in progress", None]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"status": "done", "score": 50}, 400),
        ({"status": "completed", "score": 150}, 400),
        ({"status": "completed", "score": "80"}, 400),
        ({"status": "in progress", "score": 80}, 400),
        ({"score": 80}, 400),
    ],
)
def test_admin_progress_rejects_invalid_bodies(client, body, status):
    response = client.admin("PUT", "progress/1/2", json=body)

    assert response.status_code == status
    assert client.api("GET", "learning/1/2").json() == ["in progress", None]


def test_admin_progress_for_unknown_user_answers_404(client):
    response = client.admin(
        "PUT", "progress/1/999", json={"status": "completed", "score": 1}
    )

    assert response.status_code == 404


def test_admin_reset_restores_seed_data_and_clears_faults_calls_shapes(
    client,
):
    client.api("POST", "users/", data={"username": "temporary"})
    client.api("PUT", "learning/1/1/start")
    client.api("PUT", "learning/3/3/complete/10")
    client.admin("PUT", "shapes", json={"progress_shape": "object"})
    client.set_faults(latency_ms=10, fail_next=[{"status": 500}])

    reset = client.admin("POST", "reset")

    assert reset.status_code == 200
    assert client.admin("GET", "calls").json()["calls"] == []
    assert client.admin("GET", "faults").json()["fail_next"] == []
    assert client.admin("GET", "faults").json()["latency_ms"] == 0
    assert client.api("GET", "learning/3/3").json() == ["not attempted", None]
    assert len(client.api("GET", "users/").json()) == 17
    assert client.api("GET", "users/?username=temporary").json() == []


# Storage and start-up


def test_db_file_keeps_users_and_progress_across_restarts(tmp_path: Path):
    db_path = str(tmp_path / "sandbox.sqlite")
    with running_sandbox(db_path=db_path) as first:
        client = SandboxClient(first)
        created = client.api("POST", "users/", data={"username": "kept"}).json()
        client.api("PUT", f"learning/1/{created}/complete/77")
        client.api("PUT", "learning/2/1/complete/60")
        client.close()

    with running_sandbox(db_path=db_path) as second:
        client = SandboxClient(second)
        users = client.api("GET", "users/").json()
        kept = client.api("GET", f"users/{created}").json()
        progress = client.api("GET", f"learning/1/{created}").json()
        seeded_pair = client.api("GET", "learning/2/1").json()
        client.close()

    assert len(users) == 18
    assert kept["username"] == "kept"
    assert progress == ["completed", 77]
    assert seeded_pair == ["completed", 60]


def test_in_memory_sandboxes_do_not_share_data():
    with running_sandbox() as first:
        client = SandboxClient(first)
        client.api("POST", "users/", data={"username": "only.here"})
        client.close()

    with running_sandbox() as second:
        client = SandboxClient(second)
        found = client.api("GET", "users/?username=only.here").json()
        client.close()

    assert found == []


def test_custom_site_and_token_shape_the_base_url():
    with running_sandbox(site="acme", token="other-token") as running:
        client = SandboxClient(running)
        response = client.api("GET", "users/1")
        wrong_site = client.session.get(
            running.base_url.replace("/acme/", "/demo/") + "/users/1",
            headers={"Authorization": "Basic other-token"},
        )
        client.close()

    assert running.base_url.endswith("/acme/backend")
    assert running.token == "other-token"
    assert response.status_code == 200
    assert wrong_site.status_code == 404


def test_sandbox_command_serves_with_start_faults_and_hides_token():
    command = [
        sys.executable,
        "-c",
        "from bridge.cli.sandbox import sandbox; sandbox()",
        "--port",
        "0",
        "--token",
        "cli-secret-token",
        "--outage",
    ]
    with subprocess.Popen(
        command, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        first_line = process.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/demo/backend)", first_line)
        assert match, first_line
        response = requests.get(
            f"{match.group(1)}/users/1",
            headers={"Authorization": "Basic cli-secret-token"},
            timeout=5,
        )
        process.terminate()
        rest = process.communicate(timeout=10)[1]

    assert response.status_code == 503
    assert "cli-secret-token" not in first_line + rest


def test_an_id_too_large_to_store_is_not_found(server):
    response = requests.put(
        f"{server.base_url}/learning/2/99999999999999999999/start",
        headers={"Authorization": f"Basic {server.token}"},
        timeout=5,
    )

    assert response.status_code == 404
    assert response.json()["message"] == "no record has an id that large"
