"""Accept one inbound request: authenticate, parse, store, answer.

The web routes and tests call :func:`receive`; it is the one place where a
request becomes stored events. Nothing is answered 2xx before the request
and its events are committed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from bridge.adapters.base import InboundRequest
from bridge.auth import credential_form_fields, credential_headers, verify_request
from bridge.errors import PayloadError, PayloadTooLargeError
from bridge.storable import check_events
from bridge.store.intake_queries import IntakeWrite, record_intake
from bridge.store.models import IntakeRequest

if TYPE_CHECKING:
    from bridge.adapters.base import AdapterResult
    from bridge.events import ProgressEvent
    from bridge.registry import Channel, SourceRegistry
    from bridge.store.db import Store
    from bridge.store.models import IntakeOutcome

logger = logging.getLogger(__name__)

FORM_TYPE = "application/x-www-form-urlencoded"
# Never stored, whatever the source's auth type says.
ALWAYS_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

Responder = Callable[[str, list[str]], tuple[int, dict[str, Any]]]
AnswerFactory = Callable[["AdapterResult"], Responder]


@dataclass(frozen=True)
class Delivery:
    """One HTTP request as the web layer hands it over."""

    method: str
    path: str
    content_type: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str]
    request_id: str | None = None  # X-Request-ID, kept with the events


@dataclass(frozen=True)
class Received:
    """What intake did with a request: the stored outcome and the parse."""

    outcome: IntakeOutcome
    result: AdapterResult
    channel: Channel


def receive(
    store: Store,
    registry: SourceRegistry,
    source_name: str,
    delivery: Delivery,
    answer: AnswerFactory | None = None,
) -> Received:
    """Authenticate, parse and durably store one request for a source.

    ``answer`` builds, from the parse, the function that gives the stored
    answer; by default a 202 listing the events.

    Raises:
        InboundError: a subclass for each 4xx answer (unknown source, too
            large, bad credentials, invalid payload, conflicting event id).
    """
    channel = registry.get(source_name)
    source = channel.source
    if len(delivery.body) > source.max_body_bytes:
        raise PayloadTooLargeError(
            f"body is {len(delivery.body)} bytes; source {source.name} "
            f"accepts at most {source.max_body_bytes}"
        )

    form = decode_form(delivery) if delivery.content_type == FORM_TYPE else {}
    verify_request(
        source.auth,
        headers=delivery.headers,
        body=delivery.body,
        form=form,
        source=source.name,
    )

    request = InboundRequest(
        source=source.name,
        body=delivery.body,
        content_type=delivery.content_type,
        headers=dict(delivery.headers),
        form=form,
        query=dict(delivery.query),
    )
    result = channel.adapter.parse(request)
    check_events(result.events)

    respond = (answer or accepted_answer)(result)
    outcome = store_request(store, channel, delivery, result.events, respond)
    log_outcome(source.name, outcome)
    return Received(outcome, result, channel)


def store_request(
    store: Store,
    channel: Channel,
    delivery: Delivery,
    events: list[ProgressEvent],
    respond: Responder,
) -> IntakeOutcome:
    """Write the request (credentials removed) and its events in one transaction."""
    kept = IntakeRequest(
        method=delivery.method,
        path=delivery.path,
        content_type=delivery.content_type,
        headers=kept_headers(channel, delivery.headers),
        body=kept_body(channel, delivery),
        correlation_id=delivery.request_id,
    )
    # The endpoint is part of the key: the same body sent to /hooks and to
    # the LRS endpoint gets each endpoint's own answer (events still dedupe).
    fingerprint = hashlib.sha256(f"{delivery.method} {delivery.path}\n".encode())
    fingerprint.update(delivery.body)
    dedupe_key = fingerprint.hexdigest()

    write = IntakeWrite(channel.source.name, kept, events, dedupe_key, respond)
    if store.group_committer is not None:
        return store.group_committer.write(write)
    with store.session() as session:
        return record_intake(
            session,
            source=write.source,
            request=write.request,
            events=write.events,
            dedupe_key=write.dedupe_key,
            respond=write.respond,
        )


def accepted_answer(result: AdapterResult) -> Responder:
    """Return a responder building the 202 body for the parsed events."""
    events = result.events

    def respond(request_id: str, event_ids: list[str]) -> tuple[int, dict[str, Any]]:
        listed = [
            {
                "id": event_id,
                "source_event_id": event.event_id,
                "kind": event.kind.value,
                "score": event.score,
                "note": event.note,
            }
            for event_id, event in zip(event_ids, events, strict=True)
        ]
        return 202, {
            "request_id": request_id,
            "accepted": len(listed),
            "events": listed,
        }

    return respond


def decode_form(delivery: Delivery) -> dict[str, str]:
    """Return the fields of a form-encoded body (first value of each)."""
    try:
        # Some runtimes send their query string with its leading "?".
        text = delivery.body.decode("utf-8").removeprefix("?")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=1000,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(
            "form body could not be decoded",
            errors=[{"path": "body", "message": str(exc)}],
        ) from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def kept_headers(channel: Channel, headers: Mapping[str, str]) -> dict[str, str]:
    """Return the headers worth keeping: all but those carrying credentials."""
    secret = ALWAYS_SECRET_HEADERS | credential_headers(channel.source.auth)
    return {k: v for k, v in headers.items() if k.lower() not in secret}


def kept_body(channel: Channel, delivery: Delivery) -> bytes:
    """Return the body to store: a form body loses its credential fields."""
    secret = credential_form_fields(channel.source.auth)
    if not secret or delivery.content_type != FORM_TYPE:
        return delivery.body
    pairs = parse_qsl(delivery.body.decode("utf-8", "replace"), keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k not in secret]).encode()


def log_outcome(source: str, outcome: IntakeOutcome) -> None:
    """Log the stored (or repeated) request at debug level.

    The web layer logs the request's one INFO line, with these ids in it.
    """
    if outcome.duplicate:
        logger.debug(
            "request %s from %s repeated; answered as before",
            outcome.request_id,
            source,
        )
        return
    logger.debug(
        "request %s from %s stored: %d events, %d new",
        outcome.request_id,
        source,
        len(outcome.event_ids),
        len(outcome.new_event_ids),
    )
