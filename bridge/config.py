"""Settings of the bridge, read from ``BRIDGE_*`` environment variables.

Every variable is declared once in :data:`FIELDS` with its parser, default
and description; the README and ``deploy/.env.example`` list the same set
(a test keeps them in step). :func:`load_settings` reports every mistake at
once, one sentence each, so an operator fixes them in one pass.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bridge.errors import ConfigError

PREFIX = "BRIDGE_"

DEFAULT_DATABASE_URL = "sqlite:///var/bridge.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_WEB_WORKERS = 2
DEFAULT_WEB_THREADS = 4
DEFAULT_ELMS_CONNECT_TIMEOUT = 5.0
DEFAULT_ELMS_READ_TIMEOUT = 30.0
DEFAULT_ELMS_RETRIES = 3
DEFAULT_ELMS_BACKOFF = 0.5
DEFAULT_ELMS_BACKOFF_MAX = 30.0
DEFAULT_ELMS_RETRY_AFTER_MAX = 120.0
DEFAULT_ELMS_POOL_SIZE = 10
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_LRS_SOURCE = "lrs"
DEFAULT_RESOLVE_CACHE_TTL = 300.0
DEFAULT_DISPATCH_INTERVAL = 0.25
DEFAULT_DISPATCH_BATCH = 20
DEFAULT_DISPATCH_LEASE = 60.0
DEFAULT_DISPATCH_MAX_ATTEMPTS = 12
DEFAULT_DISPATCH_BACKOFF = 5.0
DEFAULT_DISPATCH_BACKOFF_MAX = 3600.0
DEFAULT_AUTH_PROBE_INTERVAL = 30.0
DEFAULT_DELIVERY_TIMEOUT = 15.0
DEFAULT_DELIVERY_SCHEDULE = "0,5,300,1800,7200,18000,36000,36000"
DEFAULT_DELIVERY_DISABLE_AFTER = 5 * 24 * 3600.0
DEFAULT_ROTATION_GRACE = 24 * 3600.0
DEFAULT_RETAIN_RAW_DAYS = 7.0
DEFAULT_RETAIN_DEDUPE_DAYS = 30.0
DEFAULT_RETAIN_DELIVERED_DAYS = 14.0
DEFAULT_RETAIN_FAILED_DAYS = 90.0
DEFAULT_HOUSEKEEPING_INTERVAL = 3600.0
DEFAULT_HOUSEKEEPING_BATCH = 500
DEFAULT_SANDBOX_PORT = 8081
DEFAULT_RECEIVER_PORT = 8082
DEFAULT_METRICS_DIR = "var/metrics"
DEFAULT_READY_HEARTBEAT_MAX = 60.0
DEFAULT_READY_ELMS_GRACE = 300.0
DEFAULT_SANDBOX_SITE = "demo"
DEFAULT_SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - the local stand-in's token

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


def parse_str(value: str) -> str:
    """Return the value stripped; an empty value is a mistake."""
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def parse_host(value: str) -> str:
    """Return an IP address or a host name that could be bound."""
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*", value):
        if not re.fullmatch(r"[0-9.]+", value):
            return value
    raise ValueError(f"must be an IP address or a host name; got {value!r}")


def parse_site(value: str) -> str:
    """Return a site id usable as one URL path segment."""
    value = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", value):
        raise ValueError(f"must be 1 to 64 letters, digits, . _ or -; got {value!r}")
    return value


def parse_http_url(value: str) -> str:
    """Return an http(s) URL with a host, without its trailing slash."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host; got {value!r}")
    return value.strip().rstrip("/")


def parse_database_url(value: str) -> str:
    """Return a SQLAlchemy URL for SQLite or PostgreSQL."""
    value = value.strip()
    if not value.startswith(("sqlite:", "postgresql:", "postgresql+")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return value


def parse_networks(value: str) -> tuple[str, ...]:
    """Return comma-separated IP networks, each checked, in canonical form."""
    networks = []
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            networks.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not an IP network") from None
    return tuple(networks)


def parse_schedule(value: str) -> str:
    """Return a comma-separated list of delays in seconds, each checked."""
    try:
        delays = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        message = f"must be numbers of seconds, comma-separated; got {value!r}"
        raise ValueError(message) from None
    if not delays or any(delay < 0 for delay in delays):
        raise ValueError("must list at least one delay, none negative")
    return ",".join(f"{delay:g}" for delay in delays)


def ranged(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    """Return a parser for a number of ``kind`` between ``low`` and ``high``."""

    def parse(value: str) -> Any:
        try:
            number = kind(value.strip())
        except ValueError:
            name = "a whole number" if kind is int else "a number"
            raise ValueError(f"must be {name}; got {value!r}") from None
        if not low <= number <= high:
            raise ValueError(f"must be between {low:g} and {high:g}; got {number}")
        return number

    return parse


def choice(*options: str, upper: bool = False) -> Callable[[str], str]:
    """Return a parser accepting one of ``options`` (case-insensitive)."""

    def parse(value: str) -> str:
        folded = value.strip().upper() if upper else value.strip().lower()
        if folded not in options:
            raise ValueError(f"must be one of {', '.join(options)}; got {value!r}")
        return folded

    return parse


@dataclass(frozen=True)
class Field:
    """One setting: its variable suffix, parser, default and meaning."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    secret: bool = False

    @property
    def variable(self) -> str:
        """Return the environment variable's full name."""
        return PREFIX + self.name.upper()


FIELDS: tuple[Field, ...] = (
    Field("elms_url", parse_http_url, None,
          "Open ELMS backend base, e.g. https://HOST/SITE_ID/backend. "
          "Unset: `make run` starts the local sandbox and uses it."),
    Field("elms_token", parse_str, None,
          "APITokenAccess value, sent as `Authorization: Basic <token>`.",
          secret=True),
    Field("elms_connect_timeout", ranged(float, 0.1, 300),
          DEFAULT_ELMS_CONNECT_TIMEOUT, "Seconds to wait for a connection."),
    Field("elms_read_timeout", ranged(float, 0.1, 3600),
          DEFAULT_ELMS_READ_TIMEOUT, "Seconds to wait for an answer."),
    Field("elms_retries", ranged(int, 0, 20), DEFAULT_ELMS_RETRIES,
          "Retries of an idempotent call on transport errors, 500 and 503."),
    Field("elms_backoff", ranged(float, 0, 60), DEFAULT_ELMS_BACKOFF,
          "Backoff factor in seconds: waits grow as factor * 2^n, with jitter."),
    Field("elms_backoff_max", ranged(float, 0, 3600), DEFAULT_ELMS_BACKOFF_MAX,
          "Longest wait between two retries, in seconds."),
    Field("elms_retry_after_max", ranged(float, 0, 3600),
          DEFAULT_ELMS_RETRY_AFTER_MAX,
          "Longest `Retry-After` honoured, in seconds; longer ones are cut."),
    Field("elms_pool_size", ranged(int, 1, 1000), DEFAULT_ELMS_POOL_SIZE,
          "Connections kept open to Open ELMS."),
    Field("database_url", parse_database_url, DEFAULT_DATABASE_URL,
          "SQLAlchemy URL: SQLite by default, postgresql+psycopg://... at scale."),
    Field("host", parse_host, DEFAULT_HOST, "Address the web process binds."),
    Field("port", ranged(int, 1, 65535), DEFAULT_PORT, "Port of the web process."),
    Field("web_workers", ranged(int, 1, 64), DEFAULT_WEB_WORKERS,
          "gunicorn worker processes of the web process."),
    Field("web_threads", ranged(int, 1, 64), DEFAULT_WEB_THREADS,
          "Threads in each web worker process."),
    Field("sources_file", parse_str, None,
          "YAML or TOML file defining the inbound sources."),
    Field("mappings_file", parse_str, None,
          "YAML or TOML file of activity -> Open ELMS learning id mappings."),
    Field("resolve_cache_ttl", ranged(float, 0, 86400), DEFAULT_RESOLVE_CACHE_TTL,
          "Seconds a resolved learner or learning list is kept in memory."),
    Field("dispatch_interval", ranged(float, 0.05, 60), DEFAULT_DISPATCH_INTERVAL,
          "Seconds between the worker's looks for new work when idle."),
    Field("dispatch_batch", ranged(int, 1, 1000), DEFAULT_DISPATCH_BATCH,
          "Events a worker claims at once."),
    Field("dispatch_lease", ranged(float, 5, 3600), DEFAULT_DISPATCH_LEASE,
          "Seconds a claim lasts; a dead worker's claims are taken back after it."),
    Field("dispatch_max_attempts", ranged(int, 1, 100),
          DEFAULT_DISPATCH_MAX_ATTEMPTS,
          "Attempts at an Open ELMS call before the event is failed."),
    Field("dispatch_backoff", ranged(float, 0.01, 3600), DEFAULT_DISPATCH_BACKOFF,
          "First retry delay in seconds; doubles each attempt, with jitter."),
    Field("dispatch_backoff_max", ranged(float, 0.01, 86400),
          DEFAULT_DISPATCH_BACKOFF_MAX, "Longest delay between two attempts."),
    Field("auth_probe_interval", ranged(float, 0.1, 3600),
          DEFAULT_AUTH_PROBE_INTERVAL,
          "Seconds between probes while dispatch is paused by a 401/403."),
    Field("allow_private_targets", parse_networks, (),
          "Networks subscription URLs may resolve to despite the SSRF guard, "
          "e.g. 127.0.0.0/8,::1/128 for local tests. Empty: none."),
    Field("delivery_timeout", ranged(float, 0.1, 300), DEFAULT_DELIVERY_TIMEOUT,
          "Seconds a subscriber has to answer a delivery."),
    Field("delivery_schedule", parse_schedule, DEFAULT_DELIVERY_SCHEDULE,
          "Delays in seconds before each delivery attempt, comma-separated."),
    Field("delivery_disable_after", ranged(float, 1, 365 * 86400),
          DEFAULT_DELIVERY_DISABLE_AFTER,
          "Seconds of continuous failure after which a subscription is disabled."),
    Field("rotation_grace", ranged(float, 0, 30 * 86400), DEFAULT_ROTATION_GRACE,
          "Seconds the old secret keeps signing after a rotation."),
    Field("poll_interval_in_progress", ranged(float, 1, 86400), 60.0,
          "Seconds between polls of a pair that is in progress."),
    Field("poll_interval_not_attempted", ranged(float, 1, 7 * 86400), 300.0,
          "Seconds between polls of a pair not attempted yet."),
    Field("poll_reconcile_interval", ranged(float, 60, 365 * 86400), 86400.0,
          "Seconds between the slow re-checks of completed pairs."),
    Field("poll_max_calls", ranged(int, 1, 100000), 100,
          "Open ELMS calls one poll pass may make."),
    Field("poll_rate", ranged(float, 0.1, 1000), 5.0,
          "Open ELMS calls per second the poller makes at most."),
    Field("poll_concurrency", ranged(int, 1, 16), 4,
          "Open ELMS calls the poller of one worker has in flight at most."),
    Field("retain_raw_days", ranged(float, 0, 3650), DEFAULT_RETAIN_RAW_DAYS,
          "Days raw request bodies and headers are kept once their events are "
          "done; 0 keeps them."),
    Field("retain_dedupe_days", ranged(float, 0, 3650), DEFAULT_RETAIN_DEDUPE_DAYS,
          "Days finished events and their requests are kept, so a re-sent "
          "request or event id is still recognised; 0 keeps them."),
    Field("retain_delivered_days", ranged(float, 0, 3650),
          DEFAULT_RETAIN_DELIVERED_DAYS,
          "Days delivered deliveries, their attempts and outbound events are "
          "kept; 0 keeps them."),
    Field("retain_failed_days", ranged(float, 0, 3650), DEFAULT_RETAIN_FAILED_DAYS,
          "Days failed or unresolved events and failed deliveries are kept; "
          "0 keeps them."),
    Field("housekeeping_interval", ranged(float, 10, 7 * 86400),
          DEFAULT_HOUSEKEEPING_INTERVAL, "Seconds between housekeeping runs."),
    Field("housekeeping_batch", ranged(int, 1, 100000), DEFAULT_HOUSEKEEPING_BATCH,
          "Rows purged per short transaction."),
    Field("lrs_source", parse_str, DEFAULT_LRS_SOURCE,
          "Source whose credentials and format serve /xapi/statements."),
    Field("max_body_bytes", ranged(int, 1024, 64 * 1024 * 1024),
          DEFAULT_MAX_BODY_BYTES, "Largest inbound body accepted; larger is 413."),
    Field("admin_token", parse_str, None,
          "Bearer token of the admin API under /api/v1; unset turns that API "
          "off (404).", secret=True),
    Field("metrics_dir", parse_str, DEFAULT_METRICS_DIR,
          "Directory where web and worker processes share their metrics."),
    Field("worker_metrics_port", ranged(int, 1, 65535), None,
          "Port where each worker serves its own /metrics; unset: none."),
    Field("ready_heartbeat_max", ranged(float, 1, 86400),
          DEFAULT_READY_HEARTBEAT_MAX,
          "Seconds since the last worker heartbeat before /readyz fails."),
    Field("ready_elms_grace", ranged(float, 0, 86400), DEFAULT_READY_ELMS_GRACE,
          "Seconds a failing Open ELMS stays ready after its last success."),
    Field("log_level", choice(*LOG_LEVELS, upper=True), "INFO",
          "DEBUG, INFO, WARNING, ERROR or CRITICAL."),
    Field("log_format", choice(*LOG_FORMATS), "text",
          "`text`, or `json` for one JSON object a line."),
    Field("sandbox_port", ranged(int, 1, 65535), DEFAULT_SANDBOX_PORT,
          "Port of the local sandbox that `make run` starts."),
    Field("sandbox_site", parse_site, DEFAULT_SANDBOX_SITE,
          "Site id of the local sandbox."),
    Field("sandbox_token", parse_str, DEFAULT_SANDBOX_TOKEN,
          "Token of the local sandbox.", secret=True),
    Field("receiver_port", ranged(int, 1, 65535), DEFAULT_RECEIVER_PORT,
          "Port of the local webhook receiver that `make run` starts."),
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """Validated settings; build with :func:`load_settings`."""

    elms_url: str | None = None
    elms_token: str | None = None
    elms_connect_timeout: float = DEFAULT_ELMS_CONNECT_TIMEOUT
    elms_read_timeout: float = DEFAULT_ELMS_READ_TIMEOUT
    elms_retries: int = DEFAULT_ELMS_RETRIES
    elms_backoff: float = DEFAULT_ELMS_BACKOFF
    elms_backoff_max: float = DEFAULT_ELMS_BACKOFF_MAX
    elms_retry_after_max: float = DEFAULT_ELMS_RETRY_AFTER_MAX
    elms_pool_size: int = DEFAULT_ELMS_POOL_SIZE
    database_url: str = DEFAULT_DATABASE_URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    web_workers: int = DEFAULT_WEB_WORKERS
    web_threads: int = DEFAULT_WEB_THREADS
    sources_file: str | None = None
    lrs_source: str = DEFAULT_LRS_SOURCE
    mappings_file: str | None = None
    resolve_cache_ttl: float = DEFAULT_RESOLVE_CACHE_TTL
    dispatch_interval: float = DEFAULT_DISPATCH_INTERVAL
    dispatch_batch: int = DEFAULT_DISPATCH_BATCH
    dispatch_lease: float = DEFAULT_DISPATCH_LEASE
    dispatch_max_attempts: int = DEFAULT_DISPATCH_MAX_ATTEMPTS
    dispatch_backoff: float = DEFAULT_DISPATCH_BACKOFF
    dispatch_backoff_max: float = DEFAULT_DISPATCH_BACKOFF_MAX
    auth_probe_interval: float = DEFAULT_AUTH_PROBE_INTERVAL
    allow_private_targets: tuple[str, ...] = ()
    poll_interval_in_progress: float = 60.0
    poll_interval_not_attempted: float = 300.0
    poll_reconcile_interval: float = 86400.0
    poll_max_calls: int = 100
    poll_rate: float = 5.0
    poll_concurrency: int = 4
    delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT
    delivery_schedule: str = DEFAULT_DELIVERY_SCHEDULE
    delivery_disable_after: float = DEFAULT_DELIVERY_DISABLE_AFTER
    rotation_grace: float = DEFAULT_ROTATION_GRACE
    retain_raw_days: float = DEFAULT_RETAIN_RAW_DAYS
    retain_dedupe_days: float = DEFAULT_RETAIN_DEDUPE_DAYS
    retain_delivered_days: float = DEFAULT_RETAIN_DELIVERED_DAYS
    retain_failed_days: float = DEFAULT_RETAIN_FAILED_DAYS
    housekeeping_interval: float = DEFAULT_HOUSEKEEPING_INTERVAL
    housekeeping_batch: int = DEFAULT_HOUSEKEEPING_BATCH
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    admin_token: str | None = None
    metrics_dir: str = DEFAULT_METRICS_DIR
    worker_metrics_port: int | None = None
    ready_heartbeat_max: float = DEFAULT_READY_HEARTBEAT_MAX
    ready_elms_grace: float = DEFAULT_READY_ELMS_GRACE
    log_level: str = "INFO"
    log_format: str = "text"
    sandbox_port: int = DEFAULT_SANDBOX_PORT
    sandbox_site: str = DEFAULT_SANDBOX_SITE
    sandbox_token: str = DEFAULT_SANDBOX_TOKEN
    receiver_port: int = DEFAULT_RECEIVER_PORT

    def __repr__(self) -> str:
        shown = []
        for spec in FIELDS:
            value = getattr(self, spec.name)
            if spec.secret and value is not None:
                value = "***"
            shown.append(f"{spec.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def sandbox_url(self) -> str:
        """Return the backend base URL of the local sandbox."""
        return f"http://127.0.0.1:{self.sandbox_port}/{self.sandbox_site}/backend"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment).

    Raises:
        ConfigError: listing every wrong, unknown or missing variable.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []

    for spec in FIELDS:
        raw = environ.get(spec.variable)
        if raw is None or raw == "":
            continue
        try:
            values[spec.name] = spec.parse(raw)
        except ValueError as exc:
            problems.append(f"{spec.variable}: {exc}")

    problems.extend(find_unknown_variables(environ))
    problems.extend(check_combinations(values))
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def find_unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Return a sentence for each ``BRIDGE_*`` variable that is not a setting.

    A misspelt variable would otherwise be ignored in silence.
    """
    known = {spec.variable for spec in FIELDS} | EXTRA_VARIABLES
    return [
        f"{name}: is not a known setting (see README, Configuration)"
        for name in sorted(environ)
        if name.startswith(PREFIX) and name not in known
    ]


def check_combinations(values: Mapping[str, Any]) -> list[str]:
    """Return sentences for settings that are valid alone but not together."""
    problems = []
    if values.get("elms_url") and not values.get("elms_token"):
        problems.append("BRIDGE_ELMS_TOKEN: must be set when BRIDGE_ELMS_URL is set")

    port = values.get("port", DEFAULT_PORT)
    sandbox_port = values.get("sandbox_port", DEFAULT_SANDBOX_PORT)
    if port == sandbox_port:
        problems.append(f"BRIDGE_SANDBOX_PORT: must differ from BRIDGE_PORT ({port})")
    if values.get("receiver_port", DEFAULT_RECEIVER_PORT) in (port, sandbox_port):
        problems.append(
            "BRIDGE_RECEIVER_PORT: must differ from BRIDGE_PORT and "
            f"BRIDGE_SANDBOX_PORT ({port}, {sandbox_port})"
        )

    backoff = values.get("dispatch_backoff", DEFAULT_DISPATCH_BACKOFF)
    if values.get("dispatch_backoff_max", DEFAULT_DISPATCH_BACKOFF_MAX) < backoff:
        problems.append(
            f"BRIDGE_DISPATCH_BACKOFF_MAX: must be at least BRIDGE_DISPATCH_BACKOFF "
            f"({backoff:g})"
        )
    return problems


# Variables read by other parts (tests, tools), not settings of the process.
# BRIDGE_RECEIVER_SECRET carries the receiver's secret from `run` to its child,
# so the secret stays out of the process list.
EXTRA_VARIABLES = frozenset({"BRIDGE_TEST_DATABASE_URL", "BRIDGE_RECEIVER_SECRET"})


def setting_names() -> list[str]:
    """Return every settings variable name, in declaration order."""
    return [spec.variable for spec in FIELDS]


def describe_settings() -> list[tuple[str, str, str]]:
    """Return (variable, default, description) rows for documentation."""
    rows = []
    for spec in FIELDS:
        default = "" if spec.default in (None, ()) else str(spec.default)
        rows.append((spec.variable, default, spec.doc))
    return rows
