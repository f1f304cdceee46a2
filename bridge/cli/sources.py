"""``python -m bridge sources ...``: manage inbound sources at run time.

Sources from the sources file are read-only here; sources added with this
command live in the database and are picked up by running web processes
within a few seconds. Secrets are stored, never printed back.
"""

from __future__ import annotations

import json
from typing import Any

import click

from bridge.adapters import FORMATS
from bridge.cli import exit_config_error, fail, get_settings, print_json
from bridge.cli.common import open_store, parse_pairs
from bridge.errors import AdminError, ConfigError, InvalidInputError
from bridge.registry import SourceRegistry
from bridge.services import sources as service

# Credentials (and the names of variables holding them) are always text.
CREDENTIAL_KEYS = frozenset(
    {"username", "password", "token", "secret"}
    | {f"{key}_env" for key in ("username", "password", "token", "secret")}
)


@click.group()
def sources() -> None:
    """Add, list, show and remove inbound sources."""


def registry_for(ctx: click.Context) -> SourceRegistry:
    """Return the registry of the file's and the database's sources."""
    settings = get_settings(ctx)
    try:
        return SourceRegistry.from_file(settings.sources_file, open_store(ctx))
    except ConfigError as exc:
        exit_config_error(exc)


@sources.command("add")
@click.argument("name")
@click.option(
    "--format",
    "format_name",
    type=click.Choice(FORMATS),
    required=True,
    help="Inbound format of the source.",
)
@click.option(
    "--auth-type",
    required=True,
    help="none, hmac, standard-webhooks, basic, bearer, scorm-cloud-form.",
)
@click.option(
    "--auth",
    "auth_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Auth parameter, e.g. username=player or secret_env=VAR.",
)
@click.option(
    "--option",
    "option_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Format option; the value is read as JSON when it parses.",
)
@click.option("--max-body-bytes", type=int, help="Largest body accepted.")
@click.pass_context
def sources_add(
    ctx: click.Context,
    name: str,
    format_name: str,
    auth_type: str,
    auth_pairs: tuple[str, ...],
    option_pairs: tuple[str, ...],
    max_body_bytes: int | None,
) -> None:
    """Add a source NAME to the database and print it, secrets masked."""
    registry = registry_for(ctx)
    data: dict[str, Any] = {
        "name": name,
        "format": format_name,
        "auth": {
            "type": auth_type,
            **parse_pairs(auth_pairs, "--auth", text_keys=CREDENTIAL_KEYS),
        },
        "options": parse_pairs(option_pairs, "--option"),
        "max_body_bytes": max_body_bytes,
    }
    try:
        added = service.add_source(registry, data)
    except InvalidInputError as exc:
        problems = problems_of(exc)
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(2) from exc
    except AdminError as exc:
        fail(exc.message)
    print_json(added)


def problems_of(exc: InvalidInputError) -> list[str]:
    """Return the source rules' sentences, or the field errors as sentences."""
    if isinstance(exc.__cause__, ConfigError):
        return exc.__cause__.problems
    return [
        f"{field}: {message}"
        for field, messages in exc.errors.items()
        for message in messages
    ]


@sources.command("list")
@click.pass_context
def sources_list(ctx: click.Context) -> None:
    """List every source: name, format, auth type and where it is defined."""
    print_json(service.list_sources(registry_for(ctx)))


@sources.command("show")
@click.argument("name")
@click.pass_context
def sources_show(ctx: click.Context, name: str) -> None:
    """Show one source with its secrets masked."""
    try:
        shown = service.get_source(registry_for(ctx), name)
    except AdminError as exc:
        fail(exc.message)
    shown.pop("defined_in")
    print_json(shown)


@sources.command("remove")
@click.argument("name")
@click.pass_context
def sources_remove(ctx: click.Context, name: str) -> None:
    """Remove a source added with ``sources add``."""
    try:
        service.remove_source(registry_for(ctx), name)
    except AdminError as exc:
        fail(exc.message)
    click.echo(json.dumps({"removed": name}))
