"""Events surface: incoming events to Conversions API request bodies (pure, no I/O).

Public API::

    from metabridge.events import ConnectionSettings, EventPipeline, preview_events

    preview = preview_events(raw_events, ConnectionSettings(pixel_id="123", default_country="us"))
    preview.as_json()  # {"decisions": [...], "requests": [...]}
"""

from metabridge.events.batching import MAX_EVENTS_PER_REQUEST, batched_bodies, encode_body, request_body
from metabridge.events.errors import FieldError
from metabridge.events.model import IncomingEvent, parse_event
from metabridge.events.names import DEFAULT_EVENT_NAMES, STANDARD_EVENTS, EventNameResolver, resolve_event_name
from metabridge.events.pipeline import Decision, EventPipeline, SkipReason, stable_event_id
from metabridge.events.preview import Preview, preview_events
from metabridge.events.settings import ConnectionSettings

__all__ = [
    "DEFAULT_EVENT_NAMES",
    "MAX_EVENTS_PER_REQUEST",
    "STANDARD_EVENTS",
    "ConnectionSettings",
    "Decision",
    "EventNameResolver",
    "EventPipeline",
    "FieldError",
    "IncomingEvent",
    "Preview",
    "SkipReason",
    "batched_bodies",
    "encode_body",
    "parse_event",
    "preview_events",
    "request_body",
    "resolve_event_name",
    "stable_event_id",
]
