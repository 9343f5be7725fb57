"""Which normalizer each customer-information key uses, and whether its value is hashed. Data, not code.

The two tables are the single place that ties a key to its rule (identity-rules.md "Per key"):

- :data:`CAPI_RULES` — Conversions API ``user_data`` keys (conversions-api.md §3.1).
- :data:`AUDIENCE_RULES` — Custom Audience multi-key schema keys (audiences-and-catalog.md §2.2-2.3), each
  read from one member field; ``FI`` and ``DOBY``/``DOBM``/``DOBD`` are projections of the normalized first
  name and birth date. :data:`MEMBER_FIELDS` is derived from it (member field -> the keys it fills).

``needs`` says which context part a normalizer takes as its second argument, so the entry points can pass
exactly that part and memoize on (key, raw value, that part).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import Any

from metabridge.identity.birthdate import normalize_birthdate
from metabridge.identity.email import normalize_email
from metabridge.identity.gender import normalize_gender
from metabridge.identity.ids import (
    normalize_extern_id,
    normalize_external_id,
    normalize_fbc,
    normalize_fbp,
    normalize_ip_address,
    normalize_madid,
    normalize_passthrough,
)
from metabridge.identity.location import normalize_country, normalize_state, normalize_zip
from metabridge.identity.names import first_initial, normalize_city, normalize_name
from metabridge.identity.phone import normalize_phone, phone_region_warning

__all__ = [
    "AUDIENCE_RULES",
    "CAPI_RULES",
    "MEMBER_FIELDS",
    "AudienceKeyRule",
    "FieldRule",
    "Hashing",
    "MemberFieldRule",
    "Needs",
]


class Needs(IntEnum):
    """The context part a normalizer takes as its second argument (index into a per-call tuple)."""

    NOTHING = 0
    REGION = 1  # phone: the record's own country, else IdentityContext.default_country
    COUNTRY = 2  # state, zip: the record's own country only (alpha-2 or None)
    DATE_ORDER = 3  # birth date: IdentityContext.date_order
    EXTERNAL_ID_HASHING = 4  # CAPI external_id: IdentityContext.external_id_hashing


class Hashing(Enum):
    """Whether a key's normalized value is sent as its SHA-256."""

    ALWAYS = "always"
    NEVER = "never"
    BY_SETTING = "by IdentityContext.external_id_hashing"


Normalizer = Callable[..., str]
Warner = Callable[[str, Any], "str | None"]


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one CAPI ``user_data`` key is normalized and sent.

    ``multi``: a list of several values may be sent (every hashed key and external_id, D-CIP); other keys
    take one value, so extra list items are left out with a warning.
    """

    normalize: Normalizer
    hashing: Hashing
    needs: Needs = Needs.NOTHING
    multi: bool = True
    warn: Warner | None = None


_HASHED = Hashing.ALWAYS
_RAW = Hashing.NEVER
_pass = FieldRule(normalize_passthrough, _RAW, multi=False)

CAPI_RULES: Mapping[str, FieldRule] = MappingProxyType(
    {
        "em": FieldRule(normalize_email, _HASHED),
        "ph": FieldRule(normalize_phone, _HASHED, Needs.REGION, warn=phone_region_warning),
        "fn": FieldRule(normalize_name, _HASHED),
        "ln": FieldRule(normalize_name, _HASHED),
        "ge": FieldRule(normalize_gender, _HASHED),
        "db": FieldRule(normalize_birthdate, _HASHED, Needs.DATE_ORDER),
        "ct": FieldRule(normalize_city, _HASHED),
        "st": FieldRule(normalize_state, _HASHED, Needs.COUNTRY),
        "zp": FieldRule(normalize_zip, _HASHED, Needs.COUNTRY),
        "country": FieldRule(normalize_country, _HASHED),
        "external_id": FieldRule(normalize_external_id, Hashing.BY_SETTING, Needs.EXTERNAL_ID_HASHING),
        "client_ip_address": FieldRule(normalize_ip_address, _RAW, multi=False),
        "client_user_agent": _pass,
        "fbc": FieldRule(normalize_fbc, _RAW, multi=False),
        "fbp": FieldRule(normalize_fbp, _RAW, multi=False),
        "subscription_id": _pass,
        "fb_login_id": _pass,
        "lead_id": _pass,
        "anon_id": _pass,
        "madid": FieldRule(normalize_madid, _RAW, multi=False),
        "page_id": _pass,
        "page_scoped_user_id": _pass,
        "ctwa_clid": _pass,
        "ig_account_id": _pass,
        "ig_sid": _pass,
        "whatsapp_business_account_id": _pass,
        "instagram_business_account_id": _pass,
    }
)


def _year(yyyymmdd: str) -> str:
    return yyyymmdd[:4]


def _month(yyyymmdd: str) -> str:
    return yyyymmdd[4:6]


def _day(yyyymmdd: str) -> str:
    return yyyymmdd[6:8]


@dataclass(frozen=True, slots=True)
class AudienceKeyRule:
    """How one audience schema key is filled: from which member field, by which normalizer, hashed or not.

    ``project`` derives the key from the source field's normalized value (``FI`` from the first name,
    ``DOBY`` from the birth date); ``None`` means the normalized value itself.
    """

    source: str
    normalize: Normalizer
    hashed: bool
    needs: Needs = Needs.NOTHING
    project: Callable[[str], str] | None = None
    warn: Warner | None = None


AUDIENCE_RULES: Mapping[str, AudienceKeyRule] = MappingProxyType(
    {
        "EMAIL": AudienceKeyRule("email", normalize_email, True),
        "PHONE": AudienceKeyRule("phone", normalize_phone, True, Needs.REGION, warn=phone_region_warning),
        "FN": AudienceKeyRule("first_name", normalize_name, True),
        "FI": AudienceKeyRule("first_name", normalize_name, True, project=first_initial),
        "LN": AudienceKeyRule("last_name", normalize_name, True),
        "CT": AudienceKeyRule("city", normalize_city, True),
        "ST": AudienceKeyRule("state", normalize_state, True, Needs.COUNTRY),
        "ZIP": AudienceKeyRule("zip", normalize_zip, True, Needs.COUNTRY),
        "COUNTRY": AudienceKeyRule("country", normalize_country, True),
        "DOBY": AudienceKeyRule("birthdate", normalize_birthdate, True, Needs.DATE_ORDER, project=_year),
        "DOBM": AudienceKeyRule("birthdate", normalize_birthdate, True, Needs.DATE_ORDER, project=_month),
        "DOBD": AudienceKeyRule("birthdate", normalize_birthdate, True, Needs.DATE_ORDER, project=_day),
        "GEN": AudienceKeyRule("gender", normalize_gender, True),
        "EXTERN_ID": AudienceKeyRule("external_id", normalize_extern_id, False),
        "MADID": AudienceKeyRule("madid", normalize_madid, False),
    }
)


@dataclass(frozen=True, slots=True)
class MemberFieldRule:
    """One member field, normalized once, and the audience keys ``(key, project, hashed)`` it fills."""

    normalize: Normalizer
    needs: Needs
    warn: Warner | None
    outputs: tuple[tuple[str, Callable[[str], str] | None, bool], ...]


def _member_fields(rules: Mapping[str, AudienceKeyRule]) -> dict[str, MemberFieldRule]:
    grouped: dict[str, list[tuple[str, AudienceKeyRule]]] = {}
    for key, rule in rules.items():
        grouped.setdefault(rule.source, []).append((key, rule))
    fields: dict[str, MemberFieldRule] = {}
    for source, items in grouped.items():
        first = items[0][1]
        for _, rule in items:
            if (rule.normalize, rule.needs, rule.warn) != (first.normalize, first.needs, first.warn):
                raise AssertionError(f"audience keys read from {source!r} must share one normalizer")
        outputs = tuple((key, rule.project, rule.hashed) for key, rule in items)
        fields[source] = MemberFieldRule(first.normalize, first.needs, first.warn, outputs)
    return fields


#: member field -> how it is normalized and which schema keys it fills (derived from AUDIENCE_RULES).
MEMBER_FIELDS: Mapping[str, MemberFieldRule] = MappingProxyType(_member_fields(AUDIENCE_RULES))
