"""Resolution against a real sandbox over HTTP and a real SQLite store."""

from __future__ import annotations

import hashlib
import threading
from urllib.parse import parse_qs

import pytest
import requests
from flask import Flask, jsonify

from bridge.auth import AuthSpec
from bridge.elms import OpenElmsClient
from bridge.errors import (
    ConfigError,
    ElmsAuthError,
    ElmsShapeError,
    ElmsUnavailableError,
)
from bridge.resolve import Resolution, Resolver
from bridge.resolve_options import resolution_option_problems
from bridge.sources import Source
from bridge.store import create_store, migrate
from bridge.store.mapping_queries import add_mapping, remove_mapping
from tests.servers import serve_wsgi

FIRE_IRI = "https://courses.example.org/fire-safety"
TIMEOUT = 10


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'bridge.db'}"
    migrate.upgrade(url)
    store = create_store(url)
    yield store
    store.dispose()


@pytest.fixture
def client(sandbox):
    client = OpenElmsClient(sandbox.base_url, sandbox.token, retries=0)
    yield client
    client.close()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def resolver(client, store, sandbox, clock):
    return Resolver(client, store, elms_url=sandbox.base_url, clock=clock)


def calls(sandbox, path: str | None = None) -> list[dict]:
    """Return the sandbox's logged calls, only those to ``path`` if given."""
    response = requests.get(f"{sandbox.admin_url}/calls", timeout=TIMEOUT)
    logged = response.json()["calls"]
    return [c for c in logged if path is None or c["path"] == path]


def searches(sandbox) -> list[dict[str, list[str]]]:
    """Return the query of every user search the sandbox received."""
    return [parse_qs(c["query"]) for c in calls(sandbox, "users/") if c["query"]]


def set_faults(sandbox, **changes) -> None:
    response = requests.put(f"{sandbox.admin_url}/faults", json=changes, timeout=10)
    assert response.status_code == 200, response.text


def source(name: str = "lms-one", **options) -> Source:
    return Source(name=name, format="xapi", auth=AuthSpec(type="none"), options=options)


def resolve(
    resolver: Resolver,
    learner: dict[str, str],
    activity: dict[str, str] | None = None,
    src: Source | None = None,
) -> Resolution:
    return resolver.resolve(
        learner=learner,
        activity=activity or {"name": "Fire Safety Awareness"},
        source=src,
    )


def map_activity(store, key: str, learning_id: str, src: str = "*") -> None:
    with store.session() as session:
        add_mapping(session, activity_key=key, learning_id=learning_id, source=src)


# An activity the source's pattern resolves, so no learning list is read.
BY_PATTERN = (
    {"iri": "https://courses.example.org/learning/1"},
    source(activity_pattern=r"/learning/(\d+)$"),
)


def site_root(sandbox) -> str:
    return sandbox.base_url.removesuffix("/backend")


# Learner steps


def test_account_on_the_elms_site_is_the_user_id_without_a_call(resolver, sandbox):
    learner = {"account_home_page": site_root(sandbox), "account_name": "5"}

    result = resolve(resolver, learner)

    assert (result.user_id, result.learning_id, result.reason) == ("5", "1", None)
    assert result.resolved
    assert "learner: explicit id in account_name" in result.steps
    assert calls(sandbox, "users/") == []


def test_account_on_another_port_is_not_the_elms_site(resolver, sandbox):
    port = int(sandbox.base_url.split(":")[2].split("/")[0])
    home = f"http://127.0.0.1:{port + 1}/"
    learner = {"account_home_page": home, "account_name": "5"}

    result = resolve(resolver, learner)

    assert result.user_id is None
    assert "no user with username 5" in result.reason
    assert searches(sandbox) == [{"username": ["5"]}, {"usercode": ["5"]}]


def test_elms_home_pages_option_names_more_elms_sites(resolver, sandbox):
    src = source(elms_home_pages=["https://elms.example.org/"])
    learner = {
        "account_home_page": "HTTPS://ELMS.example.org:443/login",
        "account_name": "11",
    }

    assert resolve(resolver, learner, src=src).user_id == "11"
    assert calls(sandbox, "users/") == []


def test_user_id_is_elms_id_takes_the_user_id_as_is(resolver, sandbox):
    src = source(user_id_is_elms_id=True)

    result = resolve(resolver, {"user_id": "7", "email": "x@example.org"}, src=src)

    assert result.user_id == "7"
    assert calls(sandbox, "users/") == []


def test_learner_field_is_looked_up_as_a_username(resolver, sandbox):
    src = source(learner_field="user_id")

    result = resolve(resolver, {"user_id": "13936749"}, src=src)

    assert result.user_id == "8"
    assert searches(sandbox) == [{"username": ["13936749"]}]


def test_email_finds_the_user_whatever_its_case(resolver, sandbox):
    result = resolve(resolver, {"email": "Learner1@Example.com"})

    assert result.user_id == "2"
    assert result.steps[0] == "learner: found by email"
    assert searches(sandbox) == [{"email": ["Learner1@Example.com"]}]


def test_account_name_is_tried_as_username_after_email(resolver, sandbox):
    learner = {
        "email": "nobody@example.org",
        "account_home_page": "https://lms.example.org",
        "account_name": "5323497",
    }

    result = resolve(resolver, learner)

    assert result.user_id == "9"
    assert searches(sandbox) == [
        {"email": ["nobody@example.org"]},
        {"username": ["5323497"]},
    ]
    assert result.steps[:2] == (
        "learner: no user with email nobody@example.org",
        "learner: found by username",
    )


def test_usercode_is_tried_after_username(resolver, client, sandbox):
    created = client.create_user(
        username="coder", usercode="EMP-77", email="coder@example.org"
    )

    result = resolve(resolver, {"user_id": "EMP-77"})

    assert result.user_id == str(created)
    assert result.steps[:3] == (
        "learner: no email handle",
        "learner: no user with username EMP-77",
        "learner: found by usercode",
    )


def test_mbox_sha1_matches_a_known_users_email(resolver, sandbox):
    digest = hashlib.sha1(
        b"mailto:guest@example.com", usedforsecurity=False
    ).hexdigest()
    other = hashlib.sha1(
        b"mailto:teampb@example.com", usedforsecurity=False
    ).hexdigest()

    first = resolve(resolver, {"mbox_sha1": digest.upper()})
    second = resolve(resolver, {"mbox_sha1": other})

    assert (first.user_id, second.user_id) == ("5", "7")
    # The list of users was read once and kept for the second learner.
    assert [c for c in calls(sandbox, "users/") if not c["query"]] != []
    assert len([c for c in calls(sandbox, "users/") if not c["query"]]) == 1


def test_create_missing_users_creates_the_learner_once(resolver, client, sandbox):
    src = source(create_missing_users=True)
    learner = {"email": "new.person@example.org", "name": "New Middle Person"}

    result = resolve(resolver, learner, src=src)
    again = resolve(resolver, learner, src=src)

    assert result.user_id is not None and again.user_id == result.user_id
    assert "learner: created" in result.steps
    user = client.get_user(result.user_id)
    assert (user["username"], user["email"]) == ("new.person", learner["email"])
    assert (user["fname"], user["lname"]) == ("New", "Middle Person")
    assert len(calls(sandbox, "users/")) == 2  # one search, one create


def test_missing_users_are_not_created_without_the_option(resolver, sandbox):
    result = resolve(resolver, {"email": "new.person@example.org"})

    assert result.user_id is None
    assert [c["method"] for c in calls(sandbox, "users/")] == ["GET"]


def test_several_users_with_an_email_leave_the_learner_unresolved(
    resolver, client, sandbox
):
    client.create_user(username="learner1-copy", email="learner1@example.com")
    src = source(create_missing_users=True)

    result = resolve(resolver, {"email": "learner1@example.com"}, src=src)

    assert result.user_id is None
    assert result.reason == (
        'learner {"email": "learner1@example.com"}: '
        "several users have email learner1@example.com"
    )
    assert [c["method"] for c in calls(sandbox, "users/")] == ["POST", "GET"]


def test_a_404_on_search_means_not_found(resolver, sandbox):
    set_faults(sandbox, fail_next=[{"status": 404}])

    result = resolve(resolver, {"email": "learner1@example.com"}, *BY_PATTERN)

    assert result.user_id is None
    assert "no user with email learner1@example.com" in result.reason


def test_a_search_open_elms_refuses_is_unresolved_with_its_reason(resolver, sandbox):
    set_faults(sandbox, fail_next=[{"status": 400}])

    result = resolve(resolver, {"email": "learner1@example.com"}, *BY_PATTERN)

    assert result.user_id is None
    assert "search by email learner1@example.com refused" in result.reason


def test_an_explicit_id_that_cannot_be_a_path_segment_is_unresolved(resolver):
    src = source(user_id_is_elms_id=True)

    result = resolve(resolver, {"user_id": "../3"}, src=src)

    assert result.user_id is None
    assert "user_id '../3' is not a usable Open ELMS user id" in result.reason


def test_a_user_record_without_an_id_is_a_shape_error(client, store):
    app = Flask("no-ids")
    app.get("/backend/users/")(lambda: jsonify([{"email": "a@example.org"}]))

    with serve_wsgi(app) as served:
        odd = OpenElmsClient(f"{served.url}/backend", "t", retries=0)
        resolver = Resolver(odd, store, elms_url=None)
        with pytest.raises(ElmsShapeError):
            resolve(resolver, {"email": "a@example.org"})
        odd.close()


# Unresolved reasons


def test_unresolved_reason_says_what_was_tried_for_each_side(resolver):
    activity = {"iri": "http://example.org/golf", "name": "Golf"}

    result = resolve(resolver, {"email": "x@y.org"}, activity)

    assert not result.resolved
    assert (result.user_id, result.learning_id) == (None, None)
    assert result.reason == (
        'learner {"email": "x@y.org"}: no user with email x@y.org; '
        "no username/usercode handle | "
        "activity http://example.org/golf: no mapping, no activity_pattern, no "
        'learning named "Golf"'
    )


def test_resolved_learner_with_unresolved_activity_names_only_the_activity(
    resolver,
):
    result = resolve(resolver, {"email": "guest@example.com"}, {"course_id": "C-9"})

    assert (result.user_id, result.learning_id) == ("5", None)
    assert result.reason == (
        "activity C-9: no mapping, no activity_pattern, no name handle"
    )


# Activity steps


def test_mapping_beats_pattern_beats_name(resolver, store, sandbox):
    src = source(activity_pattern=r"/learning/(\d+)$")
    activity = {"iri": f"{FIRE_IRI}/learning/6", "name": "Fire Safety Awareness"}
    map_activity(store, activity["iri"], "3")

    by_mapping = resolve(resolver, {"email": "guest@example.com"}, activity, src)
    with store.session() as session:
        remove_mapping(session, activity["iri"])
    by_pattern = resolve(resolver, {"email": "guest@example.com"}, activity, src)
    by_name = resolve(resolver, {"email": "guest@example.com"}, activity, source())

    assert by_mapping.learning_id == "3"
    assert "activity: found by mapping" in by_mapping.steps
    assert by_pattern.learning_id == "6"
    assert by_name.learning_id == "1"
    assert by_name.steps[-3:] == (
        "activity: no mapping",
        "activity: no activity_pattern",
        "activity: found by name",
    )


def test_source_mapping_beats_a_star_mapping(resolver, store):
    map_activity(store, FIRE_IRI, "3")
    map_activity(store, "COURSE-7", "4", src="lms-one")
    activity = {"iri": FIRE_IRI, "course_id": "course-7"}
    learner = {"email": "guest@example.com"}

    assert resolve(resolver, learner, activity, source("lms-one")).learning_id == "4"
    assert resolve(resolver, learner, activity, source("lms-two")).learning_id == "3"
    assert resolve(resolver, learner, activity, None).learning_id == "3"


def test_mapping_keys_and_names_match_whatever_their_case(resolver, store):
    map_activity(store, FIRE_IRI.upper(), "2")
    learner = {"email": "guest@example.com"}

    by_key = resolve(resolver, learner, {"content_id": FIRE_IRI})
    by_name = resolve(resolver, learner, {"name": "  fire SAFETY awareness "})

    assert (by_key.learning_id, by_name.learning_id) == ("2", "1")


def test_a_new_mapping_counts_at_once_without_forgetting(resolver, store):
    learner = {"email": "guest@example.com"}
    activity = {"iri": "https://courses.example.org/new"}

    assert resolve(resolver, learner, activity).learning_id is None
    map_activity(store, activity["iri"], "5")
    assert resolve(resolver, learner, activity).learning_id == "5"


def test_activity_pattern_named_group_and_other_handles(resolver):
    src = source(activity_pattern=r"^(?P<prefix>[A-Z]+)-(?P<learning_id>\d+)$")
    learner = {"email": "guest@example.com"}

    by_course = resolve(resolver, learner, {"iri": "x:y", "course_id": "OE-8"}, src)
    no_match = resolve(resolver, learner, {"course_id": "oe-8"}, src)

    assert by_course.learning_id == "8"
    assert no_match.learning_id is None
    assert "activity_pattern did not match" in no_match.reason


def test_several_learning_resources_with_the_name_leave_it_unresolved(store):
    app = Flask("twins")
    twins = [{"id": 1, "name": "Golf"}, {"id": 2, "name": "GOLF"}]
    app.add_url_rule("/backend/learning/", "learning", lambda: jsonify(twins))
    users = [{"id": 4, "email": "a@b.org"}]
    app.add_url_rule("/backend/users/", "users", lambda: jsonify(users))

    with serve_wsgi(app) as served:
        odd = OpenElmsClient(f"{served.url}/backend", "t", retries=0)
        result = resolve(
            Resolver(odd, store, elms_url=None), {"email": "a@b.org"}, {"name": "golf"}
        )
        odd.close()

    assert result.user_id == "4"
    assert result.reason == (
        'activity "golf": no mapping, no activity_pattern, '
        "several learning resources are named 'golf'"
    )


# Cache


def test_a_second_resolution_makes_no_call(resolver, sandbox):
    first = resolve(resolver, {"email": "guest@example.com"})
    second = resolve(resolver, {"email": "guest@example.com"})

    assert first == second
    assert len(calls(sandbox, "users/")) == 1
    assert len(calls(sandbox, "learning/")) == 1


def test_hits_expire_after_the_ttl(resolver, sandbox, clock):
    learner = {"email": "guest@example.com"}
    resolve(resolver, learner)

    clock.now += 299
    resolve(resolver, learner)
    assert len(calls(sandbox, "users/")) == 1

    clock.now += 2
    resolve(resolver, learner)
    assert len(calls(sandbox, "users/")) == 2
    assert len(calls(sandbox, "learning/")) == 2


def test_misses_expire_after_thirty_seconds_at_most(resolver, sandbox, clock):
    learner = {"email": "later@example.org"}
    assert resolve(resolver, learner).user_id is None

    clock.now += 29
    assert resolve(resolver, learner).user_id is None
    assert len(calls(sandbox, "users/")) == 1

    requests.post(
        f"{sandbox.base_url}/users/",
        data={"username": "later", "email": "later@example.org"},
        headers={"Authorization": f"Basic {sandbox.token}"},
        timeout=TIMEOUT,
    ).raise_for_status()
    clock.now += 2
    assert resolve(resolver, learner).user_id == "18"


def test_a_zero_ttl_caches_nothing(client, store, sandbox):
    resolver = Resolver(client, store, elms_url=None, cache_ttl=0)

    resolve(resolver, {"email": "guest@example.com"})
    resolve(resolver, {"email": "guest@example.com"})

    assert len(calls(sandbox, "users/")) == 2


def test_forget_clears_the_caches(resolver, sandbox):
    resolve(resolver, {"email": "guest@example.com"})
    resolver.forget()
    resolve(resolver, {"email": "guest@example.com"})

    assert len(calls(sandbox, "users/")) == 2
    assert len(calls(sandbox, "learning/")) == 2


def run_together(count: int, work) -> list:
    """Run ``work`` in ``count`` threads released at once; return outcomes."""
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = work()
        except Exception as exc:  # noqa: BLE001 - the outcome is asserted
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    return outcomes


def test_concurrent_misses_on_one_learner_make_one_search(resolver, sandbox):
    set_faults(sandbox, latency_ms=300)

    outcomes = run_together(
        10, lambda: resolve(resolver, {"email": "user@example.com"})
    )

    assert [o.user_id for o in outcomes] == ["3"] * 10
    assert searches(sandbox) == [{"email": ["user@example.com"]}]
    assert len(calls(sandbox, "learning/")) == 1


def test_concurrent_waiters_get_the_leaders_transient_error(resolver, sandbox):
    set_faults(sandbox, latency_ms=300, outage=True)

    outcomes = run_together(
        10, lambda: resolve(resolver, {"email": "user@example.com"})
    )

    assert all(isinstance(o, ElmsUnavailableError) for o in outcomes)
    assert len(calls(sandbox)) == 1


# Errors


def test_an_outage_propagates_and_is_not_cached(resolver, sandbox):
    map_activity_free = {"email": "guest@example.com"}
    set_faults(sandbox, outage=True)

    with pytest.raises(ElmsUnavailableError):
        resolve(resolver, map_activity_free)

    set_faults(sandbox, outage=False)
    assert resolve(resolver, map_activity_free).user_id == "5"


def test_a_wrong_token_propagates(store, sandbox):
    client = OpenElmsClient(sandbox.base_url, "wrong", retries=0)
    resolver = Resolver(client, store, elms_url=None)

    with pytest.raises(ElmsAuthError):
        resolve(resolver, {"email": "guest@example.com"})
    client.close()


# Options


def test_option_problems_are_all_reported():
    problems = resolution_option_problems(
        {
            "user_id_is_elms_id": "yes",
            "create_missing_users": 1,
            "learner_field": "name",
            "elms_home_pages": ["ftp://x", "https://ok.example.org"],
            "activity_pattern": "learning-\\d+",
        }
    )

    assert problems == [
        "user_id_is_elms_id: must be true or false",
        "create_missing_users: must be true or false",
        "learner_field: must be one of account_name, user_id, email, openid",
        "elms_home_pages[0]: must be an http(s) URL with a host; got 'ftp://x'",
        "activity_pattern: needs a capture group, named learning_id or the "
        "first, giving the learning id",
    ]


def test_option_problems_catch_a_bad_regex_and_contradictions():
    problems = resolution_option_problems(
        {
            "user_id_is_elms_id": True,
            "learner_field": "user_id",
            "elms_home_pages": "https://x.example.org",
            "activity_pattern": "(unclosed",
        }
    )

    assert problems[0].startswith("learner_field: user_id cannot be a username")
    assert problems[1] == "elms_home_pages: must be a list of URLs"
    assert problems[2].startswith("activity_pattern: is not a valid regular")
    assert len(problems) == 3
    assert resolution_option_problems({"activity_pattern": r"(\d+)"}) == []


def test_resolve_refuses_a_source_with_wrong_options(resolver):
    with pytest.raises(ConfigError) as caught:
        resolve(resolver, {"email": "a@b.org"}, src=source(learner_field="x"))

    assert caught.value.problems == [
        "learner_field: must be one of account_name, user_id, email, openid"
    ]
