"""``python -m bridge sources ...``: manage inbound sources at run time.

Sources from the sources file are read-only here; sources added with this
command live in the database and are picked up by running web processes
within a few seconds. Secrets are stored, never printed back.
"""

from __future__ import annotations

import json
from typing import Any

import click

from bridge.adapters import FORMATS, build_adapter
from bridge.cli import fail, get_settings, print_json
from bridge.cli.common import open_store, parse_pairs
from bridge.errors import ConfigError
from bridge.registry import SourceRegistry
from bridge.sources import Source, validate_source
from bridge.store import queries

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
        for problem in exc.problems:
            click.echo(f"config error: {problem}", err=True)
        raise SystemExit(2) from exc


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
    if name in registry.file_source_names():
        fail(f"source {name!r} is defined in the sources file; edit it there")

    data: dict[str, Any] = {
        "name": name,
        "format": format_name,
        "auth": {
            "type": auth_type,
            **parse_pairs(auth_pairs, "--auth", text_keys=CREDENTIAL_KEYS),
        },
        "options": parse_pairs(option_pairs, "--option"),
    }
    if max_body_bytes is not None:
        data["max_body_bytes"] = max_body_bytes
    source = checked_source(data)

    stored = source.to_storage()
    with registry.store.session() as session:  # type: ignore[union-attr]
        try:
            queries.add_source(
                session,
                name,
                format_name,
                stored["auth"],
                stored["options"],
                max_body_bytes=stored["max_body_bytes"],
            )
        except ValueError as exc:
            fail(str(exc))
    print_json(source.public_dict())


def checked_source(data: dict[str, Any]) -> Source:
    """Return the validated source, or print each mistake and exit with 2."""
    try:
        return validate_source(data, where=data["name"], adapter_factory=build_adapter)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(2) from exc


@sources.command("list")
@click.pass_context
def sources_list(ctx: click.Context) -> None:
    """List every source: name, format, auth type and where it is defined."""
    registry = registry_for(ctx)
    file_names = set(registry.file_source_names())
    rows = []
    for name in registry.names():
        source = registry.get(name).source
        origin = "file" if name in file_names else "database"
        rows.append(
            {
                "name": name,
                "format": source.format,
                "auth": source.auth.type,
                "defined_in": origin,
            }
        )
    print_json(rows)


@sources.command("show")
@click.argument("name")
@click.pass_context
def sources_show(ctx: click.Context, name: str) -> None:
    """Show one source with its secrets masked."""
    registry = registry_for(ctx)
    if name not in registry.names():
        fail(f"no source named {name!r}")
    print_json(registry.get(name).source.public_dict())


@sources.command("remove")
@click.argument("name")
@click.pass_context
def sources_remove(ctx: click.Context, name: str) -> None:
    """Remove a source added with ``sources add``."""
    registry = registry_for(ctx)
    if name in registry.file_source_names():
        fail(f"source {name!r} is defined in the sources file; edit it there")
    with registry.store.session() as session:  # type: ignore[union-attr]
        removed = queries.remove_source(session, name)
    if not removed:
        fail(f"no source named {name!r} in the database")
    click.echo(json.dumps({"removed": name}))
