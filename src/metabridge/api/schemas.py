"""Request and response bodies of the REST API (published as OpenAPI at /docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from metabridge.events.settings import DateOrder, MatchingPolicy


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique name, used by the CLI.")
    pixel_id: str = Field(min_length=1, max_length=64, pattern=r"^\d+$", description="Meta pixel or dataset id.")
    access_token: str = Field(min_length=1, description="Conversions API access token (stored encrypted, never returned).")
    app_secret: str | None = Field(default=None, description="App secret: every Graph call then carries appsecret_proof.")
    test_event_code: str | None = None
    consent_category: str | None = None
    matching: MatchingPolicy = "meta"
    default_country: str | None = None
    date_order: DateOrder = "mdy"
    event_names: dict[str, str] = Field(default_factory=dict)
    external_id_hashing: bool = True


class ConnectionUpdate(BaseModel):
    """Only the fields given change. A new access_token (or app_secret) resumes a paused connection."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    pixel_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^\d+$")
    access_token: str | None = Field(default=None, min_length=1)
    app_secret: str | None = None
    test_event_code: str | None = None
    consent_category: str | None = None
    matching: MatchingPolicy | None = None
    default_country: str | None = None
    date_order: DateOrder | None = None
    event_names: dict[str, str] | None = None
    external_id_hashing: bool | None = None


class ConnectionOut(BaseModel):
    id: int
    name: str
    pixel_id: str
    has_app_secret: bool
    test_event_code: str | None
    consent_category: str | None
    matching: MatchingPolicy
    default_country: str | None
    date_order: DateOrder
    event_names: dict[str, str]
    external_id_hashing: bool
    health: Literal["ok", "paused"]
    paused_reason: str | None
    created_at: int
    updated_at: int


class FieldErrorOut(BaseModel):
    field: str
    message: str


class RejectedEvent(BaseModel):
    index: int
    event_id: str | None = None
    errors: list[FieldErrorOut]


class IngestResponse(BaseModel):
    accepted: int = Field(description="Events committed to the outbox (pending, skipped or deduplicated).")
    pending: int = Field(description="Accepted events queued for delivery to Meta.")
    skipped: int = Field(description="Accepted but not sent: no_consent or insufficient_customer_data.")
    deduplicated: int
    rejected: list[RejectedEvent]


class TestEventRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: dict[str, Any] = Field(description="One incoming event, same shape as ingest.")
    test_event_code: str | None = Field(default=None, description="Defaults to the connection's test_event_code.")


class TestEventResponse(BaseModel):
    sent: bool
    decision: dict[str, Any]
    request: dict[str, Any] | None = Field(default=None, description="The request body sent to Meta.")
    meta_status: int | None = Field(default=None, description="Meta's HTTP status.")
    meta_body: Any = Field(default=None, description="Meta's raw response body.")


class EventRecord(BaseModel):
    event_id: str
    event_name: str
    status: Literal["pending", "sent", "deduplicated", "skipped", "invalid", "failed"]
    reason: str | None
    detail: Any = None
    attempts: int
    received_at: int
    event_time: int
    sent_at: int | None
    next_attempt_at: int | None
    fbtrace_id: str | None


class EventStatus(EventRecord):
    history: list[EventRecord] = Field(default_factory=list, description="Other copies of this event_id (e.g. duplicates).")


class StatsResponse(BaseModel):
    connection_id: int
    since: int
    until: int
    health: Literal["ok", "paused"]
    paused_reason: str | None
    by_status: dict[str, int]
    by_event_name: dict[str, dict[str, int]]
    by_reason: dict[str, int]
    meta_events_received: int
    requests: int
    last_error: dict[str, Any] | None
