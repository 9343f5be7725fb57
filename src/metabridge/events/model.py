"""The incoming event: what shops, CDPs and tag managers send to metabridge.

Pydantic checks the *shape* (types, enums, timestamps); the Conversions API rules that need the whole event
(required fields per action source, Purchase value, time window) live in :mod:`metabridge.events.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from metabridge.events.errors import FieldError

ActionSource = Literal[
    "email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
    "business_messaging", "other",
]
MessagingChannel = Literal["whatsapp", "messenger", "instagram"]

#: Unix times above this are read as milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_MS_THRESHOLD = 100_000_000_000


def parse_timestamp_ms(value: Any) -> int:
    """Milliseconds since the epoch from ISO 8601 text or Unix seconds / milliseconds.

    A naive ISO time is read as UTC, as Meta's ``event_time`` is defined in GMT.
    """
    if isinstance(value, bool):
        raise ValueError("must be ISO 8601 text or Unix seconds/milliseconds")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _looks_like_date(text):
            return _iso_ms(text)  # skips a float() attempt that would fail (a raised exception per event)
        try:
            number = float(text)
        except ValueError:
            return _iso_ms(text)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    else:
        raise ValueError("must be ISO 8601 text or Unix seconds/milliseconds")
    if number != number or number < 0:
        raise ValueError("must be a positive Unix time")
    return int(number) if number >= _MS_THRESHOLD else int(number * 1000)


def _looks_like_date(text: str) -> bool:
    """``YYYY-MM-...``: dashes at 4 and 7, which no number text has (it holds at most a sign and an exponent sign,
    and the sign comes first)."""
    return len(text) >= 10 and text[4] == "-" and text[7] == "-"


def _iso_ms(text: str) -> int:
    """Milliseconds since the epoch of ISO 8601 text; naive times are UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError("must be ISO 8601 (2026-11-20T10:00:00Z) or Unix seconds/milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


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
        """Accept a list, or the comma/semicolon separated text CSV files and cookies carry."""
        if value is None:
            return None
        if isinstance(value, str):
            return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        if isinstance(value, list):
            return [str(item) if isinstance(item, (int, float)) else item for item in value]
        return value

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
