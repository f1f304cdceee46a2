"""Inbound format adapters, looked up by the format name a source declares."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from bridge.adapters.base import AdapterResult, BaseAdapter, InboundRequest
from bridge.errors import ConfigError
from bridge.resolve_options import OPTION_KEYS as RESOLUTION_OPTION_KEYS
from bridge.resolve_options import resolution_option_problems

# format name -> (module, class); imported on first use.
_ADAPTERS: dict[str, tuple[str, str]] = {
    "xapi": ("bridge.adapters.xapi", "XapiAdapter"),
    "cmi5": ("bridge.adapters.cmi5", "Cmi5Adapter"),
    "h5p": ("bridge.adapters.h5p", "H5pAdapter"),
    "scorm-cloud": ("bridge.adapters.scorm_cloud", "ScormCloudAdapter"),
    "lti-ags": ("bridge.adapters.lti", "LtiAgsAdapter"),
    "scorm-runtime": ("bridge.adapters.scorm_runtime", "ScormRuntimeAdapter"),
    "generic": ("bridge.adapters.generic", "GenericAdapter"),
}

FORMATS = tuple(_ADAPTERS)

# Source options read by dispatch (progress rules and resolution), not by
# the format adapter; every format accepts them.
DISPATCH_OPTIONS = frozenset(
    {"score_policy", "no_score_policy", "no_score_value", *RESOLUTION_OPTION_KEYS}
)


def adapter_class(format_name: str) -> type[BaseAdapter]:
    """Return the adapter class of a format name."""
    try:
        module_name, class_name = _ADAPTERS[format_name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise ConfigError([f"unknown format {format_name!r}; one of {known}"]) from None
    cls: type[BaseAdapter] = getattr(import_module(module_name), class_name)
    return cls


def build_adapter(
    format_name: str, options: dict[str, Any] | None = None
) -> BaseAdapter:
    """Return an adapter for a format, its own and its dispatch options validated.

    Raises:
        ConfigError: for an unknown format or wrong options, listing each.
    """
    from bridge.rules import policy_option_problems

    options = dict(options or {})
    problems = policy_option_problems(options) + resolution_option_problems(options)
    own = {k: v for k, v in options.items() if k not in DISPATCH_OPTIONS}
    cls = adapter_class(format_name)
    known = sorted(cls.option_keys | DISPATCH_OPTIONS)
    for key in sorted(set(own) - cls.option_keys):
        problems.append(
            f"unknown option {key!r}; {format_name} reads {', '.join(known)}"
        )
    try:
        adapter = cls(own)
    except ConfigError as exc:
        problems = [*exc.problems, *problems]
    if problems:
        raise ConfigError(problems)
    return adapter


__all__ = [
    "FORMATS",
    "AdapterResult",
    "BaseAdapter",
    "InboundRequest",
    "adapter_class",
    "build_adapter",
]
