"""``python -m bridge mappings ...``: map activities to Open ELMS learning ids.

A mapping ties an activity key (an IRI, course id or content id, compared
case-insensitively) to a learning id, for one source or for every source
(``*``). Adding one puts the unresolved events it resolves back in the
queue, so the worker delivers them.
"""

from __future__ import annotations

import json
import re

import click

from bridge.cli import fail, print_json
from bridge.cli.common import open_store
from bridge.errors import AdminError, InvalidInputError
from bridge.services import mappings as service
from bridge.sources import NAME_PATTERN
from bridge.store.mapping_queries import ANY_SOURCE

SOURCE_HELP = "Source the mapping applies to; `*` (the default) means every source."


@click.group()
def mappings() -> None:
    """Add, list and remove activity -> learning id mappings."""


@mappings.command("add")
@click.argument("activity_key")
@click.argument("learning_id")
@click.option("--source", default=ANY_SOURCE, show_default=True, help=SOURCE_HELP)
@click.pass_context
def mappings_add(
    ctx: click.Context, activity_key: str, learning_id: str, source: str
) -> None:
    """Map ACTIVITY_KEY to LEARNING_ID and requeue the events it resolves."""
    check_source(source)
    data = {"activity_key": activity_key, "learning_id": learning_id, "source": source}
    try:
        added = service.add_mapping(open_store(ctx), data)
    except InvalidInputError as exc:
        fail(next(iter(exc.errors.values()))[0])
    except AdminError as exc:
        fail(exc.message)
    print_json(added)


@mappings.command("list")
@click.option("--source", default=None, help="Only the mappings of this source.")
@click.pass_context
def mappings_list(ctx: click.Context, source: str | None) -> None:
    """List the mappings by source and key."""
    try:
        print_json(service.list_mappings(open_store(ctx), {"source": source}))
    except AdminError as exc:
        fail(exc.message, code=2)


@mappings.command("remove")
@click.argument("id_or_key")
@click.option("--source", default=ANY_SOURCE, show_default=True, help=SOURCE_HELP)
@click.pass_context
def mappings_remove(ctx: click.Context, id_or_key: str, source: str) -> None:
    """Remove a mapping by its id, or by its key and --source."""
    try:
        service.remove_mapping(open_store(ctx), id_or_key, source)
    except AdminError as exc:
        fail(exc.message)
    click.echo(json.dumps({"removed": id_or_key}))


def check_source(source: str) -> None:
    """Exit with an error unless ``source`` is a source name or ``*``."""
    if source != ANY_SOURCE and not re.fullmatch(NAME_PATTERN, source):
        fail(f"--source must be a source name or `*`; got {source!r}", code=2)
