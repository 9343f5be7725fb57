"""The baseline: the same incoming events turned into request bodies with the official SDK.

``facebook-business`` (``facebook_business.adobjects.serverside``) is what an integrator would otherwise
use. This module is the integrator code such a service needs around it, written as a careful integrator
would (conversions-api.md §7, §11 "If using the official SDK"):

- map the incoming ``user`` / ``properties`` keys onto ``UserData`` / ``CustomData`` / ``Content``;
- pre-convert what the SDK's API types require: ``Gender`` enum from gender words (``m``, ``Male``,
  ``woman``, ``Mr.`` ...; other words are left out), ``ActionSource`` enum, ``int`` ``event_time`` from ISO
  8601 or Unix text, ``float`` ``value`` from numeric text, ``fbc`` from a landing URL's ``fbclid``;
- feed only values the SDK accepts: ``em``, ``ph`` and ``country`` raise inside ``EventRequest.normalize()``
  and would fail the *whole request*, so each such value is checked first with the SDK's own
  ``Normalize.normalize_field_skip_hashing`` and left out (and counted) when it raises;
- build an ``Event`` per incoming event inside ``try``; an event the SDK refuses is counted and skipped;
- per batch of <= 1,000: ``EventRequest(pixel_id, events, partner_agent).get_params()`` — this runs
  ``normalize()`` (per event: normalization, SHA-256, ``json.dumps``) — then the transport's JSON step
  (``api._top_level_param_json_encode``: ``data`` is JSON-encoded again, sorted keys, compact) and UTF-8
  bytes. Should a batch still raise, its events are normalized one by one and the offenders dropped.

Not done: ``execute()`` (network) and the final ``application/x-www-form-urlencoded`` quoting of the form
body that ``requests`` applies; metabridge's side ends at JSON bytes too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.content import Content
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.gender import Gender
from facebook_business.adobjects.serverside.normalize import Normalize
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import _top_level_param_json_encode

__all__ = ["SdkBaseline", "EVENT_NAMES"]

MAX_EVENTS_PER_REQUEST = 1_000
PARTNER_AGENT = "metabridge-bench"

#: Incoming event name -> Meta event name (the integrator's own table; same names metabridge maps).
EVENT_NAMES: Mapping[str, str] = {
    "page_view": "PageView",
    "view_item": "ViewContent",
    "add_to_cart": "AddToCart",
    "begin_checkout": "InitiateCheckout",
    "purchase": "Purchase",
    "sign_up": "CompleteRegistration",
    "generate_lead": "Lead",
    "search": "Search",
}

_GENDERS: Mapping[str, Gender] = {
    "m": Gender.MALE, "male": Gender.MALE, "man": Gender.MALE, "mr": Gender.MALE,
    "f": Gender.FEMALE, "female": Gender.FEMALE, "woman": Gender.FEMALE, "mrs": Gender.FEMALE,
    "ms": Gender.FEMALE,
}
_ACTION_SOURCES: Mapping[str, ActionSource] = {a.value: a for a in ActionSource}

def _event_time(value: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    try:
        return int(float(text))
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp())


def _fbclid(url: str | None) -> str | None:
    if not url or "fbclid=" not in url:
        return None
    values = parse_qs(urlsplit(url).query).get("fbclid")
    return values[0] if values else None


class SdkBaseline:
    """Raw incoming events -> SDK objects -> request bodies, counting what the SDK cannot take."""

    def __init__(self, pixel_id: str = "1") -> None:
        self.pixel_id = pixel_id
        self.rejected_events: Counter[str] = Counter()
        self.dropped_values: Counter[str] = Counter()
        self.sent = 0
        self.requests = 0
        self.bytes = 0

    # --- one event -----------------------------------------------------------------------------------
    def _accepted(self, field: str, value: str | None) -> str | None:
        if not value:
            return None
        try:
            Normalize.normalize_field_skip_hashing(field, value)
        except (TypeError, ValueError):
            self.dropped_values[field] += 1
            return None
        return value

    def user_data(self, user: Mapping[str, Any], url: str | None, time_s: int) -> UserData:
        get = user.get
        gender = None
        word = get("gender")
        if word:
            gender = _GENDERS.get(word.strip().lower().rstrip("."))
            if gender is None:
                self.dropped_values["ge"] += 1
        fbc = get("fbc")
        if not fbc:
            fbclid = _fbclid(url)
            if fbclid:
                fbc = f"fb.1.{time_s * 1000}.{fbclid}"
        # The SDK skips None and "" itself; its setters take the strings as they are.
        return UserData(
            email=self._accepted("em", get("email")),
            phone=self._accepted("ph", get("phone")),
            gender=gender,
            date_of_birth=get("birthdate"),
            first_name=get("first_name"),
            last_name=get("last_name"),
            city=get("city"),
            state=get("state"),
            zip_code=get("zip"),
            country_code=self._accepted("country", get("country")),
            external_id=get("external_id"),
            client_ip_address=get("ip"),
            client_user_agent=get("user_agent"),
            fbp=get("fbp"),
            fbc=fbc,
        )

    @staticmethod
    def custom_data(properties: Mapping[str, Any]) -> CustomData | None:
        if not properties:
            return None
        value = properties.get("value")
        if isinstance(value, str):
            value = float(value)
        contents, ids, count = [], [], 0
        for item in properties.get("items") or ():
            quantity = int(item.get("quantity") or 1)
            price = item.get("price")
            contents.append(Content(
                product_id=str(item["id"]),
                quantity=quantity,
                item_price=float(price) if price is not None else None,
            ))
            ids.append(str(item["id"]))
            count += quantity
        return CustomData(
            value=value,
            currency=properties.get("currency"),
            order_id=properties.get("order_id"),
            contents=contents or None,
            content_ids=ids or None,
            num_items=count or None,
            content_type="product" if contents else None,
        )

    def event(self, raw: Mapping[str, Any]) -> Event | None:
        """The SDK event for one incoming event, or None (counted) when the SDK refuses it."""
        try:
            url = raw.get("url")
            time_s = _event_time(raw["timestamp"])
            source = raw.get("action_source")
            action_source = _ACTION_SOURCES[source] if source else (
                ActionSource.WEBSITE if url else ActionSource.SYSTEM_GENERATED
            )
            name = raw["event"]
            return Event(
                event_name=EVENT_NAMES.get(name, name),
                event_time=time_s,
                event_id=raw.get("event_id"),
                event_source_url=url,
                action_source=action_source,
                user_data=self.user_data(raw.get("user") or {}, url, time_s),
                custom_data=self.custom_data(raw.get("properties") or {}),
            )
        except Exception as exc:  # noqa: BLE001 - counting what the SDK refuses is the point
            self.rejected_events[type(exc).__name__] += 1
            return None

    # --- one request ---------------------------------------------------------------------------------
    def request_bytes(self, batch: list[Event]) -> dict[str, bytes]:
        """What the SDK's transport would put in the form: each param JSON-encoded, as UTF-8 bytes."""
        try:
            params = EventRequest(pixel_id=self.pixel_id, events=batch, partner_agent=PARTNER_AGENT).get_params()
        except Exception:  # noqa: BLE001 - one bad event fails the request: find and drop it
            good = []
            for event in batch:
                try:
                    event.normalize()
                except Exception as exc:  # noqa: BLE001
                    self.rejected_events[f"normalize:{type(exc).__name__}"] += 1
                else:
                    good.append(event)
            batch = good
            params = EventRequest(pixel_id=self.pixel_id, events=batch, partner_agent=PARTNER_AGENT).get_params()
        encoded = _top_level_param_json_encode(params)
        body = {key: value.encode() for key, value in encoded.items()}
        self.sent += len(batch)
        self.requests += 1
        self.bytes += sum(len(v) for v in body.values())
        return body

    def bodies(self, raw_events: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, bytes]]:
        batch: list[Event] = []
        for raw in raw_events:
            event = self.event(raw)
            if event is None:
                continue
            batch.append(event)
            if len(batch) == MAX_EVENTS_PER_REQUEST:
                yield self.request_bytes(batch)
                batch = []
        if batch:
            yield self.request_bytes(batch)
