"""GET /metrics of one web app over real HTTP: inbound counts and the outbox.

The app runs in this process without a shared metrics directory, so its
own registry answers; counters are process-wide, so tests compare values
before and after their own requests.
"""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from bridge.metrics import endpoint_of
from tests.web.test_hooks import post, statement


def scrape(bridge) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of /metrics by (name, sorted labels)."""
    response = requests.get(f"{bridge.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = sample.value
    return samples


def inbound(samples, source: str, status: str) -> float:
    labels = (("source", source), ("status", status))
    return samples.get(("bridge_inbound_requests_total", labels), 0.0)


def ingest_count(samples, source: str) -> float:
    key = ("bridge_ingest_duration_seconds_count", (("source", source),))
    return samples.get(key, 0.0)


def test_inbound_requests_are_counted_by_source_and_status(bridge_server):
    before = scrape(bridge_server)

    for _ in range(3):
        assert post(bridge_server, "open-xapi", statement()).status_code == 202
    bad = post(
        bridge_server,
        "open-xapi",
        b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400
    assert post(bridge_server, "signed", statement()).status_code == 401

    after = scrape(bridge_server)
    assert inbound(after, "open-xapi", "202") - inbound(before, "open-xapi", "202") == 3
    assert inbound(after, "open-xapi", "400") - inbound(before, "open-xapi", "400") == 1
    assert inbound(after, "signed", "401") - inbound(before, "signed", "401") == 1
    grown = ingest_count(after, "open-xapi") - ingest_count(before, "open-xapi")
    assert grown == 4


def test_unknown_sources_share_one_label(bridge_server):
    before = scrape(bridge_server)

    for name in ("nope-1", "nope-2", "nope-3"):
        assert post(bridge_server, name, statement()).status_code == 404

    after = scrape(bridge_server)
    assert inbound(after, "unknown", "404") - inbound(before, "unknown", "404") == 3
    assert not any("nope" in str(labels) for _, labels in after)


def test_health_and_metrics_requests_are_not_counted_as_inbound(bridge_server):
    before = scrape(bridge_server)

    requests.get(f"{bridge_server.url}/healthz", timeout=5)
    after = scrape(bridge_server)

    inbound_before = {k: v for k, v in before.items() if "inbound" in k[0]}
    inbound_after = {k: v for k, v in after.items() if "inbound" in k[0]}
    assert inbound_after == inbound_before


def test_outbox_depth_and_oldest_age_come_from_the_database(bridge_server):
    empty = scrape(bridge_server)
    assert empty[("bridge_outbox_depth", (("queue", "events"),))] == 0
    assert empty[("bridge_outbox_oldest_age_seconds", (("queue", "events"),))] == 0
    assert empty[("bridge_outbox_depth", (("queue", "deliveries"),))] == 0

    for _ in range(4):
        assert post(bridge_server, "open-xapi", statement()).status_code == 202

    after = scrape(bridge_server)
    assert after[("bridge_outbox_depth", (("queue", "events"),))] == 4
    assert after[("bridge_outbox_oldest_age_seconds", (("queue", "events"),))] > 0


def test_endpoint_labels_hide_ids_and_scores():
    assert endpoint_of("PUT", "learning/12/345/complete/85") == (
        "PUT learning/{id}/{id}/complete/{score}"
    )
    assert endpoint_of("PUT", "learning/12/345/start") == "PUT learning/{id}/{id}/start"
    assert endpoint_of("GET", "users/") == "GET users"
    assert endpoint_of("GET", "users/77") == "GET users/{id}"
    assert endpoint_of("GET", "learning/download/9") == "GET learning/download/{id}"


def test_lrs_statements_count_under_their_source_and_about_does_not(bridge_server):
    before = scrape(bridge_server)

    answer = requests.post(
        f"{bridge_server.url}/xapi/statements",
        json=statement(),
        auth=("player", "pw-lrs"),
        headers={"X-Experience-API-Version": "1.0.3", "X-Request-ID": "lrs-1"},
        timeout=10,
    )
    about = requests.get(f"{bridge_server.url}/xapi/about", timeout=10)

    after = scrape(bridge_server)
    assert answer.status_code == 200
    assert answer.headers["X-Request-ID"] == "lrs-1"
    assert about.status_code == 200
    assert inbound(after, "lrs", "200") - inbound(before, "lrs", "200") == 1
    assert ingest_count(after, "lrs") - ingest_count(before, "lrs") == 1
