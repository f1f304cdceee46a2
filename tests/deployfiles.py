"""Read the deployment files the way their runtimes would, for the tests.

Docker, Compose, Kubernetes and systemd do not run here, so the tests read
each file, pull out the commands and variables it hands to the bridge, and
check those against the real CLI and settings table.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import yaml

from bridge.cli import main
from bridge.config import EXTRA_VARIABLES, setting_names

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S_DIR = DEPLOY / "k8s"
SYSTEMD_DIR = DEPLOY / "systemd"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"

BRIDGE_VARIABLE = re.compile(r"\bBRIDGE_[A-Z0-9_]*[A-Z0-9]\b")
# ${NAME}, ${NAME:-default} and ${NAME-default} in Compose files.
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def known_variables() -> set[str]:
    """Return every variable the bridge reads: settings and the extras."""
    return set(setting_names()) | set(EXTRA_VARIABLES)


def bridge_variables_in(path: Path) -> set[str]:
    """Return every BRIDGE_* name written anywhere in a file."""
    return set(BRIDGE_VARIABLE.findall(path.read_text()))


def resolve_bridge_command(args: list[str]) -> list[str]:
    """Parse ``python -m bridge ARGS`` with the real CLI; return the path.

    Walks the click groups by name, then lets the leaf command parse its
    options, so an unknown command or option raises click's usage error.
    """
    command: click.Command = main
    parent = click.Context(main, info_name="bridge")
    path: list[str] = []
    remaining = list(args)
    while isinstance(command, click.Group):
        if not remaining:
            raise click.UsageError(f"{' '.join(path) or 'bridge'} needs a command")
        name = remaining.pop(0)
        found = command.get_command(parent, name)
        if found is None:
            raise click.UsageError(f"no command {name!r} after {path}")

        path.append(name)
        if isinstance(found, click.Group):
            parent = click.Context(found, info_name=name, parent=parent)
        command = found

    command.make_context(path[-1], remaining, parent=parent)
    return path


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return the Dockerfile's (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_exec_form(keyword: str) -> list[str]:
    """Return the JSON array of the last ENTRYPOINT or CMD."""
    values = [rest for key, rest in dockerfile_instructions() if key == keyword]
    return json.loads(values[-1])


def dockerfile_env() -> dict[str, str]:
    """Return the variables set by ENV lines (KEY=VALUE form)."""
    env = {}
    for key, rest in dockerfile_instructions():
        if key == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def load_compose() -> dict[str, Any]:
    """Return the Compose file as YAML sees it (anchors and merges applied)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(value: str, shell: dict[str, str] | None = None) -> str:
    """Return a Compose value with each ${VAR:-default} replaced."""
    shell = shell or {}

    def replace(match: re.Match[str]) -> str:
        default = match.group(2)
        if match.group(1) not in shell and default is None:
            raise AssertionError(f"{match.group(0)} has no default")
        return shell.get(match.group(1), default or "")

    return INTERPOLATION.sub(replace, value)


def load_k8s_documents() -> list[dict[str, Any]]:
    """Return every object in deploy/k8s, each tagged with its file name."""
    documents = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and path.name != "kustomization.yaml":
                documents.append({**document, "_file": path.name})
    return documents


def k8s_objects(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """Return the objects of one kind by name."""
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """Return the pod spec of a Deployment or a Job."""
    return workload["spec"]["template"]["spec"]


def container_argv(container: dict[str, Any], entrypoint: list[str]) -> list[str]:
    """Return what a container runs: its command, else the image's entrypoint."""
    return container.get("command", entrypoint) + container.get("args", [])


def unit_exec_lines(path: Path) -> list[list[str]]:
    """Return the argv of every ExecStart/ExecStartPre line of a unit."""
    lines = []
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key in ("ExecStart", "ExecStartPre"):
            lines.append(shlex.split(value))
    return lines


def bridge_args(argv: list[str]) -> list[str] | None:
    """Return the arguments after ``python -m bridge``, or None if not one."""
    for index, word in enumerate(argv):
        is_python = Path(word).name.startswith("python")
        if is_python and argv[index + 1 : index + 3] == ["-m", "bridge"]:
            return argv[index + 3 :]
    return None


def bridge_command_path(argv: list[str]) -> list[str]:
    """Return the CLI path of a full ``python -m bridge ...`` argv, parsed."""
    args = bridge_args(argv)
    if args is None:
        raise AssertionError(f"not a `python -m bridge` command: {argv}")
    return resolve_bridge_command(args)
