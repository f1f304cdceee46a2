"""A real webhook receiver for delivery tests, served on loopback.

It verifies each request with ``standardwebhooks`` against its secret,
records what came (id, headers, body, verified or not, when it arrived
and when it was answered) and answers from a plan: a status sequence,
``Retry-After``, a redirect, or a hang of some seconds before answering.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug.serving import make_server

from bridge.signing import new_secret
from tests.servers import QuietHandler, serve_wsgi


@dataclass(frozen=True)
class Reply:
    """One planned answer: status, extra headers, seconds to hang first."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: str = "ok"


@dataclass(frozen=True)
class Hit:
    """One request the receiver got."""

    webhook_id: str | None
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int
    received_at: datetime
    answered_at: datetime


class Receiver:
    """A Flask app that verifies and records deliveries, answering by plan."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret or new_secret()
        self.hits: list[Hit] = []
        self.plan: deque[Reply] = deque()
        self.default = Reply()
        self.lock = threading.Lock()
        self.app = Flask(__name__)
        self.app.add_url_rule("/hook", view_func=self.receive, methods=["POST"])
        self.app.add_url_rule("/elsewhere", view_func=self.elsewhere, methods=["POST"])

    def answer(self, *replies: Reply | int) -> None:
        """Queue answers for the next requests; later ones get the default."""
        with self.lock:
            for reply in replies:
                self.plan.append(Reply(reply) if isinstance(reply, int) else reply)

    def receive(self) -> Response:
        """Verify, record and answer one delivery."""
        received_at = datetime.now(UTC)
        body = request.get_data()
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self.lock:
            reply = self.plan.popleft() if self.plan else self.default

        if reply.delay:
            time.sleep(reply.delay)
        hit = Hit(
            webhook_id=headers.get("webhook-id"),
            headers=headers,
            body=body,
            verified=self.verify(body, headers),
            status=reply.status,
            received_at=received_at,
            answered_at=datetime.now(UTC),
        )
        with self.lock:
            self.hits.append(hit)
        return Response(reply.body, status=reply.status, headers=reply.headers)

    def elsewhere(self) -> Response:
        """Record a request that followed a redirect (it never should)."""
        with self.lock:
            self.hits.append(
                Hit(None, {}, b"", False, 200, datetime.now(UTC), datetime.now(UTC))
            )
        return Response("followed", status=200)

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        """Say whether the signature checks out with the receiver's secret."""
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    def ids(self) -> list[str | None]:
        """Return the ``webhook-id`` of every hit, in order of answer."""
        with self.lock:
            return [hit.webhook_id for hit in self.hits]

    def snapshot(self) -> list[Hit]:
        """Return the hits so far."""
        with self.lock:
            return list(self.hits)


@dataclass(frozen=True)
class Running:
    """A receiver being served, and its delivery URL."""

    receiver: Receiver
    base_url: str

    @property
    def url(self) -> str:
        """Return the URL subscriptions post to."""
        return f"{self.base_url}/hook"


@contextmanager
def serve_receiver(receiver: Receiver) -> Iterator[Running]:
    """Serve a receiver on a free 127.0.0.1 port until the block ends."""
    with serve_wsgi(receiver.app) as served:
        yield Running(receiver, served.url)


@contextmanager
def serve_receiver_on(receiver: Receiver, port: int) -> Iterator[Running]:
    """Serve a receiver on a given 127.0.0.1 port, e.g. one that was down."""
    server = make_server(
        "127.0.0.1", port, receiver.app, threaded=True, request_handler=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(receiver, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def payload_of(hit: Hit) -> Any:
    """Return a hit's body parsed as JSON."""
    return json.loads(hit.body)
