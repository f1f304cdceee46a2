"""Process-wide logging: text or one JSON object a line, secrets masked.

Set once at start by :func:`configure_logging`. Modules log through their
own ``logging.getLogger(__name__)``; nothing here is called per message
except the formatter and the redaction filter.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# Credentials that could reach a message through an exception text or a URL.
_SECRET_PATTERNS = (
    re.compile(
        r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer)\s+[^\s'\",}]+"
    ),
    re.compile(r"(?i)((?:token|password|secret)['\"]?\s*[:=]\s*['\"]?)[^\s'\",&}]+"),
    re.compile(r"whsec_[A-Za-z0-9+/=]+"),
    re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+(?=@)"),
)


# One cheap look first: most lines hold none of these, and skip the rest.
_MAYBE_SECRET = re.compile(
    r"(?i)authorization|token|password|secret|whsec_|://[^/\s]*@"
)


def redact(text: str) -> str:
    """Return ``text`` with tokens, passwords and URL credentials masked."""
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "***", text)
        else:
            text = pattern.sub("***", text)
    return text


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def escape_controls(text: str) -> str:
    """Return ``text`` with control characters shown as escapes.

    Client data (ids, names) reaches log messages; a newline in it must not
    start a forged line.
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class RedactingFilter(logging.Filter):
    """Mask secrets and escape control characters in the final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its cleaned form; keep it."""
        message = record.getMessage()
        cleaned = escape_controls(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as JSON with time, level, logger and message."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send every logger's records to stderr in the chosen format.

    Replaces handlers on the root logger, so calling it twice (tests, the
    CLI then the app) never duplicates lines.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # urllib3 logs each retry with the full URL at WARNING; ours say more.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(max(logging.WARNING, root.level))
    # APScheduler logs every run at INFO, and a drain longer than the
    # dispatch interval skips ticks by design; its warnings say only that.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
