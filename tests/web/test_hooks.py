"""POST /hooks/<source> over real HTTP: auth, limits, errors, idempotency."""

from __future__ import annotations

import copy
import json
import time
import uuid
from urllib.parse import urlencode

import requests

from bridge.auth import sign_hmac
from bridge.store import queries

STATEMENT = {
    "actor": {"objectType": "Agent", "mbox": "mailto:learner1@example.com"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
    "object": {
        "id": "http://example.com/courses/safety-101",
        "definition": {"name": {"en-US": "Safety 101"}},
    },
    "result": {"completion": True, "score": {"scaled": 0.85}},
    "timestamp": "2026-11-30T10:00:00.000Z",
}


def statement(**changes) -> dict:
    made = copy.deepcopy(STATEMENT)
    made["id"] = str(uuid.uuid4())
    made.update(changes)
    return made


def post(bridge, source, body, **kwargs):
    headers = kwargs.pop("headers", {})
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    return requests.post(
        f"{bridge.url}/hooks/{source}", data=body, headers=headers, timeout=10, **kwargs
    )


def stored_counts(bridge) -> tuple[int, int]:
    with bridge.store.session() as session:
        events = queries.list_events(session, limit=1000)
        statuses = queries.count_events_by_status(session)
    return len(events), sum(statuses.values())


def test_statement_is_stored_and_answered_202_with_its_event(bridge_server):
    sent = statement()

    response = post(bridge_server, "open-xapi", sent)

    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    event = body["events"][0]
    assert event["source_event_id"] == sent["id"]
    assert event["kind"] == "completed"
    assert event["score"] == 85.0
    with bridge_server.store.session() as session:
        row = queries.get_event(session, event["id"])
    assert row.learner["email"] == "learner1@example.com"
    assert row.activity["iri"] == "http://example.com/courses/safety-101"
    assert row.status == "pending"
    assert json.loads(row.request.body) == sent


def test_unknown_source_is_404_with_json(bridge_server):
    response = post(bridge_server, "nobody", statement())

    assert response.status_code == 404
    assert response.json()["error"] == "unknown_source"
    assert "nobody" in response.json()["message"]


def test_same_request_twice_answers_the_same_and_stores_once(bridge_server):
    sent = statement()

    first = post(bridge_server, "open-xapi", sent)
    second = post(bridge_server, "open-xapi", sent)

    assert second.status_code == first.status_code == 202
    assert second.json() == first.json()
    assert second.headers["X-Bridge-Duplicate"] == "true"
    assert stored_counts(bridge_server) == (1, 1)


def test_same_statement_in_a_new_batch_reuses_the_event(bridge_server):
    sent = statement()
    post(bridge_server, "open-xapi", sent)

    response = post(bridge_server, "open-xapi", [sent, statement()])

    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    assert stored_counts(bridge_server)[0] == 2


def test_same_id_with_other_content_is_409_and_stores_nothing(bridge_server):
    sent = statement()
    post(bridge_server, "open-xapi", sent)
    changed = dict(sent, verb={"id": "http://adlnet.gov/expapi/verbs/attempted"})

    response = post(bridge_server, "open-xapi", changed)

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert sent["id"] in response.json()["message"]
    assert stored_counts(bridge_server)[0] == 1


def test_malformed_json_is_400_saying_where(bridge_server):
    response = post(
        bridge_server,
        "open-xapi",
        b'{"actor": {,}}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_payload"
    assert "line 1" in json.dumps(body)
    assert stored_counts(bridge_server) == (0, 0)


def test_invalid_statement_lists_each_error_with_its_path(bridge_server):
    bad = statement(result={"score": {"scaled": 1.5}})

    response = post(bridge_server, "open-xapi", [statement(), bad])

    assert response.status_code == 400
    paths = [error["path"] for error in response.json()["errors"]]
    assert "[1].result.score.scaled" in paths
    assert stored_counts(bridge_server) == (0, 0)


def test_unsupported_content_type_is_415(bridge_server):
    response = post(
        bridge_server, "open-xapi", b"<x/>", headers={"Content-Type": "image/png"}
    )

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_body_over_the_source_limit_is_413(bridge_server):
    big = statement(object={"id": "http://example.com/" + "x" * 3000})

    response = post(bridge_server, "tiny", big)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_body_over_the_global_limit_is_413_before_reading(bridge_server):
    response = post(
        bridge_server,
        "open-xapi",
        b"[" + b" " * (2 * 1024 * 1024) + b"]",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_basic_auth_wrong_password_is_401_and_stores_nothing(bridge_server):
    response = post(bridge_server, "lrs", statement(), auth=("player", "nope"))

    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthorized",
        "message": "authentication failed",
    }
    assert stored_counts(bridge_server) == (0, 0)


def test_basic_auth_right_password_is_accepted_and_not_stored(bridge_server):
    response = post(bridge_server, "lrs", statement(), auth=("player", "pw-lrs"))

    assert response.status_code == 202
    event_id = response.json()["events"][0]["id"]
    with bridge_server.store.session() as session:
        row = queries.get_event(session, event_id)
    stored_headers = {k.lower() for k in row.request.headers}
    assert "authorization" not in stored_headers


def test_hmac_signed_request_with_fresh_timestamp_is_accepted(bridge_server):
    body = json.dumps(statement()).encode()
    stamp = str(int(time.time()))
    signature = sign_hmac("hmac-secret", body, prefix="sha256=", timestamp=stamp)
    headers = {
        "Content-Type": "application/json",
        "X-Signature": signature,
        "X-Timestamp": stamp,
    }

    response = post(bridge_server, "signed", body, headers=headers)

    assert response.status_code == 202
    event_id = response.json()["events"][0]["id"]
    with bridge_server.store.session() as session:
        row = queries.get_event(session, event_id)
    assert "x-signature" not in {k.lower() for k in row.request.headers}


def test_hmac_stale_timestamp_and_bad_signature_are_401(bridge_server):
    body = json.dumps(statement()).encode()
    stale = str(int(time.time()) - 3600)
    stale_headers = {
        "Content-Type": "application/json",
        "X-Signature": sign_hmac(
            "hmac-secret", body, prefix="sha256=", timestamp=stale
        ),
        "X-Timestamp": stale,
    }
    now = str(int(time.time()))
    forged_headers = {
        "Content-Type": "application/json",
        "X-Signature": sign_hmac("other", body, prefix="sha256=", timestamp=now),
        "X-Timestamp": now,
    }
    missing_headers = {"Content-Type": "application/json"}

    answers = [
        post(bridge_server, "signed", body, headers=headers)
        for headers in (stale_headers, forged_headers, missing_headers)
    ]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.text for a in answers}) == 1
    assert stored_counts(bridge_server) == (0, 0)


SCORM_CLOUD_XML = (
    '<?xml version="1.0" encoding="utf-8" ?>'
    '<rsp stat="ok"><registrationreport format="course" regid="reg-77" '
    'instanceid="0"><complete>complete</complete><success>passed</success>'
    "<totaltime>326</totaltime><score>100</score></registrationreport></rsp>"
)


def test_scorm_cloud_form_post_is_accepted_and_password_not_stored(bridge_server):
    form = {"username": "cloud", "password": "pw-cloud", "data": SCORM_CLOUD_XML}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    response = post(bridge_server, "cloud", urlencode(form).encode(), headers=headers)

    assert response.status_code == 202, response.text
    event = response.json()["events"][0]
    assert event["kind"] in ("completed", "passed")
    assert event["score"] == 100.0
    with bridge_server.store.session() as session:
        row = queries.get_event(session, event["id"])
    assert b"pw-cloud" not in row.request.body
    assert b"regid" in row.request.body


def test_scorm_cloud_form_wrong_password_is_401(bridge_server):
    form = {"username": "cloud", "password": "guess", "data": SCORM_CLOUD_XML}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    response = post(bridge_server, "cloud", urlencode(form).encode(), headers=headers)

    assert response.status_code == 401
    assert stored_counts(bridge_server) == (0, 0)


def test_a_source_added_at_run_time_is_served_without_restart(bridge_server):
    with bridge_server.store.session() as session:
        queries.add_source(session, "late", "xapi", {"type": "none"}, {})
    time.sleep(5.2)  # the registry re-reads stored sources every 5 s

    response = post(bridge_server, "late", statement())

    assert response.status_code == 202


def test_form_body_with_a_leading_question_mark_keeps_its_first_field(bridge_server):
    body = b"?cmi.core.student_id=12345&cmi.core.lesson_status=completed"
    body += b"&cmi.core.score.raw=85"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    response = post(bridge_server, "runtime?activity=c-1", body, headers=headers)

    assert response.status_code == 202, response.text
    event_id = response.json()["events"][0]["id"]
    with bridge_server.store.session() as session:
        row = queries.get_event(session, event_id)
    assert row.learner == {"user_id": "12345"}
    assert row.score == 85.0


def test_a_lone_surrogate_escape_is_400_with_its_path(bridge_server):
    body = json.dumps(
        statement(
            verb={
                "id": "http://adlnet.gov/expapi/verbs/completed",
                "display": {"en": "\ud800x"},
            }
        )
    )

    response = post(
        bridge_server,
        "open-xapi",
        body.encode(),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "verb.display.en"
    assert stored_counts(bridge_server) == (0, 0)


def test_the_same_body_to_hooks_and_to_the_lrs_gets_each_endpoints_answer(
    bridge_server,
):
    sent = statement()
    body = json.dumps(sent).encode()
    hooks = post(
        bridge_server,
        "lrs",
        body,
        auth=("player", "pw-lrs"),
        headers={"Content-Type": "application/json"},
    )

    lrs = requests.post(
        f"{bridge_server.url}/xapi/lrs/statements",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Experience-API-Version": "1.0.3",
        },
        auth=("player", "pw-lrs"),
        timeout=10,
    )

    assert hooks.status_code == 202
    assert lrs.status_code == 200
    assert lrs.json() == [sent["id"]]
    assert stored_counts(bridge_server)[0] == 1


def test_a_statement_id_in_upper_case_is_the_same_statement(bridge_server):
    body = statement()
    first = post(bridge_server, "open-xapi", body)
    again = post(bridge_server, "open-xapi", dict(body, id=body["id"].upper()))

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["events"][0]["id"] == first.json()["events"][0]["id"]
    assert again.json()["events"][0]["source_event_id"] == body["id"]
    assert stored_counts(bridge_server) == (1, 1)
