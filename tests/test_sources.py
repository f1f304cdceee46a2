"""Tests of source definitions: loading, validation, masking and storage."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bridge.auth import AuthSpec
from bridge.errors import ConfigError
from bridge.sources import Source, load_sources_file, validate_source

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENVIRON = {"HOOK_SECRET": "from-the-environment", "LMS_TOKEN": "tok-env"}

VALID_YAML = """\
sources:
  - name: storyline
    format: xapi
    auth:
      type: basic
      username: player
      password: s3cret
    options:
      completion_verbs: [completed, passed]
  - name: cloud-1
    format: scorm-cloud
    auth:
      type: scorm-cloud-form
      username: cloud
      password_env: HOOK_SECRET
    max_body_bytes: 2048
  - name: h5p_site
    format: h5p
    auth:
      type: hmac
      secret: hmac-key
      header: X-Hub-Signature-256
      encoding: base64
      prefix: "sha256="
      timestamp_header: X-Timestamp
      tolerance_seconds: 120
      algorithm: sha256
  - name: relay
    format: generic
    auth:
      type: standard-webhooks
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  - name: lti
    format: lti-ags
    auth: {type: bearer, token_env: LMS_TOKEN}
  - name: open
    format: cmi5
    auth: {type: none}
"""

VALID_TOML = """\
[[sources]]
name = "storyline"
format = "xapi"
options = { completion_verbs = ["completed", "passed"] }

[sources.auth]
type = "basic"
username = "player"
password = "s3cret"

[[sources]]
name = "h5p_site"
format = "h5p"
max_body_bytes = 4096

[sources.auth]
type = "hmac"
secret_env = "HOOK_SECRET"
"""

STORYLINE = Source(
    name="storyline",
    format="xapi",
    auth=AuthSpec(type="basic", username="player", password="s3cret"),
    options={"completion_verbs": ["completed", "passed"]},
    max_body_bytes=1024 * 1024,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_sources_file(path, environ=kwargs.pop("environ", ENVIRON), **kwargs)
    return caught.value.problems


def one_source(auth: str, extra: str = "") -> str:
    """Return a YAML file with one source whose auth block is ``auth``."""
    return f"sources:\n  - name: demo\n    format: xapi\n{auth}{extra}"


# --- valid files -------------------------------------------------------------


def test_valid_yaml_loads_every_source_with_defaults_and_env_secrets(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "sources.yaml", VALID_YAML)

    sources = load_sources_file(path, environ=ENVIRON)

    assert sources == [
        STORYLINE,
        Source(
            name="cloud-1",
            format="scorm-cloud",
            auth=AuthSpec(
                type="scorm-cloud-form",
                username="cloud",
                password="from-the-environment",
                env={"password": "HOOK_SECRET"},
            ),
            max_body_bytes=2048,
        ),
        Source(
            name="h5p_site",
            format="h5p",
            auth=AuthSpec(
                type="hmac",
                secret="hmac-key",
                header="X-Hub-Signature-256",
                encoding="base64",
                prefix="sha256=",
                timestamp_header="X-Timestamp",
                tolerance_seconds=120,
            ),
        ),
        Source(
            name="relay",
            format="generic",
            auth=AuthSpec(type="standard-webhooks", secret=WHSEC),
        ),
        Source(
            name="lti",
            format="lti-ags",
            auth=AuthSpec(type="bearer", token="tok-env", env={"token": "LMS_TOKEN"}),
        ),
        Source(name="open", format="cmi5", auth=AuthSpec(type="none")),
    ]


def test_valid_toml_loads_the_same_shapes(tmp_path: Path) -> None:
    path = write(tmp_path, "sources.toml", VALID_TOML)

    sources = load_sources_file(path, environ=ENVIRON)

    assert sources == [
        STORYLINE,
        Source(
            name="h5p_site",
            format="h5p",
            auth=AuthSpec(
                type="hmac",
                secret="from-the-environment",
                env={"secret": "HOOK_SECRET"},
            ),
            max_body_bytes=4096,
        ),
    ]
    assert sources[1].auth.header == "X-Signature"
    assert sources[1].auth.encoding == "hex"
    assert sources[1].auth.tolerance_seconds == 300


def test_env_secret_is_read_from_os_environ_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "tok-live")
    path = write(
        tmp_path,
        "s.yml",
        one_source("    auth: {type: bearer, token_env: BRIDGE_TEST_TOKEN}\n"),
    )

    [source] = load_sources_file(path)

    assert source.auth.token == "tok-live"


def test_empty_sources_list_loads_no_sources(tmp_path: Path) -> None:
    path = write(tmp_path, "sources.yaml", "sources: []\n")

    assert load_sources_file(path) == []


# --- one sentence per mistake -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "sources:\n  - name: demo\n    format: tincan\n    auth: {type: none}\n",
            "sources[0].format: must be one of xapi, cmi5, scorm-cloud, lti-ags, "
            'scorm-runtime, h5p, generic; got "tincan"',
        ),
        (
            "sources:\n  - name: demo\n    format: xapi\n",
            "sources[0].auth: is required; write `type: none` to accept anyone",
        ),
        (
            one_source("    auth: {username: a, password: b}\n"),
            "sources[0].auth.type: is required; write `none` to accept anyone",
        ),
        (
            one_source("    auth: {type: sha1}\n"),
            "sources[0].auth.type: must be one of none, hmac, standard-webhooks, "
            'basic, bearer, scorm-cloud-form; got "sha1"',
        ),
        (
            one_source("    auth: basic\n"),
            "sources[0].auth: must be a mapping with a `type`",
        ),
        (
            one_source("    auth: {type: hmac}\n"),
            "sources[0].auth.secret: is required (or secret_env naming an "
            "environment variable that holds it)",
        ),
        (
            one_source("    auth: {type: basic, password: x}\n"),
            "sources[0].auth.username: is required",
        ),
        (
            one_source("    auth: {type: bearer, token: ''}\n"),
            "sources[0].auth.token: must not be empty",
        ),
        (
            one_source("    auth: {type: bearer, token: 12345}\n"),
            "sources[0].auth.token: must be text; quote the value",
        ),
        (
            one_source("    auth: {type: bearer, token: a, token_env: B}\n"),
            "sources[0].auth: give token or token_env, not both",
        ),
        (
            one_source("    auth: {type: none}\n", "    optoins: {}\n"),
            "sources[0].optoins: is not a key of a source; expected auth, format, "
            "max_body_bytes, name, options",
        ),
        (
            one_source("    auth: {type: bearer, token: t, secret: s}\n"),
            "sources[0].auth.secret: is not a key of bearer auth; expected token, "
            "token_env",
        ),
        (
            one_source("    auth: {type: none, token: t}\n"),
            "sources[0].auth.token: is not a key of none auth; expected only type",
        ),
        (
            "sources:\n  - name: Story Line\n    format: xapi\n"
            "    auth: {type: none}\n",
            "sources[0].name: must be 1 to 64 lower-case letters, digits, _ or -, "
            'starting with a letter or digit; got "Story Line"',
        ),
        (
            "sources:\n  - name: " + "a" * 65 + "\n    format: xapi\n"
            "    auth: {type: none}\n",
            "sources[0].name: must be 1 to 64 lower-case letters, digits, _ or -, "
            f'starting with a letter or digit; got "{"a" * 65}"',
        ),
        (
            one_source("    auth: {type: none}\n", "    max_body_bytes: 1MB\n"),
            "sources[0].max_body_bytes: must be a whole number from 1 to "
            '67108864; got "1MB"',
        ),
        (
            one_source("    auth: {type: none}\n", "    max_body_bytes: 0\n"),
            "sources[0].max_body_bytes: must be a whole number from 1 to "
            '67108864; got "0"',
        ),
        (
            one_source("    auth: {type: none}\n", "    max_body_bytes: 1.5\n"),
            "sources[0].max_body_bytes: must be a whole number from 1 to "
            '67108864; got "1.5"',
        ),
        (
            one_source("    auth: {type: none}\n", "    options: [a]\n"),
            "sources[0].options: must be a mapping",
        ),
        (
            one_source("    auth: {type: hmac, secret: s, encoding: hexx}\n"),
            'sources[0].auth.encoding: must be one of hex, base64; got "hexx"',
        ),
        (
            one_source("    auth: {type: hmac, secret: s, algorithm: sha1}\n"),
            'sources[0].auth.algorithm: must be one of sha256; got "sha1"',
        ),
        (
            one_source("    auth: {type: hmac, secret: s, tolerance_seconds: -1}\n"),
            "sources[0].auth.tolerance_seconds: must be a whole number from 1 to "
            '86400; got "-1"',
        ),
        (
            one_source("    auth: {type: standard-webhooks, secret: s3cret}\n"),
            "sources[0].auth.secret: must be a whsec_ secret followed by base64 "
            "key bytes",
        ),
        (
            one_source("    auth: {type: bearer, token_env: BRIDGE_UNSET_VAR}\n"),
            'sources[0].auth.token_env: environment variable "BRIDGE_UNSET_VAR" '
            "is not set or is empty",
        ),
        (
            "sources:\n  - demo\n",
            "sources[0]: must be a mapping of source keys",
        ),
        ("", "the file is empty; expected a `sources` list"),
        ("sources: {}\n", "sources: is required and must be a list of sources"),
    ],
    ids=[
        "wrong-format",
        "missing-auth",
        "auth-without-type",
        "unknown-auth-type",
        "auth-not-mapping",
        "missing-secret",
        "missing-username",
        "empty-token",
        "number-token",
        "secret-and-env",
        "unknown-key",
        "key-of-other-type",
        "key-on-none",
        "bad-name",
        "long-name",
        "max-body-text",
        "max-body-zero",
        "max-body-float",
        "options-list",
        "bad-encoding",
        "bad-algorithm",
        "bad-tolerance",
        "bad-whsec",
        "env-unset",
        "entry-not-mapping",
        "empty-file",
        "sources-not-list",
    ],
)
def test_each_mistake_is_one_sentence_naming_file_and_place(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, "sources.yaml", text)

    found = problems_of(path)

    assert found == [f"{path}: {problem}"]


def test_top_level_typo_is_named_and_sources_reported_missing(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "sources.yaml", "source:\n  - name: demo\n")

    assert problems_of(path) == [
        f"{path}: source: is not a known key; expected `sources`",
        f"{path}: sources: is required and must be a list of sources",
    ]


def test_duplicate_names_are_reported_once_with_the_first_place(
    tmp_path: Path,
) -> None:
    source = "  - name: demo\n    format: xapi\n    auth: {type: none}\n"
    path = write(tmp_path, "sources.yaml", "sources:\n" + source * 3)

    assert problems_of(path) == [
        f'{path}: sources[1].name: "demo" is already used by sources[0]; '
        "names must be unique",
        f'{path}: sources[2].name: "demo" is already used by sources[0]; '
        "names must be unique",
    ]


def test_malformed_yaml_is_one_problem_naming_the_line(tmp_path: Path) -> None:
    text = "sources:\n  - name: demo\n    format: [xapi\n  auth: x\n"
    path = write(tmp_path, "sources.yaml", text)

    assert problems_of(path) == [
        f"{path}: line 4: not valid YAML: expected ',' or ']', but got ':'"
    ]


def test_malformed_toml_is_one_problem_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sources.toml", '[[sources]]\nname = "a"\nformat =\n')

    assert problems_of(path) == [f"{path}: line 3: not valid TOML: Invalid value"]


def test_unreadable_or_unknown_files_are_one_problem(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    json_file = write(tmp_path, "sources.json", "{}")

    assert problems_of(missing)[0].startswith(f"{missing}: cannot be read: ")
    assert problems_of(json_file) == [
        f"{json_file}: the file must end in .yaml, .yml or .toml; got '.json'"
    ]


def test_several_mistakes_are_all_listed_in_file_order(tmp_path: Path) -> None:
    text = """\
    sources:
      - name: Bad
        format: xapi
        auth: {type: basic, username: u, password_env: BRIDGE_UNSET_VAR}
        colour: red
      - name: ok
        format: nope
        auth: {type: hmac, secret: s, encoding: b64}
      - name: ok
        format: cmi5
    """
    path = write(tmp_path, "sources.yaml", text)

    assert problems_of(path) == [
        f"{path}: sources[0].colour: is not a key of a source; expected auth, "
        "format, max_body_bytes, name, options",
        f"{path}: sources[0].name: must be 1 to 64 lower-case letters, digits, "
        '_ or -, starting with a letter or digit; got "Bad"',
        f"{path}: sources[0].auth.password_env: environment variable "
        '"BRIDGE_UNSET_VAR" is not set or is empty',
        f"{path}: sources[1].format: must be one of xapi, cmi5, scorm-cloud, "
        'lti-ags, scorm-runtime, h5p, generic; got "nope"',
        f'{path}: sources[1].auth.encoding: must be one of hex, base64; got "b64"',
        f"{path}: sources[2].auth: is required; write `type: none` to accept anyone",
        f'{path}: sources[2].name: "ok" is already used by sources[1]; names '
        "must be unique",
    ]


def test_toml_mistakes_use_the_same_sentences(tmp_path: Path) -> None:
    text = '[[sources]]\nname = "demo"\nformat = "xapi"\n[sources.auth]\n'
    path = write(tmp_path, "sources.toml", text + 'type = "sha1"\n')

    assert problems_of(path) == [
        f"{path}: sources[0].auth.type: must be one of none, hmac, "
        'standard-webhooks, basic, bearer, scorm-cloud-form; got "sha1"'
    ]


# --- the adapter's options --------------------------------------------------


def strict_factory(format_name: str, options: dict[str, Any]) -> object:
    """Stand in for the lead's factory: xapi sources need a `verbs` list."""
    if format_name == "xapi" and not isinstance(options.get("verbs"), list):
        raise ConfigError(["verbs: must be a list", "is needed by xapi"])
    return object()


def test_adapter_problems_are_merged_under_the_source_place(tmp_path: Path) -> None:
    text = one_source("    auth: {type: none}\n", "    options: {verbs: all}\n")
    path = write(tmp_path, "sources.yaml", text)

    assert problems_of(path, adapter_factory=strict_factory) == [
        f"{path}: sources[0].options: verbs: must be a list",
        f"{path}: sources[0].options: is needed by xapi",
    ]


def test_adapter_is_asked_with_format_and_options_of_each_valid_source(
    tmp_path: Path,
) -> None:
    calls = []

    def recording_factory(format_name: str, options: dict[str, Any]) -> object:
        calls.append((format_name, options))
        return object()

    path = write(tmp_path, "sources.yaml", VALID_YAML)
    load_sources_file(path, adapter_factory=recording_factory, environ=ENVIRON)

    assert calls[0] == ("xapi", {"completion_verbs": ["completed", "passed"]})
    assert [format_name for format_name, _ in calls] == [
        "xapi",
        "scorm-cloud",
        "h5p",
        "generic",
        "lti-ags",
        "cmi5",
    ]


# --- validate_source, masking and storage ------------------------------------


def test_validate_source_builds_one_source_or_lists_its_problems() -> None:
    data = {
        "name": "storyline",
        "format": "xapi",
        "auth": {"type": "basic", "username": "player", "password": "s3cret"},
        "options": {"completion_verbs": ["completed", "passed"]},
    }

    assert validate_source(data) == STORYLINE
    with pytest.raises(ConfigError) as caught:
        validate_source({"name": "x", "format": "xapi", "auth": {"type": "bearer"}})
    assert caught.value.problems == [
        "source.auth.token: is required (or token_env naming an environment "
        "variable that holds it)"
    ]


def test_public_dict_masks_every_secret_and_keeps_env_names(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "sources.yaml", VALID_YAML)
    sources = load_sources_file(path, environ=ENVIRON)
    shown = json.dumps([source.public_dict() for source in sources])

    for secret in ("s3cret", "from-the-environment", "hmac-key", WHSEC, "tok-env"):
        assert secret not in shown
    assert sources[0].public_dict() == {
        "name": "storyline",
        "format": "xapi",
        "auth": {"type": "basic", "username": "player", "password": "***"},
        "options": {"completion_verbs": ["completed", "passed"]},
        "max_body_bytes": 1048576,
    }
    assert sources[1].public_dict()["auth"] == {
        "type": "scorm-cloud-form",
        "username": "cloud",
        "password_env": "HOOK_SECRET",
    }
    assert sources[3].public_dict()["auth"] == {
        "type": "standard-webhooks",
        "secret": "***",
    }


def test_public_dict_masks_secret_looking_option_keys() -> None:
    source = Source(
        name="lti",
        format="lti-ags",
        auth=AuthSpec(type="none"),
        options={"client_secret": "x", "nested": [{"api_key": "y", "url": "u"}]},
    )

    assert source.public_dict()["options"] == {
        "client_secret": "***",
        "nested": [{"api_key": "***", "url": "u"}],
    }


def test_repr_never_shows_a_secret() -> None:
    auth = AuthSpec(type="hmac", secret="hmac-key")

    assert "hmac-key" not in repr(Source("a", "xapi", auth))


def test_storage_round_trip_keeps_secrets_and_env_references(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "sources.yaml", VALID_YAML)
    sources = load_sources_file(path, environ=ENVIRON)

    rows = [json.loads(json.dumps(source.to_storage())) for source in sources]

    assert [Source.from_storage(row, environ=ENVIRON) for row in rows] == sources
    assert rows[0]["auth"] == {
        "type": "basic",
        "username": "player",
        "password": "s3cret",
    }
    assert rows[1]["auth"] == {
        "type": "scorm-cloud-form",
        "username": "cloud",
        "password_env": "HOOK_SECRET",
    }


def test_stored_env_reference_is_resolved_from_the_given_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LMS_TOKEN", "from-the-process")
    row = {
        "name": "lti",
        "format": "lti-ags",
        "auth": {"type": "bearer", "token_env": "LMS_TOKEN"},
    }

    loaded = Source.from_storage(row, environ={"LMS_TOKEN": "rotated"})

    assert loaded.auth.token == "rotated"
    with pytest.raises(ConfigError) as caught:
        Source.from_storage(row, environ={})
    assert caught.value.problems == [
        'stored source lti.auth.token_env: environment variable "LMS_TOKEN" '
        "is not set or is empty"
    ]
