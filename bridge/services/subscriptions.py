"""Outbound webhook subscriptions: add, list, show, change, remove, re-key.

A subscription's secret is returned once, by :func:`create_subscription`
and :func:`rotate_secret`; every other answer masks it. URLs pass the
SSRF guard before they are stored; networks in
``BRIDGE_ALLOW_PRIVATE_TARGETS`` are let through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bridge.errors import InvalidInputError, NotFoundError, StateConflictError
from bridge.outbound_types import ANY_EVENT_TYPE, EVENT_TYPES
from bridge.services.fields import nullable_timestamp, short_text, timestamp
from bridge.services.inputs import InputSchema, invalid_field, load_input
from bridge.ssrf import UnsafeTargetError, check_target
from bridge.store import subscription_queries as queries
from bridge.store.subscription_queries import MAX_URL_LENGTH

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.store.db import Store

MAX_DESCRIPTION_LENGTH = 2000
MAX_GRACE_SECONDS = 30 * 86400.0
TYPE_CHOICES = [*EVENT_TYPES, ANY_EVENT_TYPE]
TYPES_HELP = f"Event types to receive: {', '.join(EVENT_TYPES)} or `*` for all."


def event_types_field(**kwargs: Any) -> fields.List:
    """Return the list of event types a subscription asks for."""
    item = fields.String(metadata={"enum": TYPE_CHOICES})
    length = validate.Length(min=1)
    return fields.List(
        item, validate=length, metadata={"description": TYPES_HELP}, **kwargs
    )


class SubscriptionChangesSchema(InputSchema):
    """Fields an operator may set; null clears the optional ones."""

    url = fields.String(
        validate=validate.Length(1, MAX_URL_LENGTH), metadata={"format": "uri"}
    )
    event_types = event_types_field()
    learning_ids = fields.List(
        short_text(), allow_none=True, validate=validate.Length(min=1)
    )
    user_group_id = short_text(allow_none=True)
    description = fields.String(
        allow_none=True, validate=validate.Length(max=MAX_DESCRIPTION_LENGTH)
    )
    enabled = fields.Boolean()

    @validates_schema
    def check_not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Refuse an update that changes nothing."""
        if not data and not kwargs.get("partial"):
            raise ValidationError("name at least one field to change")


class SubscriptionCreateSchema(SubscriptionChangesSchema):
    """A new subscription; every type (`*`) unless event_types says otherwise."""

    url = fields.String(
        required=True,
        validate=validate.Length(1, MAX_URL_LENGTH),
        metadata={"format": "uri"},
    )
    event_types = event_types_field(load_default=[ANY_EVENT_TYPE])
    secret = fields.String(
        load_default=None,
        validate=validate.Length(1, 255),
        metadata={"description": "A whsec_ secret; default: a new one."},
    )
    enabled = fields.Boolean(load_default=True)


class RotationSchema(InputSchema):
    """A secret rotation: the grace period and, optionally, the new secret."""

    grace_seconds = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(0, MAX_GRACE_SECONDS),
        metadata={"description": "Seconds the old secret keeps signing."},
    )
    secret = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(1, 255),
        metadata={"description": "The new whsec_ secret; default: a new one."},
    )


class SubscriptionSchema(Schema):
    """A subscription as answered; ``secret`` is masked except once."""

    id = fields.String(required=True)
    url = fields.String(required=True)
    description = fields.String(allow_none=True)
    event_types = fields.List(fields.String(), required=True)
    learning_ids = fields.List(fields.String(), allow_none=True)
    user_group_id = fields.String(allow_none=True)
    secret = fields.String(required=True)
    previous_secret = fields.String(allow_none=True)
    previous_secret_expires_at = nullable_timestamp()
    enabled = fields.Boolean(required=True)
    disabled_reason = fields.String(allow_none=True)
    failing_since = nullable_timestamp()
    created_at = timestamp(required=True)
    updated_at = timestamp(required=True)


def create_subscription(
    store: Store, settings: Settings, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Add a subscription and return it with its secret shown, this once.

    Raises:
        InvalidInputError: a field is wrong, or the URL is not a safe target.
    """
    values = load_input(SubscriptionCreateSchema(), data)
    check_url_is_safe(settings, values["url"])

    with store.session() as session:
        try:
            row = queries.add_subscription(
                session,
                url=values["url"],
                event_types=values["event_types"],
                description=values.get("description"),
                learning_ids=values.get("learning_ids"),
                user_group_id=values.get("user_group_id"),
                secret=values["secret"],
                enabled=values["enabled"],
            )
        except ValueError as exc:
            raise invalid_field(field_of(exc), str(exc)) from None
    return row.to_dict(show_secret=True)


def list_subscriptions(
    store: Store, *, enabled: bool | None = None
) -> list[dict[str, Any]]:
    """Return the subscriptions, oldest first, secrets masked."""
    with store.session(write=False) as session:
        rows = queries.list_subscriptions(session, enabled=enabled)
    return [row.to_dict() for row in rows]


def get_subscription(store: Store, subscription_id: str) -> dict[str, Any]:
    """Return one subscription, secrets masked.

    Raises:
        NotFoundError: no subscription by that id.
    """
    with store.session(write=False) as session:
        row = queries.get_subscription(session, subscription_id)
    if row is None:
        raise not_found(subscription_id)
    return row.to_dict()


def update_subscription(
    store: Store, settings: Settings, subscription_id: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Change the fields given and return the subscription; the rest stay.

    Enabling forgets the failure record, so auto-disable starts afresh.

    Raises:
        InvalidInputError: nothing to change, or a field is wrong.
        NotFoundError: no subscription by that id.
    """
    changes = load_input(SubscriptionChangesSchema(), data)
    if "url" in changes:
        check_url_is_safe(settings, changes["url"])

    with store.session() as session:
        try:
            row = queries.update_subscription(session, subscription_id, **changes)
        except LookupError:
            raise not_found(subscription_id) from None
        except ValueError as exc:
            raise invalid_field(field_of(exc), str(exc)) from None
    return row.to_dict()


def set_enabled(store: Store, subscription_id: str, enabled: bool) -> dict[str, Any]:
    """Enable (forgetting past failures) or disable a subscription.

    Raises:
        NotFoundError: no subscription by that id.
    """
    with store.session() as session:
        try:
            row = queries.update_subscription(session, subscription_id, enabled=enabled)
        except LookupError:
            raise not_found(subscription_id) from None
    return row.to_dict()


def remove_subscription(store: Store, subscription_id: str, *, purge: bool) -> None:
    """Remove a subscription; one with deliveries needs ``purge``.

    Raises:
        NotFoundError: no subscription by that id.
        StateConflictError: it has deliveries and ``purge`` is not set.
    """
    with store.session() as session:
        try:
            removed = queries.remove_subscription(session, subscription_id, purge=purge)
        except ValueError as exc:
            raise StateConflictError(str(exc)) from None
    if not removed:
        raise not_found(subscription_id)


def rotate_secret(
    store: Store, settings: Settings, subscription_id: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Give a subscription a new secret and return it with the secret shown.

    The grace period defaults to ``BRIDGE_ROTATION_GRACE``.

    Raises:
        InvalidInputError: the grace or the secret is wrong.
        NotFoundError: no subscription by that id.
    """
    values = load_input(RotationSchema(), data)
    grace = values["grace_seconds"]
    if grace is None:
        grace = settings.rotation_grace

    with store.session() as session:
        try:
            row = queries.rotate_secret(
                session,
                subscription_id,
                grace_seconds=grace,
                new_secret=values["secret"],
            )
        except LookupError:
            raise not_found(subscription_id) from None
        except ValueError as exc:
            raise invalid_field("secret", str(exc)) from None
    return row.to_dict(show_secret=True)


def check_url_is_safe(settings: Settings, url: str) -> None:
    """Refuse a URL the SSRF guard refuses.

    Raises:
        InvalidInputError: on ``url``, saying why.
    """
    try:
        check_target(url, settings.allow_private_targets)
    except UnsafeTargetError as exc:  # also a URL that does not parse at all
        message = f"unsafe URL: {exc}"
        raise InvalidInputError(message, errors={"url": [message]}) from None


def field_of(exc: ValueError) -> str:
    """Return the field a query layer's ValueError is about, from its wording."""
    text = str(exc).lower()
    for word, name in FIELD_WORDS:
        if word in text:
            return name
    return "input"


# How the query layer words each field's mistakes.
FIELD_WORDS = (
    ("url", "url"),
    ("event type", "event_types"),
    ("learning id", "learning_ids"),
    ("group", "user_group_id"),
    ("secret", "secret"),
    ("whsec", "secret"),
)


def not_found(subscription_id: str) -> NotFoundError:
    """Return the error for an unknown subscription id."""
    return NotFoundError(f"no subscription {subscription_id!r}")


class SubscriptionFiltersSchema(InputSchema):
    """Filter of the subscription listing."""

    enabled = fields.Boolean(
        load_default=None, metadata={"description": "Only enabled or disabled ones."}
    )


class RemovalSchema(InputSchema):
    """How to remove a subscription."""

    purge = fields.Boolean(
        load_default=False,
        metadata={"description": "Delete its delivery history too."},
    )
