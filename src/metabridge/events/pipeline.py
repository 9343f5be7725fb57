"""From one incoming event to one Conversions API server event, or the reason it must not be sent.

This is the pure heart of the events surface: no I/O, no clock (``now`` is a parameter), no framework.
The preview command, the ingest API and the delivery worker all run events through :class:`EventPipeline`,
so what the preview shows is exactly what the service sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import orjson

from metabridge.events.errors import FieldError
from metabridge.events.mapping import fbclid_from_url, map_properties, map_user
from metabridge.events.model import IncomingEvent, parse_event
from metabridge.events.names import EventNameResolver
from metabridge.events.policy import has_consent, meets_matching_policy
from metabridge.events.rules import check_event
from metabridge.events.settings import ConnectionSettings
from metabridge.identity import normalize_user_data

Action = Literal["send", "skip"]
#: Why an event is not sent. ``invalid``: Meta would reject it (errors name the fields);
#: ``no_consent`` / ``insufficient_customer_data``: the connection's policies;
#: ``deduplicated``: the same (event_name, event_id) was already taken.
SkipReason = Literal["invalid", "no_consent", "insufficient_customer_data", "deduplicated"]

#: Namespace for event ids metabridge generates: the same event content always gets the same id, so a
#: file imported twice is deduplicated by Meta instead of counted twice.
EVENT_ID_NAMESPACE = uuid.UUID("6f0c1f4e-5b0a-4d43-9a3e-6d6574616272")

#: ``integrations.facebook`` keys copied onto the server event as they are (D-SE).
EVENT_LEVEL_OVERRIDES: frozenset[str] = frozenset(
    {
        "opt_out", "data_processing_options", "data_processing_options_country",
        "data_processing_options_state", "app_data", "referrer_url", "original_event_data",
        "attribution_data", "customer_segmentation", "event_source_url",
    }
)


#: Stands in for absent ``integrations.facebook`` overrides (read-only, so it is safe to share).
_NO_OVERRIDES: Mapping[str, Any] = MappingProxyType({})


@dataclass(slots=True)
class Decision:
    """What happens to one event, and why."""

    index: int
    event_id: str | None
    event_name: str | None
    action: Action
    reason: SkipReason | None = None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    server_event: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON shape scripts rely on (``metabridge events preview --json``)."""
        out: dict[str, Any] = {
            "index": self.index,
            "event_id": self.event_id,
            "event_name": self.event_name,
            "action": self.action,
            "reason": self.reason,
        }
        if self.errors:
            out["errors"] = [e.as_dict() for e in self.errors]
        if self.warnings:
            out["warnings"] = [w.as_dict() for w in self.warnings]
        return out


def stable_event_id(raw: Mapping[str, Any]) -> str:
    """A UUID derived from the event's content, for events that arrive without an id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode()))


class EventPipeline:
    """Transforms events for one connection. Build once per connection; call per event."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._names = EventNameResolver(settings.event_names)
        self._identity = settings.identity_context()

    def parse(self, raw: Any) -> IncomingEvent | list[FieldError]:
        """Shape-check one raw event and give it a stable id if it has none."""
        event = parse_event(raw)
        if isinstance(event, IncomingEvent) and event.event_id is None:
            event.event_id = stable_event_id(raw)
        return event

    def process(self, raw: Any, *, index: int, now_ms: int, received_ms: int | None = None) -> Decision:
        """Parse and transform in one step; shape errors become an ``invalid`` decision."""
        event = self.parse(raw)
        if isinstance(event, list):
            event_id = raw.get("event_id") if isinstance(raw, Mapping) else None
            name = raw.get("event") if isinstance(raw, Mapping) else None
            return Decision(index, _text_or_none(event_id), _text_or_none(name), "skip", "invalid", event)
        return self.transform(event, index=index, now_ms=now_ms, received_ms=received_ms)

    def transform(
        self, event: IncomingEvent, *, index: int, now_ms: int, received_ms: int | None = None
    ) -> Decision:
        """Decide and build. ``received_ms`` stands in for a missing timestamp (when metabridge got it)."""
        fb = event.facebook
        if fb is None:  # the usual case: nothing overrides the mapped values
            event_name = self._names(event.event)
            event_id = event.event_id
            action_source = event.action_source
            channel = event.messaging_channel
            user_overrides: Mapping[str, Any] = _NO_OVERRIDES
            custom_overrides: Mapping[str, Any] = _NO_OVERRIDES
        else:
            event_name = fb.event_name or self._names(event.event)
            event_id = fb.event_id or event.event_id
            action_source = fb.action_source or event.action_source
            channel = fb.messaging_channel or event.messaging_channel
            user_overrides, custom_overrides = fb.user_data, fb.custom_data
        decision = Decision(index, event_id, event_name, "send")

        if not has_consent(event.consent_categories, self.settings.consent_category):
            decision.action, decision.reason = "skip", "no_consent"
            return decision

        time_ms = event.timestamp_ms or received_ms or now_ms
        url = event.url
        if not action_source:
            action_source = "website" if url else "system_generated"

        raw_user, origin, warnings = map_user(event.user, user_overrides)
        if "fbc" not in raw_user:
            fbclid = fbclid_from_url(url)
            if fbclid:
                raw_user["fbc"] = f"fb.1.{time_ms}.{fbclid}"
                origin["fbc"] = "url"
        identity = normalize_user_data(raw_user, self._identity)
        user_data = identity.user_data
        for issue in identity.issues:
            key = issue.field.removeprefix("user_data.")
            warnings.append(FieldError(origin.get(key, issue.field), issue.message))
        custom_data, errors = map_properties(event.properties, custom_overrides)

        server_event: dict[str, Any] = {
            "event_name": event_name,
            "event_time": time_ms // 1000,
            "event_id": event_id,
            "action_source": action_source,
            "user_data": user_data,
        }
        if custom_data:
            server_event["custom_data"] = custom_data
        if url:
            server_event["event_source_url"] = url
        if event.referrer_url:
            server_event["referrer_url"] = event.referrer_url
        if channel:
            server_event["messaging_channel"] = channel
        if fb is not None and fb.model_extra:
            for key, value in fb.model_extra.items():
                if key in EVENT_LEVEL_OVERRIDES:
                    server_event[key] = value
                else:
                    warnings.append(FieldError(
                        f"integrations.facebook.{key}", "is not a Conversions API server event field; ignored"
                    ))

        errors.extend(check_event(server_event, now_ms // 1000))
        decision.warnings = warnings
        if errors:
            decision.action, decision.reason, decision.errors = "skip", "invalid", errors
            return decision
        if not meets_matching_policy(user_data, self.settings.matching, event_name):
            decision.action, decision.reason = "skip", "insufficient_customer_data"
            decision.errors = [FieldError(
                "user",
                "not enough customer information to match under the "
                f"'{self.settings.matching}' policy (keys: {', '.join(sorted(user_data)) or 'none'})",
            )]
            return decision
        decision.server_event = server_event
        return decision


def _text_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
