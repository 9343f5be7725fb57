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

from metabridge.events.customer import (
    DEFAULT_CACHE_SIZE,
    Customer,
    CustomerCache,
    customer_from_user,
    user_shape,
)
from metabridge.events.errors import FieldError
from metabridge.events.mapping import PropertiesPlan, fbclid_from_url, map_properties, properties_plan
from metabridge.events.model import IncomingEvent, PlainEvent, parse_event, read_plain_event
from metabridge.events.names import EventNameResolver
from metabridge.events.policy import has_consent, meets_matching_policy
from metabridge.events.rules import check_event
from metabridge.events.settings import ConnectionSettings
from metabridge.identity.capi import normalize_value

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
    """Transforms events for one connection. Build once per connection; call per event.

    Speed: a connection sees the same people again and again, so the outcome of their customer data is
    cached per ``user`` content (:class:`~metabridge.events.customer.CustomerCache`, ``customer_cache_size``
    people; 0 turns it off, and with it the one-pass reading of customer data), and a *plain* event (:func:`~metabridge.events.model.read_plain_event`) is read
    without running the pydantic model. Both give exactly what the uncached, validated path gives.
    """

    def __init__(
        self, settings: ConnectionSettings, *, customer_cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        self.settings = settings
        self._names = EventNameResolver(settings.event_names)
        self._identity = settings.identity_context()
        self._customers = CustomerCache(self._identity, customer_cache_size)
        self._consent = settings.consent_category
        self._matching = settings.matching

    def parse(self, raw: Any) -> IncomingEvent | list[FieldError]:
        """Shape-check one raw event and give it a stable id if it has none."""
        event = parse_event(raw)
        if isinstance(event, IncomingEvent) and event.event_id is None:
            event.event_id = stable_event_id(raw)
        return event

    def process(self, raw: Any, *, index: int, now_ms: int, received_ms: int | None = None) -> Decision:
        """Parse and transform in one step; shape errors become an ``invalid`` decision."""
        if type(raw) is dict:
            plain = read_plain_event(raw)
            if plain is not None:
                decision = self._process_plain(raw, plain, index, now_ms, received_ms)
                if decision is not None:
                    return decision
        event = self.parse(raw)
        if isinstance(event, list):
            event_id = raw.get("event_id") if isinstance(raw, Mapping) else None
            name = raw.get("event") if isinstance(raw, Mapping) else None
            return Decision(index, _text_or_none(event_id), _text_or_none(name), "skip", "invalid", event)
        return self.transform(event, index=index, now_ms=now_ms, received_ms=received_ms)

    def _process_plain(
        self, raw: dict[str, Any], plain: PlainEvent, index: int, now_ms: int, received_ms: int | None
    ) -> Decision | None:
        """:meth:`process` for an event the model would take as it is; None when the model must read it
        after all (a ``user`` or ``properties`` key it would strip or reject)."""
        name, event_id, time_ms, url, referrer, action_source, channel, categories, user, properties = plain
        plan = None
        if properties:
            plan = properties_plan(properties)
            if not plan.clean:
                return None
        if not has_consent(categories, self._consent):
            if not user_shape(tuple(user)).clean:
                return None
            event_id = event_id if event_id is not None else stable_event_id(raw)
            return Decision(index, event_id, self._names(name), "skip", "no_consent", [], [])
        customer = self._customers.get(user)
        if customer is None:
            return None
        if event_id is None:  # only now: the model would have rejected keys orjson cannot write
            event_id = stable_event_id(raw)
        return self._decide(
            index, self._names(name), event_id, action_source, channel, time_ms or received_ms or now_ms, url,
            referrer, customer, properties, plan, _NO_OVERRIDES, None, now_ms,
        )

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
            extra = None
        else:
            event_name = fb.event_name or self._names(event.event)
            event_id = fb.event_id or event.event_id
            action_source = fb.action_source or event.action_source
            channel = fb.messaging_channel or event.messaging_channel
            user_overrides, custom_overrides = fb.user_data, fb.custom_data
            extra = fb.model_extra

        if not has_consent(event.consent_categories, self._consent):
            return Decision(index, event_id, event_name, "skip", "no_consent", [], [])
        customer = self._customers.get(event.user) if not user_overrides else None
        if customer is None:
            customer = customer_from_user(event.user, user_overrides, self._identity)
        return self._decide(
            index, event_name, event_id, action_source, channel, event.timestamp_ms or received_ms or now_ms,
            event.url, event.referrer_url, customer, event.properties, None, custom_overrides, extra, now_ms,
        )

    def _decide(
        self,
        index: int,
        event_name: str,
        event_id: str | None,
        action_source: str | None,
        channel: str | None,
        time_ms: int,
        url: str | None,
        referrer_url: str | None,
        customer: Customer,
        properties: Mapping[str, Any],
        plan: PropertiesPlan | None,
        custom_overrides: Mapping[str, Any],
        extra: Mapping[str, Any] | None,
        now_ms: int,
    ) -> Decision:
        """Build the server event from the read fields and decide (consent already checked)."""
        if not action_source:
            action_source = "website" if url else "system_generated"

        user_data = dict(customer.user_data)  # the cached one is shared by every event of the person
        warnings = list(customer.warnings)
        if not customer.fbc_given and url and "fbclid=" in url:
            fbclid = fbclid_from_url(url)
            if fbclid:  # an fbc built from the landing URL, at the event's time: per event, never cached
                outcome = normalize_value("fbc", f"fb.1.{time_ms}.{fbclid}", self._identity)
                if outcome.__class__ is str:
                    user_data["fbc"] = outcome  # type: ignore[assignment]
                else:
                    value, issue = outcome  # type: ignore[misc]
                    if value is not None:
                        user_data["fbc"] = value
                    warnings.append(FieldError("url", issue.message))
        custom_data, errors = map_properties(properties, custom_overrides, plan)

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
        if referrer_url:
            server_event["referrer_url"] = referrer_url
        if channel:
            server_event["messaging_channel"] = channel
        if extra:
            for key, value in extra.items():
                if key in EVENT_LEVEL_OVERRIDES:
                    server_event[key] = value
                else:
                    warnings.append(FieldError(
                        f"integrations.facebook.{key}", "is not a Conversions API server event field; ignored"
                    ))

        errors.extend(check_event(server_event, now_ms // 1000))
        if errors:
            return Decision(index, event_id, event_name, "skip", "invalid", errors, warnings)
        if not (customer.meets_baseline and self._matching == "meta") and not meets_matching_policy(
            user_data, self._matching, event_name
        ):
            return Decision(index, event_id, event_name, "skip", "insufficient_customer_data", [FieldError(
                "user",
                "not enough customer information to match under the "
                f"'{self._matching}' policy (keys: {', '.join(sorted(user_data)) or 'none'})",
            )], warnings)
        return Decision(index, event_id, event_name, "send", None, errors, warnings, server_event)


def _text_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
