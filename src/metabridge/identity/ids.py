"""How identifiers are normalized: external ids, mobile advertiser ids, IP address, fbc/fbp, other ids.

Rules (identity-rules.md, rows "external_id", "EXTERN_ID", "MADID", "client_ip_address", "fbc, fbp" and
the pass-through row; conversions-api.md §3.1, §6.2; audiences-and-catalog.md §2.3):

- CAPI ``external_id``: lowercase, whitespace removed, then hashed, as Meta's Pixel tools do, so server and
  browser ids match. When the connection turns hashing off (``IdentityContext.external_id_hashing=False``)
  the id is sent *as given, trimmed*: that setting exists for ids that other channels already send
  unhashed, and Meta asks for "the same format" everywhere (D-CIP), so no case folding is applied.
- audience ``EXTERN_ID``: trimmed, sent exactly, never hashed (Meta: "use the exact same format every time").
- ``madid`` / ``MADID``: lowercase, hyphens kept, never hashed.
- ``client_ip_address``: must parse as IPv4 or IPv6 (``ipaddress``); sent as given (trimmed), never hashed.
- ``fbc``/``fbp``: never hashed and never lowercased (the click id is case-sensitive, D-FBC); must be
  ``fb.<subdomain index>.<creation time ms>.<value>`` with an optional 5th ``.<appendix>`` segment added by
  Meta's parameter builder. A malformed ``fbc`` makes Meta answer 100/2804001, so it is left out.
- user agent, subscription/login/lead/anon ids, page and messaging ids: sent as given (trimmed), never hashed.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlsplit

from metabridge.identity._text import nfc_lower
from metabridge.identity.issues import UnusableValue

__all__ = [
    "build_fbc",
    "normalize_extern_id",
    "normalize_external_id",
    "normalize_fbc",
    "normalize_fbp",
    "normalize_ip_address",
    "normalize_madid",
    "normalize_passthrough",
]

EMPTY = "empty value"

# Dotted-quad IPv4 exactly as ipaddress accepts it (no leading zeros); anything else goes to ipaddress.
_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
# IPv6 made of hex groups with at most one "::" (no IPv4 tail, no zone id): what ipaddress accepts, at a
# fraction of its cost. Other spellings still go to ipaddress, so this only ever accepts early.
_H = "[0-9A-Fa-f]{1,4}"
_PLAIN_IPV6 = re.compile(
    "|".join(
        (
            f"(?:{_H}:){{7}}{_H}",
            f"(?:{_H}:){{1,7}}:",
            f"(?:{_H}:){{1,6}}:{_H}",
            f"(?:{_H}:){{1,5}}(?::{_H}){{1,2}}",
            f"(?:{_H}:){{1,4}}(?::{_H}){{1,3}}",
            f"(?:{_H}:){{1,3}}(?::{_H}){{1,4}}",
            f"(?:{_H}:){{1,2}}(?::{_H}){{1,5}}",
            f"{_H}:(?::{_H}){{1,6}}",
            f":(?:(?::{_H}){{1,7}}|:)",
        )
    )
)
_COOKIE = re.compile(r"fb\.[0-9]+\.[0-9]+\.[^.\s]+(?:\.[^.\s]+)?")


def normalize_external_id(value: str, hashing: bool = True) -> str:
    """Return the CAPI external_id to send: lowercased without whitespace when it will be hashed,
    else the trimmed value as given."""
    s = "".join(nfc_lower(value).split()) if hashing else value.strip()
    if not s:
        raise UnusableValue(EMPTY)
    return s


def normalize_extern_id(value: str) -> str:
    """Return the audience EXTERN_ID: trimmed and otherwise exactly as given (never hashed)."""
    s = value.strip()
    if not s:
        raise UnusableValue(EMPTY)
    return s


def normalize_madid(value: str) -> str:
    """Return the mobile advertiser id (IDFA / Android advertising id) trimmed, lowercased, hyphens kept."""
    s = value.strip().lower()
    if not s:
        raise UnusableValue(EMPTY)
    return s


def normalize_ip_address(value: str) -> str:
    """Return the trimmed IP address when it parses as IPv4 or IPv6, else raise :class:`UnusableValue`."""
    s = value.strip()
    if _IPV4.fullmatch(s) is not None or _PLAIN_IPV6.fullmatch(s) is not None:
        return s
    try:
        ipaddress.ip_address(s)
    except ValueError:
        raise UnusableValue("not an IPv4 or IPv6 address") from None
    return s


def normalize_fbc(value: str) -> str:
    """Return the trimmed click id cookie when it has the ``fb.<n>.<ms>.<fbclid>[.<appendix>]`` form."""
    s = value.strip()
    if _COOKIE.fullmatch(s) is None:
        raise UnusableValue("not a valid fbc (fb.<subdomain index>.<creation time ms>.<fbclid>[.<appendix>])")
    return s


def normalize_fbp(value: str) -> str:
    """Return the trimmed browser id cookie when it has the ``fb.<n>.<ms>.<random>[.<appendix>]`` form."""
    s = value.strip()
    if _COOKIE.fullmatch(s) is None:
        raise UnusableValue("not a valid fbp (fb.<subdomain index>.<creation time ms>.<random>[.<appendix>])")
    return s


def normalize_passthrough(value: str) -> str:
    """Return the value trimmed: user agent and ids Meta takes as they are (never hashed)."""
    s = value.strip()
    if not s:
        raise UnusableValue(EMPTY)
    return s


def build_fbc(event_source_url: str | None, event_time_ms: int) -> str | None:
    """Build ``fb.1.<event time ms>.<fbclid>`` from the ``fbclid`` query parameter of the event URL.

    identity-rules.md "fbc, fbp": with no fbc but an fbclid in the event URL, fbc is built this way (Meta
    D-FBC: subdomain index 1 when generated server-side; the fbclid is kept exactly, case included).
    Returns ``None`` when the URL has no usable fbclid. Callers use it only when the event has no fbc.
    """
    if not event_source_url or "fbclid=" not in event_source_url:
        return None
    try:
        query = urlsplit(event_source_url).query
    except ValueError:
        return None
    for name, fbclid in parse_qsl(query, keep_blank_values=False):
        if name == "fbclid":
            fbclid = fbclid.strip()
            if fbclid and "." not in fbclid and not any(c.isspace() for c in fbclid):
                return f"fb.1.{int(event_time_ms)}.{fbclid}"
            return None
    return None
