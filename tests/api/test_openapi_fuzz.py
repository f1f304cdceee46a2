"""schemathesis against the served OpenAPI document: no 500s, no schema breaks.

The bridge is seeded with events, a failed event, subscriptions and
deliveries first, so list and show operations answer with real rows. Each
operation gets a bounded number of valid and of invalid requests, to keep
the run near a minute.

schemathesis's own pytest integration (``from_fixture``) reads a pytest
internal that pytest 9 no longer has, so the operations are driven here
with hypothesis directly, one ``given`` per operation and mode.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.conftest import (
    TOKEN,
    announce,
    fail_event,
    post_statement,
    serve_bridge,
    settle,
    subscribe,
)

EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 25}
CHECKS = [not_a_server_error, response_schema_conformance]
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def seed(bridge) -> None:
    """Give every resource some rows: events, subscriptions, deliveries."""
    subscribe(bridge)
    subscribe(bridge, event_types=["progress.completed"], learning_ids=["7"])
    events = [post_statement(bridge, f"course-{n}") for n in range(4)]
    fail_event(bridge.store, events[0])
    first = announce(bridge.store, events[0])
    announce(bridge.store, events[1])
    settle(bridge.store, {first[0]: 503})


@pytest.fixture
def served(tmp_path):
    """Serve a seeded bridge and load the OpenAPI document it serves."""
    for bridge in serve_bridge(tmp_path, TOKEN):
        seed(bridge)
        url = bridge.at("/openapi.json")
        yield schemathesis.openapi.from_url(url, headers=HEADERS, timeout=10)


def check_operation(operation, mode: GenerationMode) -> None:
    """Send generated requests to one operation; fail on the first broken answer."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        case.call_and_validate(headers=HEADERS, checks=CHECKS, timeout=10)

    run()


def test_every_operation_answers_generated_requests_without_500_or_schema_break(
    served,
):
    operations = [result.ok() for result in served.get_all_operations()]
    assert len(operations) >= 25

    failures = []
    for operation in operations:
        for mode in EXAMPLES:
            try:
                check_operation(operation, mode)
            # schemathesis raises its findings as a BaseExceptionGroup.
            except (Exception, FailureGroup) as exc:  # noqa: BLE001 - reported below
                failures.append(f"{operation.label} [{mode}]: {exc}")
    assert not failures, "\n\n".join(failures)
