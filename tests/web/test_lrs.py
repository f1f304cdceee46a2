"""The xAPI statements endpoint: version header, POST, PUT, 409."""

from __future__ import annotations

import json
import uuid

import requests

from tests.web.test_hooks import statement

AUTH = ("player", "pw-lrs")
V103 = {"X-Experience-API-Version": "1.0.3"}


def lrs_post(bridge, body, headers=V103, auth=AUTH):
    return requests.post(
        f"{bridge.url}/xapi/statements",
        json=body,
        headers=headers,
        auth=auth,
        timeout=10,
    )


def lrs_put(bridge, statement_id, body, headers=V103, auth=AUTH):
    return requests.put(
        f"{bridge.url}/xapi/statements",
        params={"statementId": statement_id},
        json=body,
        headers=headers,
        auth=auth,
        timeout=10,
    )


def test_post_answers_200_with_ids_in_order(bridge_server):
    first, second = statement(), statement()

    response = lrs_post(bridge_server, [first, second])

    assert response.status_code == 200
    assert response.json() == [first["id"], second["id"]]
    assert response.headers["X-Experience-API-Version"] == "1.0.3"


def test_post_assigns_ids_to_statements_without_one(bridge_server):
    bare = statement()
    del bare["id"]

    response = lrs_post(bridge_server, bare)

    assert response.status_code == 200
    (assigned,) = response.json()
    assert uuid.UUID(assigned)


def test_missing_version_header_is_400_and_still_sends_the_header(bridge_server):
    response = lrs_post(bridge_server, statement(), headers={})

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "headers.X-Experience-API-Version"
    assert response.headers["X-Experience-API-Version"] == "1.0.3"


def test_unsupported_version_is_400(bridge_server):
    response = lrs_post(
        bridge_server, statement(), headers={"X-Experience-API-Version": "1.1.0"}
    )

    assert response.status_code == 400
    assert "1.1.0" in response.json()["message"]


def test_version_2_is_accepted_and_echoed(bridge_server):
    response = lrs_post(
        bridge_server, statement(), headers={"X-Experience-API-Version": "2.0.0"}
    )

    assert response.status_code == 200
    assert response.headers["X-Experience-API-Version"] == "2.0.0"


def test_wrong_credentials_are_401(bridge_server):
    response = lrs_post(bridge_server, statement(), auth=("player", "wrong"))

    assert response.status_code == 401


def test_put_stores_under_statement_id_and_answers_204(bridge_server):
    statement_id = str(uuid.uuid4())
    body = statement()
    del body["id"]

    response = lrs_put(bridge_server, statement_id, body)
    again = lrs_put(bridge_server, statement_id, body)

    assert response.status_code == 204
    assert again.status_code == 204
    posted = lrs_post(bridge_server, dict(body, id=statement_id))
    assert posted.json() == [statement_id]


def test_put_with_other_content_under_the_same_id_is_409(bridge_server):
    statement_id = str(uuid.uuid4())
    body = statement()
    del body["id"]
    lrs_put(bridge_server, statement_id, body)
    changed = dict(body, verb={"id": "http://adlnet.gov/expapi/verbs/attempted"})

    response = lrs_put(bridge_server, statement_id, changed)

    assert response.status_code == 409


def test_put_with_mismatched_id_is_400(bridge_server):
    response = lrs_put(bridge_server, str(uuid.uuid4()), statement())

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "id"


def test_put_without_statement_id_is_400(bridge_server):
    response = requests.put(
        f"{bridge_server.url}/xapi/statements",
        data=json.dumps(statement()),
        headers={**V103, "Content-Type": "application/json"},
        auth=AUTH,
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "query.statementId"


def test_about_lists_versions(bridge_server):
    response = requests.get(f"{bridge_server.url}/xapi/about", timeout=10)

    assert "2.0.0" in response.json()["version"]
