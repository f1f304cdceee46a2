"""``python -m bridge demo``: every sample through a live bridge, checked."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bridge.cli import exit_config_error, fail
from bridge.demo import (
    DEFAULT_EXPECTATIONS,
    DEFAULT_SAMPLES,
    DemoError,
    DemoOptions,
    run_demo,
)
from bridge.errors import ConfigError


@click.command()
@click.option(
    "--samples",
    "samples_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_SAMPLES,
    show_default="../shared/samples beside the repository",
    help="Folder of sample payloads, one subfolder per format.",
)
@click.option(
    "--expectations",
    "expectations_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=DEFAULT_EXPECTATIONS,
    show_default="deploy/demo/expectations.yaml",
    help="What each sample should lead to, and how to send it.",
)
@click.option("--keep", is_flag=True, help="Keep the temporary folder (db, logs).")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON lines.")
def demo(samples_dir: Path, expectations_file: Path, keep: bool, as_json: bool) -> None:
    """Post every sample to a fresh bridge and print what Open ELMS got.

    Starts the sandbox, the web process and the worker on free loopback
    ports with a new database, posts each sample through the source of its
    format, waits until it is applied, and prints one row per sample. Exits
    1 when an outcome differs from the expectations file, 2 when the demo
    cannot run.
    """
    options = DemoOptions(
        samples_dir=samples_dir,
        expectations_file=expectations_file,
        keep=keep,
        as_json=as_json,
    )
    try:
        code = run_demo(options, echo=click.echo, note=echo_err)
    except ConfigError as exc:
        exit_config_error(exc)
    except DemoError as exc:
        fail(f"demo: {exc}", code=2)
    sys.exit(code)


def echo_err(line: str) -> None:
    """Print one line on stderr."""
    click.echo(line, err=True)
