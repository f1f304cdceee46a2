"""The inbound traffic of the scale-out test: xAPI statements per pair.

Each (user, learning) pair gets five statements: a start, a failed attempt,
a completion with the pair's score, the same completion sent again under a
new statement id, and a late start. By the rules only two of them can ever
make a call (the first start, or the failed attempt standing for one, and
the completion), and the pair always ends completed with its score.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests

from tests.scale.cluster import SOURCE

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
VERBS = "http://adlnet.gov/expapi/verbs/"
RESEND_EVERY = 10  # every tenth statement also goes, at once, to the other process


@dataclass(frozen=True)
class Pair:
    """A learner and a course of the sandbox, with the score the pair ends on."""

    email: str
    user_id: str
    learning_id: str
    course: str
    score: int


@dataclass
class Sent:
    """What the web processes answered, counted as the posts come back."""

    statuses: Counter[int] = field(default_factory=Counter)
    by_port: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, url: str, status: int) -> None:
        """Count one answer."""
        with self.lock:
            self.statuses[status] += 1
            self.by_port[url] += 1

    @property
    def answered(self) -> int:
        """Return how many posts have been answered so far."""
        with self.lock:
            return sum(self.statuses.values())


def statement(pair: Pair, verb: str, at: datetime, scaled: float | None) -> bytes:
    """Return one xAPI statement of ``verb`` on a pair, with a new id."""
    body: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "actor": {"mbox": f"mailto:{pair.email}", "objectType": "Agent"},
        "verb": {"id": VERBS + verb},
        "object": {
            "id": f"http://example.com/scale/{pair.learning_id}",
            "definition": {"name": {"en-US": pair.course}},
        },
        "timestamp": at.isoformat(),
    }
    if verb == "completed":
        body["result"] = {"completion": True, "score": {"scaled": scaled}}
    elif verb == "failed":
        body["result"] = {"success": False, "score": {"scaled": scaled}}
    return json.dumps(body).encode()


def statements_of(pair: Pair, index: int) -> list[bytes]:
    """Return the five statements of one pair, in the order they occurred."""
    base = T0 + timedelta(seconds=index)
    scaled = pair.score / 100
    return [
        statement(pair, "initialized", base, None),
        statement(pair, "failed", base + timedelta(minutes=5), scaled - 0.2),
        statement(pair, "completed", base + timedelta(minutes=10), scaled),
        statement(pair, "completed", base + timedelta(minutes=20), scaled),
        statement(pair, "initialized", base + timedelta(minutes=30), None),
    ]


def post(session: requests.Session, url: str, body: bytes, sent: Sent) -> None:
    """Post one statement and count the answer."""
    response = session.post(
        url, data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    sent.note(url.split("/hooks/")[0], response.status_code)


class Sender:
    """Post statements from a pool of threads, alternating web processes."""

    def __init__(self, bases: list[str], threads: int) -> None:
        self.urls = [f"{base}/hooks/{SOURCE}" for base in bases]
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="client")
        self.local = threading.local()
        self.sent = Sent()
        self.futures: list[Future[None]] = []

    def session(self) -> requests.Session:
        """Return this client thread's own session."""
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        session: requests.Session = self.local.session
        return session

    def send_all(self, bodies: list[bytes]) -> int:
        """Queue every body; return how many posts that makes in all."""
        posts = 0
        for index, body in enumerate(bodies):
            url = self.urls[index % len(self.urls)]
            self.futures.append(self.pool.submit(self.post_one, url, body))
            posts += 1
            if index % RESEND_EVERY == 0:
                other = self.urls[(index + 1) % len(self.urls)]
                self.futures.append(self.pool.submit(self.post_one, other, body))
                posts += 1
        return posts

    def post_one(self, url: str, body: bytes) -> None:
        """Post one body on this thread's session."""
        post(self.session(), url, body, self.sent)

    def finish(self) -> None:
        """Wait for every post; raise the first client error."""
        for future in self.futures:
            future.result()
        self.pool.shutdown()


def shuffled(pairs: list[Pair], seed: int) -> list[bytes]:
    """Return every pair's statements in a seeded random order."""
    bodies = [
        body for index, pair in enumerate(pairs) for body in statements_of(pair, index)
    ]
    random.Random(seed).shuffle(bodies)
    return bodies
