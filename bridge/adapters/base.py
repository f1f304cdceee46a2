"""The contract every inbound format adapter fulfils."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from bridge.events import ProgressEvent


@dataclass(frozen=True)
class InboundRequest:
    """What an adapter may read of one HTTP request; credentials already checked.

    ``content_type`` is the bare media type, lower-cased, without parameters.
    ``form`` holds the decoded fields of a form-encoded body, else is empty.
    """

    source: str
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class AdapterResult:
    """Events parsed from one request, plus ids an LRS-style answer echoes."""

    events: list[ProgressEvent]
    statement_ids: list[str] = field(default_factory=list)


class BaseAdapter(ABC):
    """Turn one request of a given format into normalised progress events.

    Adapters are pure: they read the request and the source's options and
    touch no storage. Errors are raised as :class:`bridge.errors.PayloadError`
    (400, with ``errors`` listing ``{"path": ..., "message": ...}``) or
    :class:`bridge.errors.UnsupportedMediaError` (415).
    """

    name: ClassVar[str]
    content_types: ClassVar[frozenset[str]]
    # The option keys this format reads; any other key in a source's
    # options (beyond the dispatch ones) is refused as a likely typo.
    option_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        """Keep the source's options; subclasses validate theirs here.

        A subclass raises :class:`bridge.errors.ConfigError` listing every
        problem with its options, so a wrong sources file stops the start.
        """
        self.options = dict(options or {})

    @abstractmethod
    def parse(self, request: InboundRequest) -> AdapterResult:
        """Return the events of ``request`` or raise a 4xx inbound error."""
