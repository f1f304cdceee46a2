"""Resolve an event's learner and activity to Open ELMS user and learning ids.

The learner is tried, in order: an explicit Open ELMS id (an account on
the Open ELMS site, or a source whose ``user_id`` is the id), the
source's ``learner_field`` as a username, the email, the account name and
user id as username then usercode, the ``mbox_sha1`` against every user's
email, and finally, if the source allows it, a new user. The activity is
tried against explicit mappings, the source's ``activity_pattern``, then
the names of the learning resources.

Lookups in Open ELMS are cached for ``cache_ttl`` seconds (misses for at
most :data:`NEGATIVE_TTL_MAX`), and concurrent misses on one key make a
single lookup. Mappings are read from the store every time, so one added
on the command line counts at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from bridge.elms import segment
from bridge.errors import (
    ElmsNotFoundError,
    ElmsShapeError,
    ElmsValidationError,
)
from bridge.resolve_options import (
    PATTERN_GROUP,
    ResolutionOptions,
    read_resolution_options,
    site_origin,
)
from bridge.store.mapping_queries import ANY_SOURCE, activity_keys, find_learning_id
from bridge.ttl_cache import TtlCache

if TYPE_CHECKING:
    from bridge.elms import OpenElmsClient
    from bridge.sources import Source
    from bridge.store.db import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A learner not found may be created in Open ELMS soon; look again sooner.
NEGATIVE_TTL_MAX = 30.0
_LEARNING_KEY = ("learning-names",)
_MBOX_KEY = ("mbox-index",)


@dataclass(frozen=True)
class Resolution:
    """The Open ELMS ids of an event, or why one of them was not found.

    ``steps`` lists what was tried for the learner and the activity, in
    order, ending with the step that found each id.
    """

    user_id: str | None
    learning_id: str | None
    reason: str | None
    steps: tuple[str, ...] = ()

    @property
    def resolved(self) -> bool:
        """Tell whether both ids were found."""
        found = self.user_id is not None and self.learning_id is not None
        return found and self.reason is None


@dataclass(frozen=True)
class _Found:
    """One side's outcome: the id, or None, and the steps tried."""

    value: str | None
    steps: tuple[str, ...]


class _Unresolvable(Exception):
    """A step found something that ends the search, such as two matches."""


class Resolver:
    """Turn learner and activity handles into Open ELMS ids; thread-safe.

    Open ELMS errors propagate: transient ones (transport, 500, 503,
    401/403) for the dispatcher to retry or pause on, and unreadable or
    unexpected answers. Two are answers about this learner instead: a 404
    from a lookup counts as "not found", and a 400 to a search or a new user
    leaves the learner unresolved with Open ELMS's message.
    """

    def __init__(
        self,
        client: OpenElmsClient,
        store: Store,
        *,
        elms_url: str | None,
        cache_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.store = store
        self.cache_ttl = cache_ttl
        self.negative_ttl = min(cache_ttl, NEGATIVE_TTL_MAX)
        self.elms_origin = site_origin(elms_url) if elms_url else None
        self._cache = TtlCache(clock)

    def forget(self) -> None:
        """Clear every cached lookup."""
        self._cache.clear()

    def resolve(
        self,
        *,
        learner: dict[str, str],
        activity: dict[str, str],
        source: Source | None,
    ) -> Resolution:
        """Return the user and learning ids of an event, or why not.

        Raises:
            ElmsError: Open ELMS failed, transiently or with an answer the
                bridge cannot use (see the class docstring).
            ConfigError: the source's resolution options are wrong.
        """
        options = read_resolution_options(source.options if source else {})
        scope = source.name if source else ANY_SOURCE

        learning = self._resolve_activity(activity, scope, options)
        user = self._resolve_learner(learner, options)

        steps = tuple(f"learner: {s}" for s in user.steps) + tuple(
            f"activity: {s}" for s in learning.steps
        )
        reasons = []
        if user.value is None:
            reasons.append(f"learner {json.dumps(learner)}: {'; '.join(user.steps)}")
        if learning.value is None:
            label = describe_activity(activity)
            reasons.append(f"activity {label}: {', '.join(learning.steps)}")

        reason = " | ".join(reasons) or None
        logger.debug(
            "resolution for source %s: user %s, learning %s",
            scope,
            user.value,
            learning.value,
        )
        return Resolution(user.value, learning.value, reason, steps)

    # Learner

    def _resolve_learner(
        self, learner: dict[str, str], options: ResolutionOptions
    ) -> _Found:
        """Return the learner's user id, cached, with the steps tried."""
        learner_options = (
            options.user_id_is_elms_id,
            options.learner_field,
            options.elms_home_pages,
            options.create_missing_users,
        )
        key = ("learner", learner_options, tuple(sorted(learner.items())))
        return self._cache.get(
            key, lambda: self._find_user(learner, options), self._ttl_of
        )

    def _ttl_of(self, found: _Found) -> float:
        """Return how long an outcome is kept: misses for a shorter time."""
        return self.cache_ttl if found.value is not None else self.negative_ttl

    def _find_user(self, learner: dict[str, str], options: ResolutionOptions) -> _Found:
        """Run the learner steps in order until one finds the user."""
        tried: list[str] = []
        searched: set[tuple[str, str]] = set()
        steps: list[Callable[[], str | None]] = [
            lambda: self._explicit_id(learner, options, tried),
            lambda: self._by_learner_field(learner, options, tried, searched),
            lambda: self._by_email(learner, tried, searched),
            lambda: self._by_names(learner, tried, searched),
            lambda: self._by_mbox_sha1(learner, tried),
            lambda: self._by_creating(learner, options, tried),
        ]
        try:
            for step in steps:
                user_id = step()
                if user_id is not None:
                    return _Found(user_id, tuple(tried))
        except _Unresolvable as exc:
            tried.append(str(exc))
        return _Found(None, tuple(tried))

    def _explicit_id(
        self, learner: dict[str, str], options: ResolutionOptions, tried: list[str]
    ) -> str | None:
        """Return the id an account on the Open ELMS site or ``user_id`` gives."""
        home, name = learner.get("account_home_page"), learner.get("account_name")
        sites = set(options.elms_home_pages)
        if self.elms_origin is not None:
            sites.add(self.elms_origin)
        if home and name and site_origin(home) in sites:
            return _checked_id(name, "account_name", tried)

        if not options.user_id_is_elms_id:
            return None
        if learner.get("user_id"):
            return _checked_id(learner["user_id"], "user_id", tried)
        tried.append("no user_id handle for user_id_is_elms_id")
        return None

    def _by_learner_field(
        self,
        learner: dict[str, str],
        options: ResolutionOptions,
        tried: list[str],
        searched: set[tuple[str, str]],
    ) -> str | None:
        """Return the user whose username is in the source's ``learner_field``."""
        field = options.learner_field
        if field is None:
            return None
        if not learner.get(field):
            tried.append(f"no {field} handle for learner_field")
            return None
        return self._search_one("username", learner[field], tried, searched)

    def _by_email(
        self,
        learner: dict[str, str],
        tried: list[str],
        searched: set[tuple[str, str]],
    ) -> str | None:
        """Return the one user with the learner's email."""
        if not learner.get("email"):
            tried.append("no email handle")
            return None
        return self._search_one("email", learner["email"], tried, searched)

    def _by_names(
        self,
        learner: dict[str, str],
        tried: list[str],
        searched: set[tuple[str, str]],
    ) -> str | None:
        """Return the one user whose username, then usercode, is a handle."""
        values = [learner.get("account_name"), learner.get("user_id")]
        names = list(dict.fromkeys(v for v in values if v))
        if not names:
            tried.append("no username/usercode handle")
            return None

        for field in ("username", "usercode"):
            for name in names:
                user_id = self._search_one(field, name, tried, searched)
                if user_id is not None:
                    return user_id
        return None

    def _search_one(
        self,
        field: str,
        value: str,
        tried: list[str],
        searched: set[tuple[str, str]],
    ) -> str | None:
        """Return the one user whose ``field`` is ``value``; None if there is none.

        Raises:
            _Unresolvable: several users match, or Open ELMS refused the search.
        """
        if (field, value) in searched:
            return None
        searched.add((field, value))

        try:
            users = self.client.search_users(**{field: value})
        except ElmsNotFoundError:
            users = []
        except ElmsValidationError as exc:
            raise _Unresolvable(f"search by {field} {value} refused: {exc}") from exc

        if len(users) > 1:
            raise _Unresolvable(f"several users have {field} {value}")
        if not users:
            tried.append(f"no user with {field} {value}")
            return None
        tried.append(f"found by {field}")
        return user_id_of(users[0])

    def _by_mbox_sha1(self, learner: dict[str, str], tried: list[str]) -> str | None:
        """Return the one user whose ``mailto:`` email hashes to ``mbox_sha1``."""
        digest = learner.get("mbox_sha1", "").strip().lower()
        if not digest:
            return None

        index = self._cache.get(_MBOX_KEY, self._index_mboxes, self._index_ttl)
        found = index.get(digest, ())
        if len(found) > 1:
            raise _Unresolvable(f"several users have mbox_sha1 {digest}")
        if not found:
            tried.append(f"no user with mbox_sha1 {digest}")
            return None
        tried.append("found by mbox_sha1")
        return found[0]

    def _index_mboxes(self) -> dict[str, tuple[str, ...]]:
        """Return sha1("mailto:" + email) -> user ids, over every user."""
        index: dict[str, list[str]] = {}
        for user in self._list_or_none(self.client.list_users):
            email = str(user.get("email") or "").strip()
            if not email:
                continue
            # Producers hash the address as they hold it; try it as given
            # and lower-cased, the form most of them use.
            for form in {email, email.lower()}:
                mbox = f"mailto:{form}".encode()
                digest = hashlib.sha1(mbox, usedforsecurity=False).hexdigest()
                ids = index.setdefault(digest, [])
                if user_id_of(user) not in ids:
                    ids.append(user_id_of(user))
        return {digest: tuple(ids) for digest, ids in index.items()}

    def _by_creating(
        self, learner: dict[str, str], options: ResolutionOptions, tried: list[str]
    ) -> str | None:
        """Create the learner in Open ELMS, when the source allows it."""
        if not options.create_missing_users:
            return None
        email = learner.get("email")
        if not email:
            tried.append("no email handle to create a user with")
            return None

        form = new_user_form(learner, email)
        try:
            created = self.client.create_user(**form)
        except ElmsValidationError as exc:
            raise _Unresolvable(f"creating user {form['username']}: {exc}") from exc

        self._cache.discard(_MBOX_KEY)
        logger.info("learner created as Open ELMS user %s", created)
        tried.append("created")
        return str(created)

    # Activity

    def _resolve_activity(
        self, activity: dict[str, str], scope: str, options: ResolutionOptions
    ) -> _Found:
        """Return the activity's learning id with the steps tried."""
        tried: list[str] = []
        steps: list[Callable[[], str | None]] = [
            lambda: self._by_mapping(activity, scope, tried),
            lambda: self._by_pattern(activity, options, tried),
            lambda: self._by_learning_name(activity, tried),
        ]
        try:
            for step in steps:
                learning_id = step()
                if learning_id is not None:
                    return _Found(learning_id, tuple(tried))
        except _Unresolvable as exc:
            tried.append(str(exc))
        return _Found(None, tuple(tried))

    def _by_mapping(
        self, activity: dict[str, str], scope: str, tried: list[str]
    ) -> str | None:
        """Return the learning id an explicit mapping gives."""
        keys = activity_keys(activity)
        found = None
        if keys:
            with self.store.session(write=False) as session:
                found = find_learning_id(session, keys, scope)

        tried.append("found by mapping" if found else "no mapping")
        return found

    def _by_pattern(
        self, activity: dict[str, str], options: ResolutionOptions, tried: list[str]
    ) -> str | None:
        """Return the learning id the source's ``activity_pattern`` captures."""
        pattern = options.activity_pattern
        if pattern is None:
            tried.append("no activity_pattern")
            return None

        for handle in ("iri", "course_id", "content_id"):
            match = pattern.search(activity.get(handle) or "")
            if match is None:
                continue
            group = PATTERN_GROUP if PATTERN_GROUP in pattern.groupindex else 1
            if match.group(group):
                tried.append("found by activity_pattern")
                return match.group(group)

        tried.append("activity_pattern did not match")
        return None

    def _by_learning_name(
        self, activity: dict[str, str], tried: list[str]
    ) -> str | None:
        """Return the one learning resource named as the activity is."""
        name = (activity.get("name") or "").strip()
        if not name:
            tried.append("no name handle")
            return None

        index = self._cache.get(_LEARNING_KEY, self._index_learning, self._index_ttl)
        found = index.get(name.casefold(), ())
        if len(found) > 1:
            raise _Unresolvable(f"several learning resources are named {name!r}")
        if not found:
            tried.append(f"no learning named {json.dumps(name)}")
            return None
        tried.append("found by name")
        return found[0]

    def _index_learning(self) -> dict[str, tuple[str, ...]]:
        """Return case-folded name -> learning ids, over every resource."""
        index: dict[str, list[str]] = {}
        for item in self._list_or_none(self.client.list_learning):
            name = str(item.get("name") or "").strip().casefold()
            if name and item.get("id") is not None:
                index.setdefault(name, []).append(str(item["id"]))
        return {name: tuple(ids) for name, ids in index.items()}

    def _index_ttl(self, index: dict[str, tuple[str, ...]]) -> float:
        """Return how long a list of users or learning is kept."""
        return self.cache_ttl

    @staticmethod
    def _list_or_none(
        fetch: Callable[[], list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """Return what ``fetch`` lists, or nothing when Open ELMS answers 404."""
        try:
            return fetch()
        except ElmsNotFoundError:
            return []


def _checked_id(value: str, handle: str, tried: list[str]) -> str:
    """Return an explicit user id, or raise if it cannot be used in a path."""
    try:
        segment(value)
    except ValueError as exc:
        message = f"{handle} {value!r} is not a usable Open ELMS user id"
        raise _Unresolvable(message) from exc
    tried.append(f"explicit id in {handle}")
    return value.strip()


def user_id_of(user: dict[str, Any]) -> str:
    """Return the id of a user record as text.

    Raises:
        ElmsShapeError: the record has no id.
    """
    if user.get("id") is None:
        raise ElmsShapeError("a user record has no id", method="GET", path="users/")
    return str(user["id"])


def new_user_form(learner: dict[str, str], email: str) -> dict[str, str]:
    """Return the form fields that create a learner: username, email, names."""
    form = {
        "username": learner.get("account_name") or email.split("@", 1)[0],
        "email": email,
    }
    parts = (learner.get("name") or "").split(None, 1)
    if parts:
        form["fname"] = parts[0]
    if len(parts) > 1:
        form["lname"] = parts[1]
    return form


def describe_activity(activity: dict[str, str]) -> str:
    """Return the handle that best names an activity in a reason."""
    for handle in ("iri", "course_id", "content_id"):
        if activity.get(handle):
            return activity[handle]
    if activity.get("name"):
        return json.dumps(activity["name"])
    return json.dumps(activity)
