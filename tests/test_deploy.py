"""The deployment files hand the bridge commands and settings that exist.

No Docker engine or cluster runs here, so each file is read as its runtime
would read it and every ``python -m bridge`` command in it is parsed by the
real CLI, every BRIDGE_* name checked against the settings table, and the
settings each environment builds validated by ``load_settings``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from bridge.config import load_settings
from bridge.mappings import load_mappings_file
from bridge.readiness import CHECK_NAMES
from bridge.sources import load_sources_file
from tests.deployfiles import (
    COMPOSE_FILE,
    DOCKERFILE,
    GUNICORN_CONF,
    K8S_DIR,
    OPERATIONS_DOC,
    ROOT,
    SYSTEMD_DIR,
    bridge_command_path,
    bridge_variables_in,
    container_argv,
    dockerfile_env,
    dockerfile_exec_form,
    dockerfile_instructions,
    interpolate,
    k8s_objects,
    known_variables,
    load_compose,
    load_k8s_documents,
    pod_spec,
    resolve_bridge_command,
    unit_exec_lines,
)

FILES_NAMING_SETTINGS = [
    DOCKERFILE,
    COMPOSE_FILE,
    GUNICORN_CONF,
    OPERATIONS_DOC,
    ROOT / "Procfile",
    *sorted(SYSTEMD_DIR.glob("*.service")),
    *sorted(K8S_DIR.glob("*.yaml")),
]
APP_SPEC = "bridge.app:create_app()"


@pytest.mark.parametrize("path", FILES_NAMING_SETTINGS, ids=lambda p: p.name)
def test_every_bridge_variable_named_is_a_setting(path: Path) -> None:
    unknown = bridge_variables_in(path) - known_variables()
    assert not unknown, f"{path.name} names variables the bridge lacks: {unknown}"


def test_dockerfile_runs_serve_as_a_non_root_user_on_slim_python() -> None:
    instructions = dockerfile_instructions()
    keywords = [key for key, _ in instructions]
    users = [rest for key, rest in instructions if key == "USER"]

    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert users and users[-1] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")
    assert dockerfile_exec_form("ENTRYPOINT") == ["python", "-m", "bridge"]
    assert resolve_bridge_command(dockerfile_exec_form("CMD")) == ["serve"]


def test_dockerfile_health_check_asks_healthz_on_the_exposed_port() -> None:
    instructions = dict(dockerfile_instructions())
    env = dockerfile_env()

    assert "/healthz" in instructions["HEALTHCHECK"]
    assert "urllib.request" in instructions["HEALTHCHECK"]
    assert instructions["EXPOSE"] == env["BRIDGE_PORT"]
    load_settings({k: v for k, v in env.items() if k.startswith("BRIDGE_")})


def test_dockerfile_copies_only_paths_that_exist_and_are_not_ignored() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line for line in lines if line and not line.startswith("#")]
    copied = [
        rest.split()[:-1] for key, rest in dockerfile_instructions() if key == "COPY"
    ]
    sources = [source for group in copied for source in group]

    assert sources == ["requirements.txt", "bridge", "deploy"]
    for source in sources:
        assert (ROOT / source).exists()
        assert source not in ignored
    assert {".git", ".venv", "tests"} <= set(ignored)


def test_compose_runs_postgres_migrate_two_web_two_workers_and_sandbox() -> None:
    services = load_compose()["services"]
    entrypoint = dockerfile_exec_form("ENTRYPOINT")

    assert set(services) == {"postgres", "migrate", "web", "worker", "sandbox"}
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    paths = {
        name: bridge_command_path(entrypoint + spec["command"])
        for name, spec in services.items()
        if name != "postgres"
    }
    assert paths == {
        "migrate": ["db", "upgrade"],
        "web": ["serve"],
        "worker": ["worker"],
        "sandbox": ["sandbox"],
    }


def test_compose_starts_web_and_worker_after_a_clean_migration() -> None:
    services = load_compose()["services"]

    for name, spec in services.items():
        assert set(spec.get("depends_on", {})) <= set(services), name
    assert services["migrate"]["depends_on"]["postgres"] == {
        "condition": "service_healthy"
    }
    for name in ("web", "worker"):
        migrate = services[name]["depends_on"]["migrate"]
        assert migrate == {"condition": "service_completed_successfully"}


def test_compose_settings_validate_and_point_at_its_own_services() -> None:
    services = load_compose()["services"]
    postgres = services["postgres"]["environment"]

    for name in ("migrate", "web", "worker"):
        env = {k: interpolate(str(v)) for k, v in services[name]["environment"].items()}
        settings = load_settings(env)
        assert settings.sources_file and settings.mappings_file
        user = interpolate(postgres["POSTGRES_USER"])
        password = interpolate(postgres["POSTGRES_PASSWORD"])
        database = postgres["POSTGRES_DB"]
        assert settings.database_url == (
            f"postgresql+psycopg://{user}:{password}@postgres:5432/{database}"
        )
        assert settings.elms_url == "http://sandbox:8081/demo/backend"
        assert settings.sources_file.startswith("/app/deploy/")
        assert (ROOT / settings.sources_file.removeprefix("/app/")).is_file()
        assert (ROOT / settings.mappings_file.removeprefix("/app/")).is_file()

    sandbox_command = services["sandbox"]["command"]
    assert sandbox_command[sandbox_command.index("--port") + 1] == "8081"


def test_compose_publishes_one_host_port_per_web_replica_to_the_web_port() -> None:
    web = load_compose()["services"]["web"]
    (mapping,) = web["ports"]
    host_ports, container_port = mapping.rsplit(":", 1)
    low, high = host_ports.rsplit(":", 1)[1].split("-")

    assert container_port == dockerfile_env()["BRIDGE_PORT"]
    assert int(high) - int(low) + 1 == web["deploy"]["replicas"]


def test_k8s_manifests_hold_the_expected_objects() -> None:
    documents = load_k8s_documents()
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in documents)

    assert kinds == [
        ("ConfigMap", "bridge-config"),
        ("ConfigMap", "bridge-files"),
        ("Deployment", "bridge-web"),
        ("Deployment", "bridge-worker"),
        ("Job", "bridge-migrate"),
        ("Secret", "bridge-secrets"),
        ("Service", "bridge-web"),
    ]


def test_k8s_workloads_run_existing_commands_as_the_image_user() -> None:
    documents = load_k8s_documents()
    workloads = k8s_objects(documents, "Deployment") | k8s_objects(documents, "Job")
    entrypoint = dockerfile_exec_form("ENTRYPOINT")
    uid_match = re.search(r"--uid (\d+)", DOCKERFILE.read_text())
    assert uid_match
    uid = int(uid_match.group(1))
    commands = {}

    for name, workload in workloads.items():
        spec = pod_spec(workload)
        (container,) = spec["containers"]
        commands[name] = container_argv(container, entrypoint)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == uid

    assert bridge_command_path(commands["bridge-migrate"]) == [
        "db",
        "upgrade",
    ]
    assert bridge_command_path(commands["bridge-worker"]) == ["worker"]
    assert commands["bridge-web"] == [
        "gunicorn",
        "-c",
        str(GUNICORN_CONF.relative_to(ROOT)),
        APP_SPEC,
    ]


def test_k8s_deployment_selectors_match_their_pod_labels() -> None:
    for deployment in k8s_objects(load_k8s_documents(), "Deployment").values():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


def test_k8s_web_probes_and_service_reach_the_configured_port() -> None:
    documents = load_k8s_documents()
    config = k8s_objects(documents, "ConfigMap")["bridge-config"]["data"]
    web = k8s_objects(documents, "Deployment")["bridge-web"]
    service = k8s_objects(documents, "Service")["bridge-web"]
    (container,) = pod_spec(web)["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert ports == {"http": int(config["BRIDGE_PORT"])}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    readiness = urlsplit(container["readinessProbe"]["httpGet"]["path"])
    assert readiness.path == "/readyz"
    asked = parse_qs(readiness.query)["check"][0].split(",")
    assert asked == ["database", "migrations"]
    assert set(asked) <= set(CHECK_NAMES)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in ports
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_k8s_pods_take_config_and_files_from_objects_that_exist() -> None:
    documents = load_k8s_documents()
    config_maps = k8s_objects(documents, "ConfigMap")
    secrets = k8s_objects(documents, "Secret")
    workloads = k8s_objects(documents, "Deployment") | k8s_objects(documents, "Job")

    for name, workload in workloads.items():
        spec = pod_spec(workload)
        for source in spec["containers"][0]["envFrom"]:
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in config_maps, name
            else:
                assert source["secretRef"]["name"] in secrets, name
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, name


def test_k8s_settings_validate_and_their_files_load(tmp_path: Path) -> None:
    documents = load_k8s_documents()
    config_maps = k8s_objects(documents, "ConfigMap")
    secret = k8s_objects(documents, "Secret")["bridge-secrets"]["stringData"]
    env = {**config_maps["bridge-config"]["data"], **secret}
    files = config_maps["bridge-files"]["data"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)

    bridge_env = {k: v for k, v in env.items() if k.startswith("BRIDGE_")}
    settings = load_settings(bridge_env)
    sources = load_sources_file(tmp_path / "sources.yaml", environ=env)
    mappings = load_mappings_file(tmp_path / "mappings.yaml")

    assert settings.port == 8080
    assert settings.sources_file and settings.mappings_file
    assert settings.host == dockerfile_env()["BRIDGE_HOST"]
    assert Path(settings.sources_file).name in files
    assert Path(settings.mappings_file).name in files
    assert Path(settings.sources_file).parent == mount_path("bridge-files")
    assert [source.name for source in sources] == ["storyline"]
    assert len(mappings) == 1


def mount_path(config_map: str) -> Path:
    """Return where the web pod mounts the volume made from ``config_map``."""
    web = k8s_objects(load_k8s_documents(), "Deployment")["bridge-web"]
    spec = pod_spec(web)
    volume = next(
        v["name"] for v in spec["volumes"] if v.get("configMap", {}).get("name")
    )
    mounts = spec["containers"][0]["volumeMounts"]
    return Path(next(m["mountPath"] for m in mounts if m["name"] == volume))


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed")
def test_kustomize_renders_the_manifests_without_the_secret_or_job() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S_DIR)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    kinds = sorted(d["kind"] for d in yaml.safe_load_all(result.stdout))
    assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "Deployment", "Service"]


def test_systemd_units_run_existing_commands() -> None:
    web = unit_exec_lines(SYSTEMD_DIR / "bridge-web.service")
    worker = unit_exec_lines(SYSTEMD_DIR / "bridge-worker.service")

    migrate, gunicorn = web
    assert bridge_command_path(migrate) == ["db", "upgrade"]
    assert Path(gunicorn[0]).name == "gunicorn"
    assert gunicorn[1:] == ["-c", str(GUNICORN_CONF.relative_to(ROOT)), APP_SPEC]
    assert [bridge_command_path(argv) for argv in worker] == [["worker"]]


def test_procfile_commands_exist() -> None:
    for line in (ROOT / "Procfile").read_text().splitlines():
        _, _, command = line.partition(":")
        argv = command.replace("${BRIDGE_SANDBOX_PORT:-8081}", "8081").split()
        assert bridge_command_path(argv)


def test_readme_links_the_operations_guide() -> None:
    assert "(docs/operations.md)" in (ROOT / "README.md").read_text()


def test_operations_guide_commands_and_paths_exist() -> None:
    text = OPERATIONS_DOC.read_text()
    commands = re.findall(r"python -m bridge ([a-z][^\n#&|;>`]*)", text)
    paths = set(re.findall(r"`((?:deploy|docs)/[\w./-]+)`", text))

    assert len(commands) >= 8
    for command in commands:
        args = [word for word in command.split() if not word.startswith(("'", "<"))]
        assert resolve_bridge_command(args), command
    for path in paths | {"Dockerfile", "docker-compose.yml", ".dockerignore"}:
        assert (ROOT / path).exists(), path
