"""``python -m bridge sources ...`` run as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.clitools import bridge, clean_env, error_lines

FILE_PASSWORD = "file-pw-5521"
ENV_PASSWORD = "env-pw-8830"
ADDED_PASSWORD = "added-pw-4417"
HMAC_SECRET = "hmac-secret-9902"
AUTH_TYPE_SENTENCE = (
    "error: {name}.auth.type: must be one of none, hmac, standard-webhooks, "
    'basic, bearer, scorm-cloud-form; got "{given}"'
)


@pytest.fixture
def env(tmp_path):
    """Return an environment with a fresh database and no sources file."""
    return clean_env(BRIDGE_DATABASE_URL=f"sqlite:///{tmp_path}/x.db")


@pytest.fixture
def file_env(tmp_path, env):
    """Return an environment whose sources file defines two sources."""
    sources = [
        {
            "name": "storyline",
            "format": "xapi",
            "auth": {"type": "basic", "username": "player", "password": FILE_PASSWORD},
        },
        {
            "name": "from-env",
            "format": "xapi",
            "auth": {"type": "bearer", "token_env": "BENCH_TOKEN_VAR"},
        },
    ]
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": sources}))
    return {**env, "BRIDGE_SOURCES_FILE": str(path), "BENCH_TOKEN_VAR": ENV_PASSWORD}


def add_basic(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return bridge(
        "sources",
        "add",
        name,
        "--format",
        "xapi",
        "--auth-type",
        "basic",
        "--auth",
        "username=player",
        "--auth",
        f"password={ADDED_PASSWORD}",
        env=env,
    )


def test_add_prints_the_source_with_its_options_and_the_password_masked(env):
    result = bridge(
        "sources",
        "add",
        "course-a",
        "--format",
        "cmi5",
        "--auth-type",
        "basic",
        "--auth",
        "username=player",
        "--auth",
        f"password={ADDED_PASSWORD}",
        "--option",
        "trust_lms_satisfied=false",
        "--option",
        "default_move_on=CompletedAndPassed",
        "--max-body-bytes",
        "4096",
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "name": "course-a",
        "format": "cmi5",
        "auth": {"type": "basic", "username": "player", "password": "***"},
        "options": {
            "trust_lms_satisfied": False,
            "default_move_on": "CompletedAndPassed",
        },
        "max_body_bytes": 4096,
    }
    assert ADDED_PASSWORD not in result.stdout + result.stderr


def test_add_hmac_source_masks_the_secret_and_keeps_typed_auth_fields(env):
    result = bridge(
        "sources",
        "add",
        "signed",
        "--format",
        "xapi",
        "--auth-type",
        "hmac",
        "--auth",
        f"secret={HMAC_SECRET}",
        "--auth",
        "prefix=sha256=",
        "--auth",
        "tolerance_seconds=60",
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["auth"] == {
        "type": "hmac",
        "secret": "***",
        "header": "X-Signature",
        "encoding": "hex",
        "prefix": "sha256=",
        "timestamp_header": "",
        "tolerance_seconds": 60,
    }
    assert HMAC_SECRET not in result.stdout + result.stderr


def test_list_shows_file_sources_first_then_database_sources(file_env):
    assert add_basic("added-b", file_env).returncode == 0
    assert add_basic("added-a", file_env).returncode == 0

    result = bridge("sources", "list", env=file_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"name": "storyline", "format": "xapi", "auth": "basic", "defined_in": "file"},
        {"name": "from-env", "format": "xapi", "auth": "bearer", "defined_in": "file"},
        {
            "name": "added-a",
            "format": "xapi",
            "auth": "basic",
            "defined_in": "database",
        },
        {
            "name": "added-b",
            "format": "xapi",
            "auth": "basic",
            "defined_in": "database",
        },
    ]


@pytest.mark.parametrize(
    ("name", "secret", "auth"),
    [
        (
            "storyline",
            FILE_PASSWORD,
            {"type": "basic", "username": "player", "password": "***"},
        ),
        (
            "from-env",
            ENV_PASSWORD,
            {"type": "bearer", "token_env": "BENCH_TOKEN_VAR"},
        ),
        (
            "added",
            ADDED_PASSWORD,
            {"type": "basic", "username": "player", "password": "***"},
        ),
    ],
)
def test_show_never_prints_a_secret_of_a_file_or_database_source(
    file_env, name, secret, auth
):
    assert add_basic("added", file_env).returncode == 0

    result = bridge("sources", "show", name, env=file_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["auth"] == auth
    assert secret not in result.stdout
    assert secret not in result.stderr


def test_show_of_an_unknown_source_exits_1_with_one_error_line(env):
    result = bridge("sources", "show", "nowhere", env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert error_lines(result) == ["error: no source named 'nowhere'"]


def test_add_refuses_a_name_the_sources_file_defines(file_env):
    result = add_basic("storyline", file_env)
    listed = json.loads(bridge("sources", "list", env=file_env).stdout)

    assert result.returncode == 1
    assert result.stdout == ""
    assert error_lines(result) == [
        "error: source 'storyline' is defined in the sources file; edit it there"
    ]
    assert [row["defined_in"] for row in listed] == ["file", "file"]


def test_add_refuses_a_duplicate_name_with_exit_1_and_one_error_line(env):
    first = add_basic("twice", env)

    second = add_basic("twice", env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 1
    assert second.stdout == ""
    assert error_lines(second) == ["error: source 'twice' exists already"]


def test_failed_add_writes_only_the_error_line_to_stderr(env):
    assert add_basic("twice", env).returncode == 0

    second = add_basic("twice", env)

    assert second.stderr.splitlines() == ["error: source 'twice' exists already"]


def test_add_with_an_unknown_auth_type_exits_2_with_the_sentence(env):
    result = bridge(
        "sources", "add", "odd", "--format", "xapi", "--auth-type", "bogus", env=env
    )
    shown = bridge("sources", "show", "odd", env=env)

    assert result.returncode == 2
    assert result.stdout == ""
    assert error_lines(result) == [AUTH_TYPE_SENTENCE.format(name="odd", given="bogus")]
    assert shown.returncode == 1


def test_add_without_a_required_secret_names_the_missing_key(env):
    result = bridge(
        "sources",
        "add",
        "no-pw",
        "--format",
        "xapi",
        "--auth-type",
        "basic",
        "--auth",
        "username=player",
        env=env,
    )

    assert result.returncode == 2
    assert error_lines(result) == [
        "error: no-pw.auth.password: is required (or password_env naming an "
        "environment variable that holds it)"
    ]


def test_add_refuses_an_option_pair_without_an_equals_sign(env):
    result = bridge(
        "sources",
        "add",
        "bad-pair",
        "--format",
        "xapi",
        "--auth-type",
        "none",
        "--option",
        "failed_policy",
        env=env,
    )

    assert result.returncode == 2
    assert "'failed_policy' is not KEY=VALUE" in result.stderr


def test_add_keeps_a_numeric_password_as_text(env):
    result = bridge(
        "sources",
        "add",
        "pin",
        "--format",
        "xapi",
        "--auth-type",
        "basic",
        "--auth",
        "username=player",
        "--auth",
        "password=12345",
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["auth"]["password"] == "***"


def test_remove_deletes_a_database_source(env):
    assert add_basic("short-lived", env).returncode == 0

    removed = bridge("sources", "remove", "short-lived", env=env)
    shown = bridge("sources", "show", "short-lived", env=env)
    again = bridge("sources", "remove", "short-lived", env=env)

    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout) == {"removed": "short-lived"}
    assert shown.returncode == 1
    assert error_lines(shown) == ["error: no source named 'short-lived'"]
    assert again.returncode == 1
    assert error_lines(again) == [
        "error: no source named 'short-lived' in the database"
    ]


def test_remove_refuses_a_file_source(file_env):
    result = bridge("sources", "remove", "storyline", env=file_env)
    shown = bridge("sources", "show", "storyline", env=file_env)

    assert result.returncode == 1
    assert error_lines(result) == [
        "error: source 'storyline' is defined in the sources file; edit it there"
    ]
    assert shown.returncode == 0
