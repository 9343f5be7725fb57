"""Conversions API event validation, as Meta documents it (spec §1-§6).

The sandbox checks what metabridge sends independently of ``metabridge.events``: nothing here is shared
with the code under test. Where the domain is a table (action sources, required fields per action
source, hashed keys, matching baseline, business-messaging ids) the rule *is* a table below; the
functions only walk them.

Decisions where Meta is silent or where the sandbox is deliberately stricter than Meta (because
metabridge promises more than Meta requires) are marked **[sandbox]**:

- **[sandbox]** ``event_time`` must be a JSON integer (Meta also converts some strings).
- **[sandbox]** future ``event_time``: more than 7 days ahead is rejected (catches milliseconds sent as
  seconds); more than 60 s ahead is accepted with a warning in the answer's ``messages`` (Meta accepts
  and flags such events in Events Manager; RudderStack rejects > 1 min).
- **[sandbox]** hashed ``user_data`` keys must be lowercase SHA-256 hex (a parameter-builder
  ``.<appendix>`` suffix is allowed, as Meta allows it); plaintext, uppercase hex, MD5 and the hash of the
  empty string are rejected with code 100 — metabridge must never send those.
- **[sandbox]** unknown ``user_data`` keys, unparsable ``client_ip_address``, non-http(s)
  ``event_source_url`` are rejected (they would be typos or bugs in metabridge).
- an invalid ``fbp`` is a warning (Meta warns, it does not reject), an invalid ``fbc`` is 100/2804001.
- empty ``data`` is rejected (code 100).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTION_SOURCES",
    "BROAD_KEY_COMBINATIONS",
    "DEFAULT_MAX_AGE_SECONDS",
    "FUTURE_WARNING_SECONDS",
    "HASHED_USER_DATA_KEYS",
    "MAX_AGE_SECONDS_BY_ACTION_SOURCE",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_FUTURE_SECONDS",
    "MESSAGING_CHANNEL_REQUIRED_IDS",
    "PLAIN_USER_DATA_KEYS",
    "REQUIRED_CUSTOM_DATA_BY_EVENT",
    "REQUIRED_EVENT_FIELDS",
    "REQUIRED_FIELDS_BY_ACTION_SOURCE",
    "SUBCODES",
    "EventError",
    "ValidationResult",
    "validate_event",
    "validate_events",
]

DAY = 86_400
MAX_EVENTS_PER_REQUEST = 1_000

ACTION_SOURCES: frozenset[str] = frozenset(
    {
        "email",
        "website",
        "app",
        "phone_call",
        "chat",
        "physical_store",
        "system_generated",
        "business_messaging",
        "other",
    }
)

#: Every event needs these (D-SE).
REQUIRED_EVENT_FIELDS: tuple[str, ...] = ("event_name", "event_time", "action_source", "user_data")

#: Extra required fields per ``action_source`` (dotted paths) (D-SE, D-BP; D-SE app_data; D-BM).
REQUIRED_FIELDS_BY_ACTION_SOURCE: Mapping[str, tuple[str, ...]] = {
    "website": ("event_source_url", "user_data.client_user_agent"),
    "app": ("app_data",),
    "business_messaging": ("messaging_channel",),
}

#: How old ``event_time`` may be (D-SE, D-USE): 7 days; physical_store (offline) 62 days.
DEFAULT_MAX_AGE_SECONDS = 7 * DAY
MAX_AGE_SECONDS_BY_ACTION_SOURCE: Mapping[str, int] = {"physical_store": 62 * DAY}
MAX_FUTURE_SECONDS = 7 * DAY  # [sandbox] reject beyond
FUTURE_WARNING_SECONDS = 60  # [sandbox] warn beyond

#: Keys Meta only accepts hashed (D-CIP; legacy split keys from the SDK).
HASHED_USER_DATA_KEYS: frozenset[str] = frozenset(
    {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country",
     "f5first", "f5last", "fi", "dobd", "dobm", "doby"}
)  # fmt: skip

#: Keys sent as is (D-CIP §3.1, D-BM). ``external_id`` may be hashed or not.
PLAIN_USER_DATA_KEYS: frozenset[str] = frozenset(
    {"external_id", "client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id",
     "fb_login_id", "lead_id", "anon_id", "madid", "page_id", "page_scoped_user_id", "ctwa_clid",
     "ig_account_id", "ig_sid", "whatsapp_business_account_id", "instagram_business_account_id"}
)  # fmt: skip

#: §3.3 matching baseline: an event whose customer-information keys are all within one of these is invalid.
BROAD_KEY_COMBINATIONS: tuple[frozenset[str], ...] = (
    frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)

#: §6.3 business messaging: ``messaging_channel`` → (required user_data ids, subcode when missing).
MESSAGING_CHANNEL_REQUIRED_IDS: Mapping[str, tuple[tuple[str, ...], int | None]] = {
    "messenger": (("page_id", "page_scoped_user_id"), None),
    "whatsapp": (("whatsapp_business_account_id", "ctwa_clid"), 2804116),
    "instagram": (("instagram_business_account_id", "ig_sid"), None),
}

#: §5: ``event_name`` → custom_data keys it requires, with the subcode Meta answers when one is missing.
REQUIRED_CUSTOM_DATA_BY_EVENT: Mapping[str, tuple[tuple[str, int | None], ...]] = {
    "Purchase": (("value", 2804009), ("currency", None)),
}

#: Known CAPI subcodes (§1.4) with Meta's English ``error_user_title``.
SUBCODES: Mapping[str, tuple[int, str]] = {
    "too_old": (2804003, "Event Timestamp Too Old"),
    "purchase_value": (2804009, "Missing Value for Purchase Event"),
    "fbc": (2804001, "Click ID Incorrectly Formatted"),
    "baseline": (2804050, "Insufficient Customer Information"),
    "lead_id": (2804036, "Invalid Lead ID"),
    "whatsapp_ids": (2804116, "Missing Business Messaging Parameters"),
}

LDU_STATES: frozenset[int] = frozenset({0, *range(1000, 1014)})
LDU_COUNTRIES: frozenset[int] = frozenset({0, 1})

_SHA256_RE = re.compile(r"^[0-9a-f]{64}(?:\.[A-Za-z0-9_-]{2,16})?\Z")
_HEX64_ANY_CASE_RE = re.compile(r"^[0-9a-fA-F]{64}\Z")
_HEX32_RE = re.compile(r"^[0-9a-fA-F]{32}\Z")
# fb.<subdomainIndex>.<creationTime>.<fbclid|random>[.<parameter-builder appendix>] (D-FBC, D-PB)
_FBC_RE = re.compile(r"^fb\.\d+\.(?P<ms>\d+)\.[^.\s]+(?:\.[A-Za-z0-9_-]+)?\Z")
_FBP_RE = re.compile(r"^fb\.\d+\.\d+\.[^.\s]+(?:\.[A-Za-z0-9_-]+)?\Z")
_IPV4_RE = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\Z")
_LEAD_ID_RE = re.compile(r"^\d{15,16}\Z")
_DIGITS_RE = re.compile(r"^\d+\Z")
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}\Z")
_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?\Z")
_URL_RE = re.compile(r"^https?://\S+\Z", re.IGNORECASE)
_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass(frozen=True, slots=True)
class EventError:
    """Why one event makes the request invalid. ``field`` is a dotted path inside the event."""

    event_index: int
    field: str
    user_title: str
    user_msg: str
    subcode: int | None = None
    code: int = 100


@dataclass(slots=True)
class ValidationResult:
    """First error found (the whole request fails on it, D-USE) and warnings for ``messages``."""

    error: EventError | None = None
    warnings: list[str] = field(default_factory=list)


class _Reject(Exception):
    def __init__(self, field: str, title: str, msg: str, subcode: int | None = None) -> None:
        super().__init__(msg)
        self.field, self.title, self.msg, self.subcode = field, title, msg, subcode


def _missing(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _get_path(event: Mapping[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _items(key: str, value: Any) -> list[str]:
    """String or list of strings (D-CIP "string or list<string>"), else reject."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _Reject(
            f"user_data.{key}", "Invalid Customer Information", f"user_data.{key} is an empty list."
        )
    for item in items:
        if not isinstance(item, str) or not item:
            raise _Reject(
                f"user_data.{key}",
                "Invalid Customer Information",
                f"user_data.{key} must be a non-empty string or a list of non-empty strings.",
            )
    return items


def _check_required(event: Mapping[str, Any]) -> None:
    for name in REQUIRED_EVENT_FIELDS:
        if _missing(event.get(name)) and not (name == "user_data" and event.get(name) == {}):
            raise _Reject(name, "Missing Required Parameter", f"The parameter {name} is required.")
    if not isinstance(event["event_name"], str):
        raise _Reject("event_name", "Invalid Event Name", "event_name must be a string.")
    action_source = event["action_source"]
    if not isinstance(action_source, str) or action_source not in ACTION_SOURCES:
        raise _Reject(
            "action_source",
            "Invalid Action Source",
            f"action_source {action_source!r} is not one of: {', '.join(sorted(ACTION_SOURCES))}.",
        )
    if not isinstance(event["user_data"], dict):
        raise _Reject("user_data", "Invalid Customer Information", "user_data must be an object.")
    for path in REQUIRED_FIELDS_BY_ACTION_SOURCE.get(action_source, ()):
        if _missing(_get_path(event, path)):
            raise _Reject(
                path,
                "Missing Required Parameter",
                f"The parameter {path} is required for {action_source} events.",
            )


def _check_time(event: Mapping[str, Any], now: float, warnings: list[str], index: int) -> None:
    event_time = event["event_time"]
    if not _is_int(event_time):
        raise _Reject(
            "event_time",
            "Invalid Event Timestamp",
            "event_time must be an integer Unix timestamp in seconds.",
        )
    action_source = event["action_source"]
    max_age = MAX_AGE_SECONDS_BY_ACTION_SOURCE.get(action_source, DEFAULT_MAX_AGE_SECONDS)
    if event_time < now - max_age:
        subcode, title = SUBCODES["too_old"]
        days = max_age // DAY
        raise _Reject(
            "event_time",
            title,
            f"The timestamp for this event is too far in the past. Events need to be sent from your server "
            f"within {days} days of when they occurred.",
            subcode,
        )
    ahead = event_time - now
    if ahead > MAX_FUTURE_SECONDS:
        raise _Reject(
            "event_time",
            "Event Timestamp In The Future",
            "The timestamp for this event is more than 7 days in the future (milliseconds sent as seconds?).",
        )
    if ahead > FUTURE_WARNING_SECONDS:
        warnings.append(f"data[{index}].event_time is {int(ahead)} seconds in the future")


def _check_event_fields(event: Mapping[str, Any]) -> None:
    url = event.get("event_source_url")
    if url is not None and (not isinstance(url, str) or not _URL_RE.match(url)):
        raise _Reject(
            "event_source_url", "Invalid Event Source URL", "event_source_url must be an http(s) URL."
        )
    event_id = event.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        raise _Reject("event_id", "Invalid Event ID", "event_id must be a string.")
    opt_out = event.get("opt_out")
    if opt_out is not None and not isinstance(opt_out, bool):
        raise _Reject("opt_out", "Invalid Opt Out", "opt_out must be a boolean.")
    custom_data = event.get("custom_data")
    if custom_data is not None and not isinstance(custom_data, dict):
        raise _Reject("custom_data", "Invalid Custom Data", "custom_data must be an object.")
    app_data = event.get("app_data")
    if app_data is not None and not isinstance(app_data, dict):
        raise _Reject("app_data", "Invalid App Data", "app_data must be an object.")
    _check_ldu(event)


def _check_ldu(event: Mapping[str, Any]) -> None:
    options = event.get("data_processing_options")
    if options is None:
        return
    if not isinstance(options, list) or any(o != "LDU" for o in options):
        raise _Reject(
            "data_processing_options",
            "Invalid Data Processing Options",
            'data_processing_options must be [] or ["LDU"].',
        )
    country = event.get("data_processing_options_country")
    state = event.get("data_processing_options_state")
    if options and country is None:
        raise _Reject(
            "data_processing_options_country",
            "Missing Data Processing Options Country",
            "data_processing_options_country is required with LDU (1 = USA, 0 = geolocate).",
        )
    if country is not None and (not _is_int(country) or country not in LDU_COUNTRIES):
        raise _Reject(
            "data_processing_options_country",
            "Invalid Data Processing Options Country",
            "data_processing_options_country must be 0 or 1.",
        )
    if state is not None and (not _is_int(state) or state not in LDU_STATES):
        raise _Reject(
            "data_processing_options_state",
            "Invalid Data Processing Options State",
            "data_processing_options_state must be 0 or a state code 1000-1013.",
        )


def _valid_ip(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if _IPV4_RE.match(value):  # fast path: ipaddress is slow for the common case
        return True
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _good_hash(value: Any) -> bool:
    return (
        isinstance(value, str) and _SHA256_RE.match(value) is not None and not value.startswith(_EMPTY_SHA256)
    )


def _check_hashed(key: str, value: Any) -> None:
    # Fast path for what metabridge sends: one lowercase SHA-256 (or a list of them).
    if _good_hash(value) or (isinstance(value, list) and value and all(_good_hash(v) for v in value)):
        return
    for item in _items(key, value):
        if _SHA256_RE.match(item):
            if item.startswith(_EMPTY_SHA256):
                raise _Reject(
                    f"user_data.{key}",
                    "Hash Of Empty Value",
                    f"user_data.{key} is the SHA-256 of an empty string; leave the key out instead.",
                )
            continue
        if _HEX64_ANY_CASE_RE.match(item):
            detail = "uppercase hex; send lowercase SHA-256 hex"
        elif _HEX32_RE.match(item):
            detail = "an MD5-length hash; send SHA-256"
        else:
            detail = "not hashed; normalize and SHA-256 it"
        raise _Reject(
            f"user_data.{key}",
            "Unhashed Customer Information",
            f"user_data.{key} must be a lowercase SHA-256 hex digest ({detail}).",
        )


def _check_user_data(event: Mapping[str, Any], warnings: list[str], index: int) -> None:
    user_data: dict[str, Any] = event["user_data"]
    for key, value in user_data.items():
        if key in HASHED_USER_DATA_KEYS:
            _check_hashed(key, value)
        elif key not in PLAIN_USER_DATA_KEYS:
            raise _Reject(
                f"user_data.{key}",
                "Unknown Customer Information Parameter",
                f"user_data.{key} is not a known key.",
            )
    if "external_id" in user_data:
        for item in _items("external_id", user_data["external_id"]):
            if _HEX64_ANY_CASE_RE.match(item) and item != item.lower():
                raise _Reject(
                    "user_data.external_id",
                    "Invalid External ID Hash",
                    "user_data.external_id looks like a SHA-256 hash but is not lowercase hex.",
                )
    ip = user_data.get("client_ip_address")
    if ip is not None and not _valid_ip(ip):
        raise _Reject(
            "user_data.client_ip_address",
            "Invalid IP Address",
            "user_data.client_ip_address must be a valid IPv4 or IPv6 address.",
        )
    ua = user_data.get("client_user_agent")
    if ua is not None and not isinstance(ua, str):
        raise _Reject(
            "user_data.client_user_agent", "Invalid User Agent", "client_user_agent must be a string."
        )
    fbc = user_data.get("fbc")
    fbc_match = _FBC_RE.match(fbc) if isinstance(fbc, str) else None
    if fbc is not None and fbc_match is None:
        subcode, title = SUBCODES["fbc"]
        raise _Reject(
            "user_data.fbc",
            title,
            "The fbc parameter must be formatted as fb.<subdomainIndex>.<creationTime>.<fbclid>.",
            subcode,
        )
    if fbc_match is not None and len(fbc_match.group("ms")) != 13:
        warnings.append(f"data[{index}].user_data.fbc creationTime should be Unix milliseconds (13 digits)")
    fbp = user_data.get("fbp")
    if fbp is not None and (not isinstance(fbp, str) or not _FBP_RE.match(fbp)):
        warnings.append(
            f"data[{index}].user_data.fbp is not formatted as fb.<subdomainIndex>.<creationTime>.<random>"
        )
    lead_id = user_data.get("lead_id")
    lead_text = str(lead_id) if _is_int(lead_id) or isinstance(lead_id, str) else ""
    if lead_id is not None and not _LEAD_ID_RE.match(lead_text):
        subcode, title = SUBCODES["lead_id"]
        raise _Reject(
            "user_data.lead_id", title, "lead_id must be the 15-16 digit id of a Meta lead.", subcode
        )
    login_id = user_data.get("fb_login_id")
    if login_id is not None and not (
        _is_int(login_id) or (isinstance(login_id, str) and _DIGITS_RE.match(login_id))
    ):
        raise _Reject("user_data.fb_login_id", "Invalid Login ID", "fb_login_id must be an integer id.")


def _check_messaging(event: Mapping[str, Any]) -> None:
    if event["action_source"] != "business_messaging":
        return
    channel = event.get("messaging_channel")
    spec = MESSAGING_CHANNEL_REQUIRED_IDS.get(channel) if isinstance(channel, str) else None
    if spec is None:
        raise _Reject(
            "messaging_channel",
            "Invalid Messaging Channel",
            f"messaging_channel must be one of: {', '.join(sorted(MESSAGING_CHANNEL_REQUIRED_IDS))}.",
        )
    required, subcode = spec
    user_data = event["user_data"]
    for key in required:
        if _missing(user_data.get(key)):
            title = SUBCODES["whatsapp_ids"][1] if subcode else "Missing Required Parameter"
            raise _Reject(
                f"user_data.{key}",
                title,
                f"{channel} business messaging events need user_data {' and '.join(required)}.",
                subcode,
            )


def _check_baseline(event: Mapping[str, Any]) -> None:
    keys = frozenset(k for k, v in event["user_data"].items() if not _missing(v))
    if any(keys <= combination for combination in BROAD_KEY_COMBINATIONS):
        subcode, title = SUBCODES["baseline"]
        shown = ", ".join(sorted(keys)) or "none"
        raise _Reject(
            "user_data",
            title,
            f"The customer information parameters ({shown}) are too broad to match; add em, ph, "
            "external_id, client_ip_address, fbp/fbc or fn+ln.",
            subcode,
        )


def _check_custom_data(event: Mapping[str, Any]) -> None:
    custom_data = event.get("custom_data") or {}
    for key, subcode in REQUIRED_CUSTOM_DATA_BY_EVENT.get(event["event_name"], ()):
        if _missing(custom_data.get(key)):
            title = SUBCODES["purchase_value"][1] if subcode else "Missing Required Parameter"
            raise _Reject(
                f"custom_data.{key}",
                title,
                f"{event['event_name']} events require custom_data.{key}.",
                subcode,
            )
    value = custom_data.get("value")
    if value is not None and not (
        (isinstance(value, (int, float)) and not isinstance(value, bool))
        or (isinstance(value, str) and _NUMBER_RE.match(value))
    ):
        raise _Reject("custom_data.value", "Invalid Value", "custom_data.value must be a number.")
    currency = custom_data.get("currency")
    if currency is not None and not (isinstance(currency, str) and _CURRENCY_RE.match(currency)):
        raise _Reject(
            "custom_data.currency", "Invalid Currency", "custom_data.currency must be an ISO 4217 code."
        )
    contents = custom_data.get("contents")
    if contents is not None and not _valid_contents(contents):
        raise _Reject(
            "custom_data.contents", "Invalid Contents", "contents must be a list of objects with an id."
        )


def _valid_contents(contents: Any) -> bool:
    return isinstance(contents, list) and all(
        isinstance(c, dict) and not _missing(c.get("id")) for c in contents
    )


def validate_event(event: Any, index: int, now: float, warnings: list[str]) -> EventError | None:
    """Check one event; returns the first problem, appends warnings."""
    try:
        if not isinstance(event, dict):
            raise _Reject("", "Invalid Event", "Each event must be a JSON object.")
        _check_required(event)
        _check_time(event, now, warnings, index)
        _check_event_fields(event)
        _check_user_data(event, warnings, index)
        _check_messaging(event)
        _check_baseline(event)
        _check_custom_data(event)
    except _Reject as reject:
        return EventError(
            event_index=index,
            field=reject.field,
            user_title=reject.title,
            user_msg=f"{reject.msg} (data[{index}]{'.' + reject.field if reject.field else ''})",
            subcode=reject.subcode,
        )
    return None


def validate_events(events: list[Any], now: float) -> ValidationResult:
    """Validate a request's events in order; stops at the first invalid one (the batch is rejected)."""
    result = ValidationResult()
    for index, event in enumerate(events):
        error = validate_event(event, index, now, result.warnings)
        if error is not None:
            result.error = error
            return result
    return result
