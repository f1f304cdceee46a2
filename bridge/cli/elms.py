"""``python -m bridge elms ...``: call the Open ELMS API by hand, print JSON."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from bridge.cli import fail, get_settings, print_json
from bridge.elms import USER_SEARCH_FIELDS, USER_UPDATE_FIELDS, OpenElmsClient
from bridge.errors import ElmsError


def client_from(ctx: click.Context) -> OpenElmsClient:
    """Return a client for the site named by the options or the settings."""
    settings = get_settings(ctx)
    overrides = ctx.find_object(dict) or {}
    url = overrides.get("url") or settings.elms_url
    token = overrides.get("token") or settings.elms_token
    if not url or not token:
        fail("set BRIDGE_ELMS_URL and BRIDGE_ELMS_TOKEN (or --url and --token)")
    return OpenElmsClient.from_settings(settings, base_url=url, token=token)


def elms_call(func: Callable[..., Any]) -> Callable[..., None]:
    """Wrap a command: build the client, print the JSON result or one error line."""

    @click.pass_context
    @wraps(func)
    def command(ctx: click.Context, **kwargs: Any) -> None:
        with client_from(ctx) as client:
            try:
                result = func(client, **kwargs)
            except ElmsError as exc:
                fail(str(exc))
            except ValueError as exc:
                fail(str(exc), code=2)
        print_json(result)

    return command


@click.group()
@click.option("--url", help="Backend base URL; default BRIDGE_ELMS_URL.")
@click.option("--token", help="API token; default BRIDGE_ELMS_TOKEN.")
@click.pass_context
def elms(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Call the Open ELMS API of the configured site and print JSON."""
    ctx.obj = {"url": url, "token": token}


@elms.group()
def users() -> None:
    """List, show, search, create and update user accounts."""


@users.command("list")
@elms_call
def users_list(client: OpenElmsClient) -> Any:
    """List every user account."""
    return client.list_users()


@users.command("get")
@click.argument("user_id")
@elms_call
def users_get(client: OpenElmsClient, user_id: str) -> Any:
    """Show one user account."""
    return client.get_user(user_id)


def field_options(names: tuple[str, ...]) -> Callable[[Any], Any]:
    """Return a decorator adding one ``--NAME`` option per API field."""

    def decorate(func: Any) -> Any:
        for name in reversed(names):
            flag = "--" + name.replace("_", "-")
            func = click.option(flag, name, help=f"The {name} field.")(func)
        return func

    return decorate


def given(fields: dict[str, Any]) -> dict[str, Any]:
    """Return only the options that were given."""
    return {key: value for key, value in fields.items() if value is not None}


@users.command("search")
@field_options(USER_SEARCH_FIELDS)
@elms_call
def users_search(client: OpenElmsClient, **fields: Any) -> Any:
    """Search user accounts; several fields must all match."""
    return client.search_users(**given(fields))


@users.command("create")
@click.option("--username", required=True, help="The username field.")
@field_options(("fname", "lname", "usercode", "email", "description"))
@elms_call
def users_create(client: OpenElmsClient, **fields: Any) -> Any:
    """Create a user account (form data); print its id."""
    return {"id": client.create_user(**given(fields))}


@users.command("update")
@click.argument("user_id")
@field_options(USER_UPDATE_FIELDS)
@elms_call
def users_update(client: OpenElmsClient, user_id: str, **fields: Any) -> Any:
    """Update a user account's fields (form data)."""
    return client.update_user(user_id, **given(fields))


@elms.group()
def learning() -> None:
    """List, show and download learning resources."""


@learning.command("list")
@elms_call
def learning_list(client: OpenElmsClient) -> Any:
    """List every learning resource."""
    return client.list_learning()


@learning.command("get")
@click.argument("learning_id")
@elms_call
def learning_get(client: OpenElmsClient, learning_id: str) -> Any:
    """Show one learning resource, with its download link if SCORM."""
    return client.get_learning(learning_id)


@learning.command("download")
@click.argument("learning_id")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write; default learning-ID.zip.",
)
@elms_call
def learning_download(
    client: OpenElmsClient, learning_id: str, output: Path | None
) -> Any:
    """Download a SCORM resource's ZIP, streamed to a file."""
    output = output or Path(f"learning-{learning_id}.zip")
    size = client.download_learning(learning_id, output)
    return {"file": str(output), "bytes": size}


@elms.group()
def progress() -> None:
    """Check and update a user's progress on a learning resource."""


@progress.command("get")
@click.argument("learning_id")
@click.argument("user_id")
@elms_call
def progress_get(client: OpenElmsClient, learning_id: str, user_id: str) -> Any:
    """Show status and score of USER_ID on LEARNING_ID."""
    return client.get_progress(learning_id, user_id).to_dict()


@progress.command("start")
@click.argument("learning_id")
@click.argument("user_id")
@elms_call
def progress_start(client: OpenElmsClient, learning_id: str, user_id: str) -> Any:
    """Mark LEARNING_ID as in progress for USER_ID."""
    client.start(learning_id, user_id)
    return client.get_progress(learning_id, user_id).to_dict()


@progress.command("complete")
@click.argument("learning_id")
@click.argument("user_id")
@click.option("--score", type=click.FloatRange(0, 100), help="Score, 0 to 100.")
@elms_call
def progress_complete(
    client: OpenElmsClient, learning_id: str, user_id: str, score: float | None
) -> Any:
    """Mark LEARNING_ID as completed for USER_ID, with an optional score."""
    client.complete(learning_id, user_id, score)
    return client.get_progress(learning_id, user_id).to_dict()
