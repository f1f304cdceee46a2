"""The ``python -m bridge`` command line: one root group, one module a group."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import click

from bridge import __version__
from bridge.config import Settings, load_settings
from bridge.errors import BridgeError, ConfigError
from bridge.logs import configure_logging


def settings_from_env() -> Settings:
    """Return validated settings, or print each mistake and exit with 2."""
    try:
        return load_settings()
    except ConfigError as exc:
        exit_config_error(exc)


def exit_config_error(exc: ConfigError) -> NoReturn:
    """Print each problem of a configuration error on stderr and exit with 2."""
    for problem in exc.problems:
        click.echo(f"config error: {problem}", err=True)
    sys.exit(2)


def get_settings(ctx: click.Context) -> Settings:
    """Return the settings the root group loaded for this invocation."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):
        settings = settings_from_env()
        ctx.find_root().obj = settings
    return settings


def print_json(value: Any) -> None:
    """Print a value as indented JSON on stdout."""
    click.echo(json.dumps(value, indent=2, default=str))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one error line on stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# Commands run by hand that answer on stdout; they log warnings and up only,
# unless BRIDGE_LOG_LEVEL is set explicitly.
QUIET_COMMANDS = frozenset(
    {
        "elms",
        "sources",
        "events",
        "db",
        "mappings",
        "settings",
        "demo",
        "subscriptions",
        "deliveries",
        "watch",
    }
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bridge")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Open ELMS progress bridge: e-learning events in, Open ELMS progress out.

    Settings come from BRIDGE_* environment variables (see the README).
    """
    settings = settings_from_env()
    level = settings.log_level
    if (
        ctx.invoked_subcommand in QUIET_COMMANDS
        and "BRIDGE_LOG_LEVEL" not in os.environ
    ):
        # A command's printed JSON is its answer; routine log lines are noise.
        level = "WARNING"
    configure_logging(level, settings.log_format)
    ctx.obj = settings


def register_commands() -> None:
    """Attach every command group to the root group."""
    from bridge.cli.db import db
    from bridge.cli.deliveries import deliveries
    from bridge.cli.demo import demo
    from bridge.cli.elms import elms
    from bridge.cli.events import events
    from bridge.cli.mappings import mappings
    from bridge.cli.receiver import receiver
    from bridge.cli.sandbox import sandbox
    from bridge.cli.serve import run, serve
    from bridge.cli.settings import settings
    from bridge.cli.sources import sources
    from bridge.cli.subscriptions import subscriptions
    from bridge.cli.watch import watch
    from bridge.cli.worker import worker

    commands = (
        serve, worker, run, demo, sandbox, receiver, elms, sources, events, mappings,
        subscriptions, deliveries, watch, db, settings,
    )  # fmt: skip
    for command in commands:
        main.add_command(command)


register_commands()

__all__ = ["BridgeError", "fail", "get_settings", "main", "print_json"]
