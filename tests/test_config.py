"""Settings: every variable parsed, every mistake reported in one sentence."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import FIELDS, Settings, load_settings, setting_names
from bridge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_apply_when_nothing_is_set():
    settings = load_settings({})

    assert settings.elms_url is None
    assert settings.database_url == "sqlite:///var/bridge.db"
    assert settings.port == 8080
    assert settings.log_format == "text"
    assert settings.max_body_bytes == 1024 * 1024


def test_values_are_parsed_and_normalised():
    settings = load_settings(
        {
            "BRIDGE_ELMS_URL": "https://elms.example.com/acme/backend/",
            "BRIDGE_ELMS_TOKEN": "12345",
            "BRIDGE_ELMS_RETRIES": "5",
            "BRIDGE_ELMS_READ_TIMEOUT": "2.5",
            "BRIDGE_LOG_LEVEL": "debug",
            "BRIDGE_LOG_FORMAT": "JSON",
        }
    )

    assert settings.elms_url == "https://elms.example.com/acme/backend"
    assert settings.elms_retries == 5
    assert settings.elms_read_timeout == 2.5
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BRIDGE_ELMS_URL", "ftp://x", "must be an http(s) URL with a host"),
        ("BRIDGE_ELMS_URL", "not a url", "must be an http(s) URL with a host"),
        ("BRIDGE_PORT", "eighty", "must be a whole number; got 'eighty'"),
        ("BRIDGE_PORT", "70000", "must be between 1 and 65535; got 70000"),
        ("BRIDGE_ELMS_RETRIES", "-1", "must be between 0 and 20; got -1"),
        ("BRIDGE_ELMS_READ_TIMEOUT", "fast", "must be a number; got 'fast'"),
        ("BRIDGE_LOG_LEVEL", "LOUD", "must be one of DEBUG, INFO, WARNING"),
        ("BRIDGE_LOG_FORMAT", "xml", "must be one of text, json; got 'xml'"),
        ("BRIDGE_DATABASE_URL", "mysql://x", "must be a sqlite:/// or postgresql"),
        ("BRIDGE_MAX_BODY_BYTES", "10", "must be between 1024 and"),
        ("BRIDGE_SOURCES_FILE", "   ", "must not be empty"),
        ("BRIDGE_HOST", "999.1.1.1", "must be an IP address or a host name"),
        ("BRIDGE_SANDBOX_SITE", "a/b", "must be 1 to 64 letters, digits, . _ or -"),
        ("BRIDGE_ALLOW_PRIVATE_TARGETS", "10.0.0.0/8,nope", "'nope' is not an IP"),
        ("BRIDGE_DELIVERY_SCHEDULE", "0,5,soon", "must be numbers of seconds"),
    ],
)
def test_each_bad_variable_gives_its_message(variable, value, message):
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})

    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith(f"{variable}: ")
    assert message in problem


def test_every_mistake_is_reported_at_once():
    environ = {
        "BRIDGE_PORT": "x",
        "BRIDGE_LOG_FORMAT": "yaml",
        "BRIDGE_ELMS_URL": "https://elms.example.com/a/backend",
        "BRIDGE_LOG_LEVLE": "INFO",
    }

    with pytest.raises(ConfigError) as caught:
        load_settings(environ)

    variables = sorted(p.split(":")[0] for p in caught.value.problems)
    assert variables == [
        "BRIDGE_ELMS_TOKEN",
        "BRIDGE_LOG_FORMAT",
        "BRIDGE_LOG_LEVLE",
        "BRIDGE_PORT",
    ]


def test_settings_repr_masks_secrets():
    settings = load_settings(
        {"BRIDGE_ELMS_URL": "http://h/s/backend", "BRIDGE_ELMS_TOKEN": "topsecret"}
    )

    assert "topsecret" not in repr(settings)
    assert "elms_token='***'" in repr(settings)


def test_every_field_is_a_settings_attribute():
    names = {spec.name for spec in FIELDS}

    assert names == set(Settings.__dataclass_fields__)


def generated(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "settings", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_readme_and_env_example_match_the_settings_table():
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "deploy" / ".env.example").read_text()

    assert example == generated()
    assert generated("--format", "markdown").strip() in readme
    for name in setting_names():
        assert re.search(rf"^#{name}=", example, re.M), name


def test_cli_prints_one_line_per_mistake_and_exits_2():
    env = {"PATH": "/usr/bin:/bin", "BRIDGE_PORT": "x", "BRIDGE_LOG_FORMAT": "xml"}

    result = subprocess.run(
        [sys.executable, "-m", "bridge", "elms", "users", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "config error: BRIDGE_PORT: must be a whole number; got 'x'",
        "config error: BRIDGE_LOG_FORMAT: must be one of text, json; got 'xml'",
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {"BRIDGE_PORT": "8081"},
            "BRIDGE_SANDBOX_PORT: must differ from BRIDGE_PORT (8081)",
        ),
        (
            {"BRIDGE_DISPATCH_BACKOFF": "10", "BRIDGE_DISPATCH_BACKOFF_MAX": "2"},
            "BRIDGE_DISPATCH_BACKOFF_MAX: must be at least "
            "BRIDGE_DISPATCH_BACKOFF (10)",
        ),
    ],
)
def test_settings_that_clash_are_refused_together(environ, problem):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)

    assert caught.value.problems == [problem]
