"""``python -m bridge settings``: the BRIDGE_* variables and their defaults."""

from __future__ import annotations

import click

from bridge.config import FIELDS, describe_settings

ENV_EXAMPLE_HEADER = """\
# Settings of the Open ELMS progress bridge. Copy to .env and edit.
# Every variable is optional; a wrong value stops the start with a
# message naming it. See README.md, Configuration.
"""


@click.command()
@click.option(
    "--format",
    "output",
    type=click.Choice(["env", "markdown"]),
    default="env",
    show_default=True,
    help="An .env example, or the README's table.",
)
def settings(output: str) -> None:
    """Print every setting with its default and meaning."""
    if output == "markdown":
        click.echo("| Variable | Default | Meaning |\n|---|---|---|")
        for variable, default, doc in describe_settings():
            shown = f"`{default}`" if default else ""
            click.echo(f"| `{variable}` | {shown} | {doc} |")
        return

    click.echo(ENV_EXAMPLE_HEADER)
    for spec in FIELDS:
        default = "" if spec.default in (None, ()) else str(spec.default)
        click.echo(f"# {spec.doc}\n#{spec.variable}={default}\n")
