"""The incoming event: what shops, CDPs and tag managers send to metabridge.

Pydantic checks the *shape* (types, enums, timestamps); the Conversions API rules that need the whole event
(required fields per action source, Purchase value, time window) live in :mod:`metabridge.events.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from metabridge.events.errors import FieldError

ActionSource = Literal[
    "email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
    "business_messaging", "other",
]
MessagingChannel = Literal["whatsapp", "messenger", "instagram"]

#: Unix times above this are read as milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_MS_THRESHOLD = 100_000_000_000
_INFINITY = float("inf")


def parse_timestamp_ms(value: Any) -> int:
    """Milliseconds since the epoch from ISO 8601 text or Unix seconds / milliseconds.

    A naive ISO time is read as UTC, as Meta's ``event_time`` is defined in GMT.
    """
    kind = type(value)
    if kind is str:
        text = value.strip()
        if len(text) >= 10 and text[4] == "-" and text[7] == "-":
            # ``YYYY-MM-...``: dashes at 4 and 7, which no number text has (it holds at most a sign and an
            # exponent sign, and the sign comes first); skips a float() that would fail.
            return _iso_ms(text)
        try:
            number = float(text)
        except ValueError:
            return _iso_ms(text)
    elif kind is int or kind is float:
        number = float(value)
    elif isinstance(value, bool):
        raise ValueError("must be ISO 8601 text or Unix seconds/milliseconds")
    elif isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        return parse_timestamp_ms(str(value))
    elif isinstance(value, datetime):
        return _datetime_ms(value)
    else:
        raise ValueError("must be ISO 8601 text or Unix seconds/milliseconds")
    if number != number or number < 0:
        raise ValueError("must be a positive Unix time")
    if number == _INFINITY:
        raise ValueError("must be a finite Unix time")
    return int(number) if number >= _MS_THRESHOLD else int(number * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)


def _datetime_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch (naive = UTC), in exact integer arithmetic."""
    if moment.tzinfo is not None and moment.utcoffset() is None:  # a tzinfo that gives no offset: naive
        moment = moment.replace(tzinfo=None)
    return (moment - (_NAIVE_EPOCH if moment.tzinfo is None else _EPOCH)) // _ONE_MS


def _iso_ms(text: str) -> int:
    """Milliseconds since the epoch of ISO 8601 text; naive times are UTC.

    A ``Z`` is read as ``+00:00``. Python 3.11 reads a final ``Z`` itself, so the usual text is parsed as it
    comes; any other ``Z``/``z`` is replaced first, as before 3.11.
    """
    if "z" in text or "Z" in text[:-1]:
        text = text.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be ISO 8601 (2026-11-20T10:00:00Z) or Unix seconds/milliseconds") from None
    # fromisoformat gives a naive time or one with a fixed offset
    return (moment - (_NAIVE_EPOCH if moment.tzinfo is None else _EPOCH)) // _ONE_MS


def _consent_list(value: Any) -> Any:
    """Accept a list, or the comma/semicolon separated text CSV files and cookies carry."""
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if isinstance(value, list):
        return [str(item) if isinstance(item, (int, float)) else item for item in value]
    return value


class FacebookOverrides(BaseModel):
    """``integrations.facebook``: values that win over the mapped ones, key by key."""

    model_config = ConfigDict(extra="allow")

    event_name: str | None = None
    event_id: str | None = None
    action_source: ActionSource | None = None
    messaging_channel: MessagingChannel | None = None
    user_data: dict[str, Any] = Field(default_factory=dict)
    custom_data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("event_id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Integrations(BaseModel):
    model_config = ConfigDict(extra="allow")

    facebook: FacebookOverrides | None = None


class IncomingEvent(BaseModel):
    """One event as metabridge receives it (see the README for the full shape and examples)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    event: str = Field(min_length=1, max_length=200)
    event_id: str | None = Field(default=None, max_length=500)
    timestamp_ms: int | None = Field(default=None, validation_alias="timestamp")
    url: str | None = None
    referrer_url: str | None = None
    action_source: ActionSource | None = None
    messaging_channel: MessagingChannel | None = None
    consent_categories: list[str] | None = None
    user: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    integrations: Integrations | None = None

    @field_validator("timestamp_ms", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> int | None:
        if value is None or value == "":
            return None
        return parse_timestamp_ms(value)

    @field_validator("event_id", mode="before")
    @classmethod
    def _event_id(cls, value: Any) -> Any:
        if value == "":
            return None
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("consent_categories", mode="before")
    @classmethod
    def _categories(cls, value: Any) -> Any:
        return _consent_list(value)

    @property
    def facebook(self) -> FacebookOverrides | None:
        return self.integrations.facebook if self.integrations else None


def _location(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] == "timestamp_ms":
        parts[0] = "timestamp"
    return ".".join(parts) or "event"


def _message(error: Mapping[str, Any]) -> str:
    text = str(error.get("msg", "is invalid"))
    if text.startswith("Value error, "):
        text = text[len("Value error, "):]
    if error.get("type") == "missing":
        return "is required"
    if error.get("type") == "literal_error":
        return text.replace("Input should be", "must be one of")
    if text.startswith("Input should be"):
        return "must be" + text[len("Input should be"):]
    if text.startswith("Input should have"):
        return "must have" + text[len("Input should have"):]
    return text[:1].lower() + text[1:]


def parse_event(raw: Any) -> IncomingEvent | list[FieldError]:
    """The validated event, or every shape error it has (field + rule), never an exception."""
    if type(raw) is not dict and not isinstance(raw, Mapping):  # exact dict first: skips the ABC check
        return [FieldError("event", "must be a JSON object")]
    try:
        return IncomingEvent.model_validate(raw)
    except ValidationError as exc:
        return [FieldError(_location(err["loc"]), _message(err)) for err in exc.errors()]


#: The values the model takes for ``action_source`` and ``messaging_channel`` (from its Literal types).
ACTION_SOURCES: frozenset[str] = frozenset(get_args(ActionSource))
MESSAGING_CHANNELS: frozenset[str] = frozenset(get_args(MessagingChannel))

#: :func:`read_plain_event`'s answer: the :class:`IncomingEvent` fields ``event``, ``event_id``,
#: ``timestamp_ms``, ``url``, ``referrer_url``, ``action_source``, ``messaging_channel``,
#: ``consent_categories``, ``user`` and ``properties``, in that order.
PlainEvent = tuple[
    str, "str | None", "int | None", "str | None", "str | None", "str | None", "str | None",
    "list[str] | None", "dict[str, Any]", "dict[str, Any]",
]


def read_plain_event(raw: dict[str, Any]) -> PlainEvent | None:
    """The fields :class:`IncomingEvent` would hold for ``raw``, without the model, when ``raw`` is *plain*.

    Plain: every field it has already has the type the model wants and nothing to strip, convert or reject
    (no surrounding whitespace, lengths within the model's limits, a known action source) and there is no
    ``integrations`` object. That is almost every event a CDP sends, and validating it through pydantic
    costs more than all the rest of its transformation. For anything else this returns None and the caller
    runs :func:`parse_event`, which owns every conversion and error message; tests compare both.

    The *keys* of ``user`` and ``properties`` are not checked here: the model strips them and rejects
    non-text ones, so a caller taking this path checks them itself (it caches per key set).
    """
    get = raw.get
    if get("integrations") is not None:
        return None
    name = get("event")
    if type(name) is not str or not 0 < len(name) <= 200 or name.strip() != name:
        return None
    event_id = get("event_id")
    if event_id is not None:
        if type(event_id) is not str or len(event_id) > 500 or event_id.strip() != event_id:
            return None
        if not event_id:
            event_id = None
    stamp = get("timestamp")
    if stamp is None:
        time_ms = None
    else:
        kind = type(stamp)
        if kind is not str and kind is not int and kind is not float:
            return None
        if stamp == "":
            time_ms = None
        else:
            try:
                time_ms = parse_timestamp_ms(stamp)
            except ValueError:
                return None
    url = get("url")
    if url is not None and (type(url) is not str or url.strip() != url):
        return None
    referrer = get("referrer_url")
    if referrer is not None and (type(referrer) is not str or referrer.strip() != referrer):
        return None
    source = get("action_source")
    if source is not None and (type(source) is not str or source not in ACTION_SOURCES):
        return None
    channel = get("messaging_channel")
    if channel is not None and (type(channel) is not str or channel not in MESSAGING_CHANNELS):
        return None
    categories = get("consent_categories")
    if categories is not None:
        if type(categories) is not list and type(categories) is not str:
            return None
        categories = _consent_list(categories)
        for category in categories:
            if type(category) is not str or category.strip() != category:
                return None
    user = get("user")
    if type(user) is not dict:
        if user is not None or "user" in raw:
            return None
        user = {}
    properties = get("properties")
    if type(properties) is not dict:
        if properties is not None or "properties" in raw:
            return None
        properties = {}
    return name, event_id, time_ms, url, referrer, source, channel, categories, user, properties
