"""``python -m bridge subscriptions`` run as a user runs it, on a real SQLite file.

Targets are loopback literals let through by BRIDGE_ALLOW_PRIVATE_TARGETS,
so no test asks DNS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from bridge.signing import check_secret, delivery_headers
from bridge.store import create_store, migrate
from bridge.store.subscription_queries import get_subscription, signing_secrets

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "bridge"]
LOOPBACK = "127.0.0.0/8"
TARGET = "http://127.0.0.1:9/progress"


@pytest.fixture
def database(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    migrate.upgrade(url)
    return url


def bridge(
    database: str, *args: str, allow: str | None = LOOPBACK
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env["BRIDGE_DATABASE_URL"] = database
    if allow is not None:
        env["BRIDGE_ALLOW_PRIVATE_TARGETS"] = allow
    return subprocess.run(
        [*COMMAND, "subscriptions", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def answer(result: subprocess.CompletedProcess[str]):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def stored(database: str, subscription_id: str):
    store = create_store(database)
    with store.session(write=False) as session:
        row = get_subscription(session, subscription_id)
    store.dispose()
    return row


def test_add_prints_the_secret_once_and_list_and_show_mask_it(database):
    added = bridge(
        database,
        "add",
        TARGET,
        "--type",
        "progress.completed",
        "--type",
        "progress.started",
        "--learning-id",
        "101",
        "--group",
        "g-7",
        "--description",
        "HR dashboard",
    )

    subscription = answer(added)["subscription"]
    secret = check_secret(subscription["secret"])
    assert subscription["url"] == TARGET
    assert subscription["event_types"] == ["progress.completed", "progress.started"]
    assert subscription["learning_ids"] == ["101"]
    assert subscription["user_group_id"] == "g-7"
    assert secret not in added.stderr

    listed = bridge(database, "list")
    shown = bridge(database, "show", subscription["id"])
    assert [row["id"] for row in answer(listed)] == [subscription["id"]]
    assert answer(shown)["secret"] == "whsec_****"
    for result in (listed, shown):
        assert secret not in result.stdout + result.stderr


def test_add_without_types_subscribes_to_every_type_and_may_start_disabled(
    database,
):
    subscription = answer(bridge(database, "add", TARGET, "--disabled"))

    assert subscription["subscription"]["event_types"] == ["*"]
    assert subscription["subscription"]["enabled"] is False
    assert answer(bridge(database, "list", "--enabled")) == []
    assert len(answer(bridge(database, "list", "--disabled"))) == 1


@pytest.mark.parametrize(
    ("url", "allow", "reason"),
    [
        ("http://127.0.0.1/hook", None, "127.0.0.1 is loopback"),
        ("http://10.0.0.5/hook", LOOPBACK, "10.0.0.5 is private"),
        ("http://169.254.169.254/latest", LOOPBACK, "link-local"),
        ("http://[::1]/hook", LOOPBACK, "::1 is loopback"),
        ("ftp://127.0.0.1/hook", LOOPBACK, "scheme must be http or https"),
        ("http://[::1/hook", LOOPBACK, "the URL does not parse"),
    ],
)
def test_add_refuses_unsafe_urls_with_one_line_and_exit_2(database, url, allow, reason):
    result = bridge(database, "add", url, allow=allow)

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: unsafe URL:")
    assert reason in lines[0]
    assert answer(bridge(database, "list")) == []


def test_add_refuses_unknown_types_and_bad_secrets_with_exit_2(database):
    unknown = bridge(database, "add", TARGET, "--type", "progress.finished")
    bad_secret = bridge(database, "add", TARGET, "--secret", "whsec_c2hvcnQ=")

    assert unknown.returncode == 2
    assert "unknown event type 'progress.finished'" in unknown.stderr
    assert bad_secret.returncode == 2
    assert "24 to 64 bytes" in bad_secret.stderr
    assert answer(bridge(database, "list")) == []


def test_update_changes_fields_checks_the_url_and_re_enables(database):
    subscription_id = answer(bridge(database, "add", TARGET, "--disabled"))[
        "subscription"
    ]["id"]

    unsafe = bridge(database, "update", subscription_id, "--url", "http://10.1.1.1/")
    assert unsafe.returncode == 2
    assert "10.1.1.1 is private" in unsafe.stderr

    updated = answer(
        bridge(
            database,
            "update",
            subscription_id,
            "--url",
            "http://127.0.0.2/v2",
            "--type",
            "progress.score_changed",
            "--learning-id",
            "55",
            "--enable",
        )
    )
    assert updated["url"] == "http://127.0.0.2/v2"
    assert updated["event_types"] == ["progress.score_changed"]
    assert updated["learning_ids"] == ["55"]
    assert updated["enabled"] is True
    assert updated["disabled_reason"] is None

    cleared = answer(bridge(database, "update", subscription_id, "--all-learnings"))
    assert cleared["learning_ids"] is None


def test_update_with_nothing_to_change_or_an_unknown_id_fails(database):
    subscription_id = answer(bridge(database, "add", TARGET))["subscription"]["id"]

    nothing = bridge(database, "update", subscription_id)
    missing = bridge(database, "update", "no-such-id", "--enable")

    assert nothing.returncode == 2
    assert "nothing to change" in nothing.stderr
    assert missing.returncode == 1
    assert "no subscription 'no-such-id'" in missing.stderr


def test_rotate_secret_prints_the_new_one_and_both_verify_in_grace(database):
    added = answer(bridge(database, "add", TARGET))["subscription"]
    old = added["secret"]

    rotated = bridge(database, "rotate-secret", added["id"], "--grace", "600")

    new = check_secret(answer(rotated)["subscription"]["secret"])
    assert new != old
    assert old not in rotated.stdout + rotated.stderr
    shown = answer(bridge(database, "show", added["id"]))
    assert shown["previous_secret"] == "whsec_****"
    assert shown["previous_secret_expires_at"] is not None

    row = stored(database, added["id"])
    body = b'{"type":"progress.completed"}'
    sent_at = row.updated_at
    headers = delivery_headers(signing_secrets(row, sent_at), "msg_1", sent_at, body)
    for secret in (new, old):
        Webhook(secret).verify(body, headers)


def test_remove_deletes_and_reports_an_unknown_id(database):
    subscription_id = answer(bridge(database, "add", TARGET))["subscription"]["id"]

    removed = bridge(database, "remove", subscription_id)
    again = bridge(database, "remove", subscription_id)

    assert answer(removed) == {"removed": subscription_id}
    assert again.returncode == 1
    assert f"no subscription {subscription_id!r}" in again.stderr
    assert answer(bridge(database, "list")) == []


def test_a_password_in_the_url_is_shown_on_add_and_masked_after(database):
    url = "http://hooks:pa55word@127.0.0.1:9/elms"
    added = answer(bridge(database, "add", url, allow=LOOPBACK))["subscription"]

    listed = bridge(database, "list")
    shown = bridge(database, "show", added["id"])

    assert added["url"] == url
    assert [row["url"] for row in answer(listed)] == [
        "http://hooks:****@127.0.0.1:9/elms"
    ]
    assert answer(shown)["url"] == "http://hooks:****@127.0.0.1:9/elms"
    for result in (listed, shown):
        assert "pa55word" not in result.stdout + result.stderr
