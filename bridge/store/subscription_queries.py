"""Read and write webhook subscriptions; all of their SQL lives here.

A subscription names a URL, the outbound event types it wants (``*`` for
all) and optional filters. Secrets follow Standard Webhooks (``whsec_``);
after a rotation the previous secret keeps signing until its grace period
ends. Like ``queries``, every function runs inside the caller's
transaction and none commits.

The URL is checked for shape here; whether it is a safe target (the SSRF
guard, which resolves names) is the caller's check, ``bridge.ssrf``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select

from bridge import signing
from bridge.outbound_types import ANY_EVENT_TYPE, check_event_type, check_event_types
from bridge.store.outbound_models import (
    DeliveryAttemptModel,
    DeliveryModel,
    SubscriptionModel,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

MAX_URL_LENGTH = 2048
MAX_ID_LENGTH = 64
MASKED_SECRET = "whsec_****"  # noqa: S105 - what list and show print instead
MASKED_PASSWORD = "****"  # noqa: S105 - stands for a password in a shown URL
OPERATOR_DISABLED = "disabled by an operator"
UPDATABLE = frozenset(
    {"url", "event_types", "description", "learning_ids", "user_group_id", "enabled"}
)


@dataclass(frozen=True)
class SubscriptionRow:
    """A stored subscription; its secrets stay out of repr."""

    id: str
    url: str
    description: str | None
    event_types: list[str]
    learning_ids: list[str] | None
    user_group_id: str | None
    secret: str = field(repr=False)
    previous_secret: str | None = field(repr=False)
    previous_secret_expires_at: datetime | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    def to_dict(self, *, show_secret: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict; secrets are masked unless ``show_secret``.

        Only the current secret is ever shown: the previous one is already
        in the subscriber's hands.
        """
        previous = MASKED_SECRET if self.previous_secret else None
        expires = self.previous_secret_expires_at
        return {
            "id": self.id,
            "url": self.url if show_secret else masked_url(self.url),
            "description": self.description,
            "event_types": self.event_types,
            "learning_ids": self.learning_ids,
            "user_group_id": self.user_group_id,
            "secret": self.secret if show_secret else MASKED_SECRET,
            "previous_secret": previous,
            "previous_secret_expires_at": _iso(expires),
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "failing_since": _iso(self.failing_since),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def masked_url(url: str) -> str:
    """Return ``url`` with the password of its user part, if any, masked.

    A subscriber's URL may carry basic-auth credentials; like the signing
    secret, they are shown when given and never printed back.
    """
    return _URL_PASSWORD.sub(r"\1:" + MASKED_PASSWORD + "@", url)


_URL_PASSWORD = re.compile(r"(?<=://)([^/@\s:]*):[^/@\s]*@")


def add_subscription(
    session: Session,
    *,
    url: str,
    event_types: Iterable[str],
    description: str | None = None,
    learning_ids: Iterable[str] | None = None,
    user_group_id: str | None = None,
    secret: str | None = None,
    enabled: bool = True,
    now: datetime | None = None,
) -> SubscriptionRow:
    """Add a subscription and return it, with a new secret unless one is given.

    Raises:
        ValueError: a field is malformed: the URL, an unknown event type,
            an empty learning id or group, or a secret of the wrong shape.
    """
    now = now or datetime.now(UTC)
    model = SubscriptionModel(
        id=str(uuid.uuid4()),
        url=check_url(url),
        description=_description(description),
        event_types=check_event_types(event_types),
        learning_ids=_learning_ids(learning_ids),
        user_group_id=_group(user_group_id),
        secret=_secret(secret),
        enabled=enabled,
        disabled_reason=None if enabled else OPERATOR_DISABLED,
        created_at=now,
        updated_at=now,
    )
    session.add(model)
    session.flush()

    logger.info("subscription %s added for %s", model.id, model.event_types)
    return _subscription_row(model)


def list_subscriptions(
    session: Session, *, enabled: bool | None = None
) -> list[SubscriptionRow]:
    """Return the subscriptions, oldest first; only enabled or disabled if asked."""
    query = select(SubscriptionModel)
    if enabled is not None:
        query = query.where(SubscriptionModel.enabled == enabled)

    query = query.order_by(SubscriptionModel.created_at, SubscriptionModel.id)
    return [_subscription_row(model) for model in session.scalars(query)]


def get_subscription(session: Session, subscription_id: str) -> SubscriptionRow | None:
    """Return one subscription, or None if there is none by that id."""
    model = session.get(SubscriptionModel, subscription_id)
    return None if model is None else _subscription_row(model)


def update_subscription(
    session: Session,
    subscription_id: str,
    *,
    now: datetime | None = None,
    **changes: Any,
) -> SubscriptionRow:
    """Change the given fields and return the subscription.

    Accepts ``url``, ``event_types``, ``description``, ``learning_ids``,
    ``user_group_id`` and ``enabled``; None clears the optional ones.
    Re-enabling clears ``disabled_reason`` and ``failing_since``, so the
    auto-disable clock starts afresh.

    Raises:
        LookupError: no subscription by that id.
        ValueError: an unknown field, or a value as in
            :func:`add_subscription`.
    """
    unknown = sorted(set(changes) - UPDATABLE)
    if unknown:
        raise ValueError(f"cannot update {', '.join(unknown)}")

    model = _load(session, subscription_id)
    for name, value in _checked_changes(changes).items():
        setattr(model, name, value)
    if "enabled" in changes:
        _apply_enabled(model, bool(changes["enabled"]))

    model.updated_at = now or datetime.now(UTC)
    session.flush()
    logger.info("subscription %s updated: %s", model.id, ", ".join(sorted(changes)))
    return _subscription_row(model)


def remove_subscription(
    session: Session, subscription_id: str, *, purge: bool = False
) -> bool:
    """Remove a subscription; say whether it existed.

    Its deliveries are its audit trail, so a subscription that has any is
    kept unless ``purge`` is set, which deletes them and their attempts
    first. To stop deliveries but keep the history, disable it instead.

    Raises:
        ValueError: the subscription has deliveries and ``purge`` is not set.
    """
    model = session.get(SubscriptionModel, subscription_id)
    if model is None:
        return False

    count = _count_deliveries(session, subscription_id)
    if count and not purge:
        raise ValueError(
            f"subscription {subscription_id} has {count} deliveries;"
            " disable it to keep them, or purge them with it"
        )
    if count:
        _delete_deliveries(session, subscription_id)

    session.delete(model)
    session.flush()
    logger.info("subscription %s removed with %d deliveries", subscription_id, count)
    return True


def rotate_secret(
    session: Session,
    subscription_id: str,
    *,
    grace_seconds: float,
    now: datetime | None = None,
    new_secret: str | None = None,
) -> SubscriptionRow:
    """Give a subscription a new secret; the old one signs for ``grace_seconds``.

    Only one previous secret is kept: rotating again within the grace
    period drops the oldest one at once.

    Raises:
        LookupError: no subscription by that id.
        ValueError: a negative grace, or ``new_secret`` of the wrong shape.
    """
    if grace_seconds < 0:
        raise ValueError("the grace period must not be negative")
    fresh = _secret(new_secret)
    now = now or datetime.now(UTC)

    model = _load(session, subscription_id)
    keep_old = grace_seconds > 0
    model.previous_secret = model.secret if keep_old else None
    expires = now + timedelta(seconds=grace_seconds)
    model.previous_secret_expires_at = expires if keep_old else None
    model.secret = fresh
    model.updated_at = now

    session.flush()
    logger.info("subscription %s secret rotated; grace %gs", model.id, grace_seconds)
    return _subscription_row(model)


def signing_secrets(row: SubscriptionRow, now: datetime) -> list[str]:
    """Return the secrets to sign with: current, then previous while in grace."""
    secrets = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and now < expires:
        secrets.append(row.previous_secret)
    return secrets


def disable_subscription(
    session: Session, subscription_id: str, reason: str, now: datetime
) -> SubscriptionRow:
    """Disable a subscription with a reason; one already disabled keeps its own.

    Raises:
        LookupError: no subscription by that id.
    """
    model = _load(session, subscription_id)
    if not model.enabled:
        return _subscription_row(model)

    model.enabled = False
    model.disabled_reason = reason
    model.updated_at = now
    session.flush()
    logger.info("subscription %s disabled: %s", model.id, reason)
    return _subscription_row(model)


def matching_subscriptions(
    session: Session, event_type: str, learning_id: str | None = None
) -> list[SubscriptionRow]:
    """Return the enabled subscriptions that want an event, oldest first.

    A subscription wants it when its types include ``event_type`` or
    ``*``, and, if it names learning ids and the event concerns a
    learning, that learning is among them. Events about no learning (the
    ``bridge.*`` notices) reach every subscriber of their type.

    ``user_group_id`` is not applied here: membership lives in Open ELMS.
    The caller drops rows whose group does not hold the event's user,
    using a membership lookup it can cache.

    Raises:
        ValueError: ``event_type`` is unknown.
    """
    check_event_type(event_type)
    query = select(SubscriptionModel).where(SubscriptionModel.enabled.is_(True))
    query = query.order_by(SubscriptionModel.created_at, SubscriptionModel.id)

    # The JSON lists are compared here, not in SQL, which SQLite and
    # PostgreSQL query differently; subscriptions are few.
    rows = []
    for model in session.scalars(query):
        if _wants(model, event_type, learning_id):
            rows.append(_subscription_row(model))
    return rows


def check_url(url: str) -> str:
    """Return ``url`` stripped if it is an http(s) URL with a host.

    Raises:
        ValueError: another scheme, no host, or longer than 2048 characters.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ValueError(f"the URL does not parse: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the URL must be http(s) with a host; got {text!r}")
    if len(text) > MAX_URL_LENGTH:
        raise ValueError(f"the URL must be at most {MAX_URL_LENGTH} characters")
    return text


def _wants(model: SubscriptionModel, event_type: str, learning_id: str | None) -> bool:
    """Say whether a subscription's type and learning filters take an event."""
    types = model.event_types
    if event_type not in types and ANY_EVENT_TYPE not in types:
        return False
    if learning_id is None or not model.learning_ids:
        return True
    return learning_id in model.learning_ids


def _checked_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Return the column values of an update, each checked as on adding."""
    checks = {
        "url": check_url,
        "event_types": check_event_types,
        "description": _description,
        "learning_ids": _learning_ids,
        "user_group_id": _group,
    }
    return {name: checks[name](changes[name]) for name in checks if name in changes}


def _apply_enabled(model: SubscriptionModel, enabled: bool) -> None:
    """Enable or disable by hand; enabling forgets the failure record."""
    if enabled and not model.enabled:
        model.disabled_reason = None
        model.failing_since = None
    if not enabled and model.enabled:
        model.disabled_reason = OPERATOR_DISABLED
    model.enabled = enabled


def _count_deliveries(session: Session, subscription_id: str) -> int:
    """Return how many deliveries a subscription has."""
    query = select(func.count()).where(DeliveryModel.subscription_id == subscription_id)
    return int(session.scalar(query) or 0)


def _delete_deliveries(session: Session, subscription_id: str) -> None:
    """Delete a subscription's deliveries and their attempts."""
    deliveries = select(DeliveryModel.id).where(
        DeliveryModel.subscription_id == subscription_id
    )
    session.execute(
        delete(DeliveryAttemptModel).where(
            DeliveryAttemptModel.delivery_id.in_(deliveries)
        )
    )
    session.execute(
        delete(DeliveryModel).where(DeliveryModel.subscription_id == subscription_id)
    )


def _load(session: Session, subscription_id: str) -> SubscriptionModel:
    """Return the ORM row of a subscription, or raise LookupError."""
    model = session.get(SubscriptionModel, subscription_id)
    if model is None:
        raise LookupError(f"no subscription {subscription_id!r}")
    return model


def _secret(secret: str | None) -> str:
    """Return ``secret`` checked, or a new one when None."""
    return signing.new_secret() if secret is None else signing.check_secret(secret)


def _description(description: str | None) -> str | None:
    """Return a description stripped, None for an empty one."""
    if description is None:
        return None
    return description.strip() or None


def _learning_ids(learning_ids: Iterable[str] | None) -> list[str] | None:
    """Return learning ids as stored text without repeats; None means all.

    Raises:
        ValueError: an empty list or id, or an id over 64 characters.
    """
    if learning_ids is None:
        return None
    if isinstance(learning_ids, str):
        raise ValueError("learning ids must be a list, not one string")

    ids: list[str] = []
    for raw in learning_ids:
        ids.append(_short_id(raw, "a learning id"))
    if not ids:
        raise ValueError("name at least one learning id, or none for every one")
    return list(dict.fromkeys(ids))


def _group(user_group_id: str | None) -> str | None:
    """Return a user group id as stored text, or None for no group filter."""
    if user_group_id is None:
        return None
    return _short_id(user_group_id, "the user group id")


def _short_id(raw: str | int, what: str) -> str:
    """Return an Open ELMS id as text, refusing an empty or overlong one."""
    text = str(raw).strip()
    if not text:
        raise ValueError(f"{what} must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"{what} must be at most {MAX_ID_LENGTH} characters")
    return text


def _iso(moment: datetime | None) -> str | None:
    """Return a datetime in ISO 8601, or None."""
    return None if moment is None else moment.isoformat()


def _subscription_row(model: SubscriptionModel) -> SubscriptionRow:
    """Return the plain record of a subscription row."""
    return SubscriptionRow(
        id=model.id,
        url=model.url,
        description=model.description,
        event_types=list(model.event_types),
        learning_ids=None if model.learning_ids is None else list(model.learning_ids),
        user_group_id=model.user_group_id,
        secret=model.secret,
        previous_secret=model.previous_secret,
        previous_secret_expires_at=model.previous_secret_expires_at,
        enabled=model.enabled,
        disabled_reason=model.disabled_reason,
        failing_since=model.failing_since,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )
