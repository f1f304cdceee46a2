"""Validate xAPI statements with marshmallow and report errors as field paths.

The schemas are strict where the xAPI specification says MUST (numbers and
booleans are JSON types, score ranges hold, timestamps carry a real offset,
an Agent has exactly one identifier) and lenient where producers are known
to deviate from SHOULDs: ids need only look like 8-4-4-4-12 hex, properties
the bridge does not read are dropped rather than rejected.

The ``Lenient*`` variants serve the H5P adapter: H5P hosts send accounts
without ``homePage``, object ids such as ``.`` or ``undefined?subContentId=``
and parent activities without an ``id``.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from bridge.adapters.common import flatten_messages, json_type

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from collections.abc import Set as AbstractSet

# Any 8-4-4-4-12 hex: the spec's own examples break the RFC 4122 variant rule.
UUID_PATTERN = r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"
# An absolute IRI: a scheme, a colon, then no whitespace.
IRI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$"
VERSION_PATTERN = r"^(1\.0(\.\d+)?|2\.0(\.\d+)?)$"
SHA1_PATTERN = r"^[0-9a-fA-F]{40}$"
IDENTIFIERS = ("mbox", "mbox_sha1sum", "openid", "account")
# lrs-conformance-test-suite configs/timestamps.js rejects these offsets.
NEGATIVE_ZERO_OFFSET = re.compile(r"-00(:?00)?$")

GROUP_ACTOR_MESSAGE = (
    "a Group cannot be mapped to one learner; send one statement per Agent"
)
STRING_VERB_MESSAGE = (
    "verb must be an object with an id; a string verb is the pre-1.0 format"
)

uuid_string = validate.Regexp(UUID_PATTERN, error="must be a UUID (8-4-4-4-12 hex)")
iri_string = validate.Regexp(IRI_PATTERN, error="must be an absolute IRI")


def validate_activity_id(value: str) -> None:
    """Require an absolute IRI, except for H5P sub-content ids.

    H5P hosts forward children with ids like ``undefined?subContentId=...``;
    the bridge only reads them as informational, so they are let through.
    """
    if "subContentId=" not in value:
        iri_string(value)


class JsonNumber(fields.Field):
    """A JSON number only: strings, booleans, NaN and infinities are refused."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> float:
        """Return ``value`` as a finite float or raise a ValidationError."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("must be a JSON number, not a " + json_type(value))

        try:
            number = float(value)
        except OverflowError as exc:
            raise ValidationError("number is out of range") from exc

        if not math.isfinite(number):
            raise ValidationError("number must be finite")
        return number


class JsonBoolean(fields.Field):
    """A JSON boolean only: ``"true"`` and ``1`` are refused, as xAPI requires."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> bool:
        """Return ``value`` if it is a boolean, else raise a ValidationError."""
        if not isinstance(value, bool):
            raise ValidationError("must be a JSON boolean, not a " + json_type(value))
        return value


class XapiTimestamp(fields.AwareDateTime):
    """An ISO 8601 timestamp, converted to UTC; naive ones are taken as UTC."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", default_timezone=UTC, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> datetime:
        """Return the timestamp in UTC, refusing ``-00:00`` style offsets."""
        if isinstance(value, str) and NEGATIVE_ZERO_OFFSET.search(value):
            raise ValidationError("offset -00:00 is not allowed; use +00:00 or Z")

        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError("timestamp is out of range in UTC") from exc


class ObjectNested(fields.Nested):
    """A nested schema whose value must be a JSON object."""

    def _deserialize(
        self,
        value: Any,
        attr: str | None,
        data: Mapping[str, Any] | None,
        partial: bool | Sequence[str] | AbstractSet[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Refuse non-objects with a readable message, then load the schema."""
        if not isinstance(value, dict):
            message = self.error_messages.get("not_object", "must be a JSON object")
            raise ValidationError(message)
        return super()._deserialize(value, attr, data, partial, **kwargs)


class LanguageMap(fields.Dict):
    """An xAPI language map: language tag to string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(keys=fields.String(), values=fields.String(), **kwargs)


class BaseXapiSchema(Schema):
    """Drop properties the bridge does not read; the raw statement keeps them."""

    class Meta:
        """Leniency for unknown properties (xAPI extensions, 2.0 additions)."""

        unknown = EXCLUDE


class AccountSchema(BaseXapiSchema):
    """An Agent's account on some system."""

    homePage = fields.String(required=True, validate=iri_string)
    name = fields.String(required=True, validate=validate.Length(min=1))


class LenientAccountSchema(AccountSchema):
    """An account whose ``homePage`` H5P hosts often leave out."""

    homePage = fields.String()


class AgentSchema(BaseXapiSchema):
    """An Agent with exactly one inverse functional identifier."""

    objectType = fields.String(validate=validate.Equal("Agent"))
    name = fields.String()
    mbox = fields.String(
        validate=validate.Regexp(r"^mailto:\S+$", error="must be a mailto: IRI")
    )
    mbox_sha1sum = fields.String(
        validate=validate.Regexp(SHA1_PATTERN, error="must be 40 hex digits")
    )
    openid = fields.String(validate=iri_string)
    account = ObjectNested(AccountSchema)

    @validates_schema
    def check_one_identifier(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Require exactly one of mbox, mbox_sha1sum, openid and account."""
        present = [key for key in IDENTIFIERS if key in data]
        if len(present) != 1:
            raise ValidationError(
                "an Agent needs exactly one of mbox, mbox_sha1sum, openid, account"
            )


class LenientAgentSchema(AgentSchema):
    """An Agent whose account may lack ``homePage``."""

    account = ObjectNested(LenientAccountSchema)


class ActorField(fields.Field):
    """The statement's actor: an Agent; a Group cannot name one learner."""

    def __init__(self, agent_schema: type[Schema] = AgentSchema, **kwargs: Any):
        super().__init__(**kwargs)
        self.agent_schema = agent_schema

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """Return the loaded Agent or raise with the reason it is refused."""
        if not isinstance(value, dict):
            raise ValidationError("actor must be an Agent object")
        if value.get("objectType") == "Group":
            raise ValidationError(GROUP_ACTOR_MESSAGE)
        return _instance(self.agent_schema).load(value)


class VerbSchema(BaseXapiSchema):
    """A verb: its IRI and an optional display language map."""

    id = fields.String(required=True, validate=iri_string)
    display = LanguageMap()


class DefinitionSchema(BaseXapiSchema):
    """The parts of an activity definition the bridge reads."""

    name = LanguageMap()
    description = LanguageMap()
    type = fields.String()
    extensions = fields.Dict(keys=fields.String())


class ActivitySchema(BaseXapiSchema):
    """An Activity identified by an absolute IRI."""

    objectType = fields.String(validate=validate.Equal("Activity"))
    id = fields.String(required=True, validate=validate_activity_id)
    definition = ObjectNested(DefinitionSchema)


class LenientActivitySchema(ActivitySchema):
    """An Activity whose id is any non-empty string (H5P sub-content, ``.``)."""

    id = fields.String(required=True, validate=validate.Length(min=1))


class LooseParentSchema(LenientActivitySchema):
    """A context activity H5P may send without an id."""

    id = fields.String()


class StatementRefSchema(BaseXapiSchema):
    """A reference to another statement by id."""

    objectType = fields.String(required=True, validate=validate.Equal("StatementRef"))
    id = fields.String(required=True, validate=uuid_string)


class SubStatementSchema(BaseXapiSchema):
    """A statement nested as an object; the bridge only checks its shape."""

    objectType = fields.String(required=True)
    actor = fields.Dict(required=True)
    verb = ObjectNested(VerbSchema, required=True)
    object = fields.Dict(required=True)


class StatementObjectField(fields.Field):
    """The statement's object, loaded by its ``objectType``."""

    def __init__(
        self, activity_schema: type[Schema] = ActivitySchema, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.schemas: dict[str, type[Schema]] = {
            "Activity": activity_schema,
            "Agent": AgentSchema,
            "Group": BaseXapiSchema,
            "StatementRef": StatementRefSchema,
            "SubStatement": SubStatementSchema,
        }

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """Return the loaded object, ``objectType`` defaulting to Activity."""
        if not isinstance(value, dict):
            raise ValidationError("object must be a JSON object")

        object_type = value.get("objectType", "Activity")
        schema = self.schemas.get(object_type) if isinstance(object_type, str) else None
        if schema is None:
            raise ValidationError({"objectType": ["unknown objectType"]})

        loaded = _instance(schema).load(value)
        loaded["objectType"] = object_type
        return loaded


class ActivityListField(fields.Field):
    """A contextActivities value: one Activity or a list, loaded as a list."""

    def __init__(
        self, activity_schema: type[Schema] = ActivitySchema, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.activity_schema = activity_schema

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """Return the activities as a list, with errors keyed by position."""
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list):
            raise ValidationError("must be an Activity or a list of Activities")

        loaded, errors = [], {}
        for index, item in enumerate(items):
            try:
                loaded.append(_load_object(self.activity_schema, item))
            except ValidationError as exc:
                errors[index] = exc.messages

        if errors:
            raise ValidationError(errors)
        return loaded


class ContextActivitiesSchema(BaseXapiSchema):
    """Parent, grouping, category and other activities of a statement."""

    parent = ActivityListField()
    grouping = ActivityListField()
    category = ActivityListField()
    other = ActivityListField()


class LenientContextActivitiesSchema(BaseXapiSchema):
    """Context activities as H5P sends them, ids possibly missing."""

    parent = ActivityListField(LooseParentSchema)
    grouping = ActivityListField(LooseParentSchema)
    category = ActivityListField(LooseParentSchema)
    other = ActivityListField(LooseParentSchema)


class ContextSchema(BaseXapiSchema):
    """The parts of a statement's context the bridge reads."""

    registration = fields.String(validate=uuid_string)
    contextActivities = ObjectNested(ContextActivitiesSchema)
    statement = ObjectNested(StatementRefSchema)
    extensions = fields.Dict(keys=fields.String())
    platform = fields.String()
    language = fields.String()


class LenientContextSchema(ContextSchema):
    """A context whose activities follow H5P's habits."""

    contextActivities = ObjectNested(LenientContextActivitiesSchema)


class ScoreSchema(BaseXapiSchema):
    """A score; its ranges are MUSTs in xAPI, so breaking them is a 400."""

    scaled = JsonNumber()
    raw = JsonNumber()
    min = JsonNumber()
    max = JsonNumber()

    @validates_schema
    def check_ranges(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Require scaled in [-1, 1], min < max and raw within [min, max]."""
        errors: dict[str, list[str]] = {}
        scaled, raw = data.get("scaled"), data.get("raw")
        low, high = data.get("min"), data.get("max")

        if scaled is not None and not -1 <= scaled <= 1:
            errors["scaled"] = ["scaled must be between -1 and 1"]
        if low is not None and high is not None and low >= high:
            errors["min"] = ["min must be less than max"]
        if raw is not None and low is not None and raw < low:
            errors["raw"] = ["raw must not be below min"]
        if raw is not None and high is not None and raw > high:
            errors["raw"] = ["raw must not be above max"]

        if errors:
            raise ValidationError(errors)


class ResultSchema(BaseXapiSchema):
    """A statement's result."""

    score = ObjectNested(ScoreSchema)
    success = JsonBoolean()
    completion = JsonBoolean()
    response = fields.String()
    duration = fields.String()
    extensions = fields.Dict(keys=fields.String())


class StatementSchema(BaseXapiSchema):
    """An xAPI 1.0.x or 2.0 statement as the bridge reads it."""

    id = fields.String(validate=uuid_string)
    actor = ActorField(required=True)
    verb = ObjectNested(
        VerbSchema, required=True, error_messages={"not_object": STRING_VERB_MESSAGE}
    )
    object = StatementObjectField(required=True)
    result = ObjectNested(ResultSchema)
    context = ObjectNested(ContextSchema)
    timestamp = XapiTimestamp()
    stored = XapiTimestamp()
    version = fields.String(
        validate=validate.Regexp(VERSION_PATTERN, error="must be 1.0.x or 2.0.x")
    )


class LenientStatementSchema(StatementSchema):
    """A statement as H5P content emits it through a host page."""

    actor = ActorField(LenientAgentSchema, required=True)
    object = StatementObjectField(LenientActivitySchema, required=True)
    context = ObjectNested(LenientContextSchema)


def load_statement(
    schema: type[Schema], statement: Any, prefix: str
) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """Return the loaded statement, or None and its errors as field paths.

    ``prefix`` is the statement's path in the body, ``[0]`` for the first of
    an array and empty for a lone statement, so paths read
    ``[0].result.score.scaled`` or ``result.score.scaled``.
    """
    try:
        return _load_object(schema, statement), []
    except ValidationError as exc:
        return None, flatten_messages(exc.messages, prefix)


def _load_object(schema: type[Schema], value: Any) -> dict[str, Any]:
    """Load ``value`` with ``schema``, refusing anything but a JSON object."""
    if not isinstance(value, dict):
        raise ValidationError("must be a JSON object, not a " + json_type(value))
    return _instance(schema).load(value)


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    """Return one shared instance of a schema class.

    Building a marshmallow schema deep-copies its fields, which cost more
    than the load itself; ``load`` keeps no state, so instances are shared.
    """
    return schema()
