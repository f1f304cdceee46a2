"""Every sample payload through POST /hooks/<source> of a running bridge."""

from __future__ import annotations

import pytest
import requests

from bridge.adapters import FORMATS
from tests.samples import Sample, load_samples
from tests.web.conftest import write_sources

SAMPLES = load_samples(origin=None)


@pytest.fixture
def sample_bridge(tmp_path):
    """A bridge with one open source per format, named after the format."""
    from bridge.app import create_app
    from bridge.config import Settings
    from bridge.store.db import create_store
    from bridge.store.migrate import upgrade
    from tests.servers import serve_wsgi

    sources = [
        {"name": name, "format": name, "auth": {"type": "none"}}
        for name in FORMATS
        if name != "generic"  # no shared sample; it needs field expressions
    ]
    database_url = f"sqlite:///{tmp_path}/samples.db"
    settings = Settings(
        database_url=database_url,
        sources_file=str(write_sources(tmp_path / "sources.yaml", sources)),
    )
    upgrade(database_url)
    store = create_store(database_url)
    with serve_wsgi(create_app(settings, store=store)) as served:
        yield served.url
    store.dispose()


def send(url: str, sample: Sample, body: bytes) -> requests.Response:
    headers = {"Content-Type": sample.content_type, **sample.headers}
    return requests.post(
        f"{url}/hooks/{sample.format}", data=body, headers=headers, timeout=10
    )


def test_every_shared_sample_has_an_expectation():
    names = {sample.name for sample in SAMPLES if sample.expected["origin"] == "sample"}

    assert len(names) == 46 - 1 - 5  # 46 files less the index and h5p own copies
    assert all("/" in name for name in names)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_sample_gets_its_expected_outcome(sample_bridge, sample):
    responses = [send(sample_bridge, sample, body) for body in sample.bodies]
    expected_events = sample.expected_events()

    if expected_events is None:
        response = responses[0]
        assert response.status_code == sample.expected["status"], response.text
        paths = [error["path"] for error in response.json().get("errors", [])]
        for path in sample.expected.get("paths", []):
            assert path in paths, (path, paths)
        return

    first = responses[0]
    assert first.status_code == 202, first.text
    got = first.json()["events"]
    assert [e["kind"] for e in got] == [e["kind"] for e in expected_events]
    assert [e["score"] for e in got] == [
        None if e.get("score") is None else float(e["score"]) for e in expected_events
    ]
    for event, wanted in zip(got, expected_events, strict=True):
        if wanted.get("note"):
            assert wanted["note"] in (event["note"] or "")
    for later in responses[1:]:
        # A second request re-using an id with other content.
        assert later.status_code == 409, later.text
