"""The admin API's token: off without one, 401 with a wrong one, open with it."""

from __future__ import annotations

import requests

from tests.api.conftest import TOKEN, serve_bridge

PATHS = ["/api/v1/stats", "/api/v1/openapi.json", "/api/v1/events"]


def test_without_a_configured_token_every_admin_route_answers_404_off(tmp_path):
    for bridge in serve_bridge(tmp_path, None):
        for path in PATHS:
            answer = requests.get(
                bridge.url + path, headers={"Authorization": "Bearer "}, timeout=10
            )
            assert answer.status_code == 404
            assert answer.json() == {
                "error": "admin_api_off",
                "message": "the admin API is off; set BRIDGE_ADMIN_TOKEN to turn it on",
            }
        created = requests.post(
            bridge.at("/subscriptions"), json={"url": "http://127.0.0.1:9/"}, timeout=10
        )
        assert created.status_code == 404
        assert created.json()["error"] == "admin_api_off"


def test_a_missing_or_wrong_token_gets_401_json_with_a_bearer_challenge(bridge):
    refused = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": TOKEN},
    ]
    for headers in refused:
        answer = requests.get(bridge.at("/stats"), headers=headers, timeout=10)
        assert answer.status_code == 401, headers
        assert answer.json() == {
            "error": "unauthorized",
            "message": "a valid bearer token is required",
        }
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_right_token_opens_every_route_and_the_document(bridge):
    answer = bridge.api.get(bridge.at("/stats"), timeout=10)
    assert answer.status_code == 200
    assert answer.json()["events_by_status"] == {}

    document = bridge.api.get(bridge.at("/openapi.json"), timeout=10).json()
    assert document["openapi"] == "3.0.3"
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer"}
    }
    assert document["security"] == [{"bearerAuth": []}]
    assert "/api/v1/subscriptions/{subscription_id}/rotate-secret" in document["paths"]


def test_other_routes_stay_open_while_the_admin_api_is_off(tmp_path):
    for bridge in serve_bridge(tmp_path, None):
        assert requests.get(bridge.url + "/healthz", timeout=10).status_code == 200


def test_an_unknown_admin_path_answers_404_json(bridge):
    answer = bridge.api.get(bridge.at("/nothing-here"), timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
