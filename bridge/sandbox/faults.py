"""Inject the failures and odd answers a client of Open ELMS must survive.

Faults act on every documented call before authentication and routing, in
this order: added latency, outage, the scripted ``fail_next`` queue, the rate
limit, then the random error rate. Response shapes are quirks of the bodies
the sandbox writes; they live here because clients are tested against them
the same way they are tested against faults.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("not attempted", "in progress", "completed")
ALT_SPELLINGS = {
    "not attempted": "Not Attempted",
    "in progress": "In Progress",
    "completed": "Complete",
}
PROGRESS_SHAPES = ("list", "object", "list_of_object", "object_alt_spelling", "garbage")
USER_ID_SHAPES = ("number", "string", "object", "garbage")

DEFAULT_RETRY_AFTER = 1
RATE_WINDOW_SECONDS = 1.0
MAX_LATENCY_MS = 60_000


@dataclass
class FaultSettings:
    """Hold the fault knobs; every one off by default."""

    latency_ms: int = 0
    error_rate: float = 0.0
    rate_limit: int | None = None
    retry_after: int = DEFAULT_RETRY_AFTER
    outage: bool = False
    outage_retry_after: int | None = None
    fail_next: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FaultAnswer:
    """Describe the response that replaces a documented call."""

    status: int
    message: str
    retry_after: int | None = None
    body: str | None = None


@dataclass
class ResponseShapes:
    """Hold the body shapes used for progress and new-user answers."""

    progress_shape: str = "list"
    user_id_shape: str = "number"


class FaultInjector:
    """Decide, call by call, whether a documented call is faulted.

    Thread-safe: the threaded server calls :meth:`plan` from many threads.
    """

    def __init__(
        self, settings: FaultSettings | None = None, seed: int | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._settings = _copy_settings(settings or FaultSettings())
        self._rng = random.Random(seed)
        self._admitted: deque[float] = deque()

    def snapshot(self) -> dict[str, Any]:
        """Return the current settings as a JSON-ready dict."""
        with self._lock:
            return asdict(self._settings)

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply a validated partial update and return the new settings.

        Raises:
            ValueError: a key is unknown or a value is out of range.
        """
        cleaned = validate_fault_update(changes)
        seed = cleaned.pop("seed", None)

        with self._lock:
            for name, value in cleaned.items():
                setattr(self._settings, name, value)
            if "seed" in changes:
                self._rng.seed(seed)
            return asdict(self._settings)

    def clear(self) -> None:
        """Turn every fault off, including those set at start-up."""
        with self._lock:
            self._settings = FaultSettings()
            self._admitted.clear()

    def latency_seconds(self) -> float:
        """Return the delay to add to the current call."""
        with self._lock:
            return self._settings.latency_ms / 1000

    def plan(self) -> FaultAnswer | None:
        """Return the fault answer for the next documented call, or None."""
        with self._lock:
            settings = self._settings

            if settings.outage:
                return FaultAnswer(503, "outage", settings.outage_retry_after)

            if settings.fail_next:
                return _scripted_answer(settings.fail_next.pop(0))

            if self._over_rate_limit(settings.rate_limit):
                return FaultAnswer(503, "rate limit exceeded", settings.retry_after)

            if settings.error_rate and self._rng.random() < settings.error_rate:
                return FaultAnswer(500, "injected internal error")
            return None

    def _over_rate_limit(self, limit: int | None) -> bool:
        """Count this call in the sliding window; True when it is one too many."""
        if not limit:
            return False

        now = time.monotonic()
        while self._admitted and now - self._admitted[0] >= RATE_WINDOW_SECONDS:
            self._admitted.popleft()

        if len(self._admitted) >= limit:
            return True
        self._admitted.append(now)
        return False


def _copy_settings(settings: FaultSettings) -> FaultSettings:
    """Return a copy whose script list is not shared."""
    values = asdict(settings)
    return FaultSettings(**values)


def _scripted_answer(entry: dict[str, Any]) -> FaultAnswer:
    """Turn one validated ``fail_next`` entry into an answer."""
    return FaultAnswer(
        status=entry["status"],
        message="scripted failure",
        retry_after=entry.get("retry_after"),
        body=entry.get("body"),
    )


def validate_fault_update(changes: Any) -> dict[str, Any]:
    """Check a partial fault update and return it with normalised values.

    Raises:
        ValueError: naming the first key that is unknown or out of range.
    """
    if not isinstance(changes, dict):
        raise ValueError("body must be a JSON object")

    checks = {
        "latency_ms": lambda v: _int_in(v, "latency_ms", 0, MAX_LATENCY_MS),
        "error_rate": _rate,
        "rate_limit": lambda v: _optional(v, "rate_limit", 1, 100_000),
        "retry_after": lambda v: _int_in(v, "retry_after", 0, 3600),
        "outage": _flag,
        "outage_retry_after": lambda v: _optional(v, "outage_retry_after", 0, 3600),
        "fail_next": _script,
        "seed": lambda v: _optional(v, "seed", 0, 2**63),
    }
    unknown = sorted(set(changes) - set(checks))
    if unknown:
        raise ValueError(f"unknown fault setting: {', '.join(unknown)}")
    return {name: checks[name](value) for name, value in changes.items()}


def validate_shapes_update(changes: Any) -> dict[str, str]:
    """Check a partial shapes update and return it.

    Raises:
        ValueError: naming the key that is unknown or has an unknown value.
    """
    if not isinstance(changes, dict):
        raise ValueError("body must be a JSON object")

    allowed = {"progress_shape": PROGRESS_SHAPES, "user_id_shape": USER_ID_SHAPES}
    for name, value in changes.items():
        if name not in allowed:
            raise ValueError(f"unknown shape setting: {name}")
        if value not in allowed[name]:
            choices = ", ".join(allowed[name])
            raise ValueError(f"{name} must be one of: {choices}")
    return dict(changes)


def render_progress(shape: str, status: str, score: int | None) -> Any:
    """Return a progress body in the given shape."""
    if shape == "object":
        return {"status": status, "score": score}
    if shape == "list_of_object":
        return [{"status": status, "score": score}]
    if shape == "object_alt_spelling":
        return {"status": ALT_SPELLINGS[status], "score": score}
    if shape == "garbage":
        return {"unexpected": True}
    return [status, score]


def render_user_id(shape: str, user_id: int) -> Any:
    """Return a new user's id in the given shape."""
    if shape == "string":
        return str(user_id)
    if shape == "object":
        return {"id": user_id}
    if shape == "garbage":
        return {"nope": 1}
    return user_id


def _is_int(value: Any) -> bool:
    """Tell a real integer from a bool, which JSON decoding keeps apart."""
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(value: Any, name: str, low: int, high: int) -> int:
    """Return value when it is an integer within [low, high]."""
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return int(value)


def _optional(value: Any, name: str, low: int, high: int) -> int | None:
    """Return None, or value when it is an integer within [low, high]."""
    if value is None:
        return None
    return _int_in(value, name, low, high)


def _rate(value: Any) -> float:
    """Return value when it is a number from 0 to 1."""
    number_ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not number_ok or not 0 <= value <= 1:
        raise ValueError("error_rate must be a number from 0 to 1")
    return float(value)


def _flag(value: Any) -> bool:
    """Return value when it is a JSON boolean."""
    if not isinstance(value, bool):
        raise ValueError("outage must be true or false")
    return value


def _script(value: Any) -> list[dict[str, Any]]:
    """Return a validated ``fail_next`` list."""
    if not isinstance(value, list):
        raise ValueError("fail_next must be a list of objects")
    return [_script_entry(entry, index) for index, entry in enumerate(value)]


def _script_entry(entry: Any, index: int) -> dict[str, Any]:
    """Return one validated ``fail_next`` entry."""
    where = f"fail_next[{index}]"
    if not isinstance(entry, dict) or set(entry) - {"status", "retry_after", "body"}:
        raise ValueError(f"{where} must be an object of status, retry_after, body")

    status = _int_in(entry.get("status"), f"{where}.status", 400, 599)
    retry_after = _optional(entry.get("retry_after"), f"{where}.retry_after", 0, 3600)
    body = entry.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"{where}.body must be a string")
    return {"status": status, "retry_after": retry_after, "body": body}
