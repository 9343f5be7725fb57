"""How a phone number is normalized (CAPI ``ph``, audience ``PHONE``).

Rule (identity-rules.md "ph"; Meta D-CIP: digits only, no leading zeros, **must include the country
code**, worked example ``(650)555-1212`` -> ``16505551212``):

- A leading ``+`` or ``00`` marks an international number: the prefix is dropped and the digits are sent
  (``+44 20 7946 0958`` and ``0044 20 7946 0958`` -> ``442079460958``). The trunk ``(0)`` that UK and
  European numbers often carry after the country code (``+44 (0)20 ...``) is not part of the number.
- Otherwise the number is national: it is parsed with ``phonenumbers`` for the region of the record's own
  country, else the connection's default country, and the full international number is sent (E.164 digits
  without ``+``). Numbers that cannot be a full number of that region are left out.
- A national number with no known region has its leading zeros dropped and is sent as it is, with a
  warning: Meta will probably not match it, since no country code can be added (the official SDK and
  every peer send such numbers without country code, conversions-api.md §10.1).
- ``tel:`` prefixes and extensions (``ext. 12``, ``x12``, ``#12``) are ignored; other letters make the
  value unreadable (vanity numbers are not personal phone numbers).

Speed: ``phonenumbers.parse`` costs ~40 µs, so the common cases skip it with exact shortcuts.
International input only needs its digits. A national number is resolved from ``phonenumbers``' own
metadata for the region (:class:`_RegionPlan`), replaying what ``parse`` does for a digits-only number
(national prefix stripping with its viability check, possible-length check) whenever that replay is
unambiguous; every other case (an international dialling prefix such as US ``011``, a number starting
with the country code, prefix transform rules) goes through ``phonenumbers.parse`` itself. Tests
cross-check the shortcut against ``parse`` on random numbers for many regions.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat, ValidationResult
# The bounds parse() puts on a national significant number and on its input: the shortcut below replays
# parse(), so it takes them from the library rather than restating them.
from phonenumbers.phonenumberutil import _MAX_INPUT_STRING_LENGTH, _MAX_LENGTH_FOR_NSN, _MIN_LENGTH_FOR_NSN

from metabridge.identity.issues import UnusableValue

__all__ = ["NO_REGION_WARNING", "normalize_phone", "phone_region_warning"]

# Separators people put in phone numbers; removed before looking at the digits.
_SEPARATORS = str.maketrans("", "", " \t\u00a0\u2009\u202f()-./\u2010\u2011\u2012\u2013")
_TEL_PREFIX = re.compile(r"\s*tel:\s*", re.IGNORECASE)
_EXTENSION = re.compile(r"\s*(?:;ext=|ext\.?|extension|x|#)\s*\d{1,7}\s*$", re.IGNORECASE)
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")

_NANP_FAST = frozenset({"US", "CA"})
_SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
_E164 = PhoneNumberFormat.E164
_IS_POSSIBLE = ValidationResult.IS_POSSIBLE
_IS_POSSIBLE_LOCAL_ONLY = ValidationResult.IS_POSSIBLE_LOCAL_ONLY
_parse = phonenumbers.parse
_possible = phonenumbers.is_possible_number_with_reason
_format = phonenumbers.format_number

NO_REGION_WARNING = (
    "national number without a known country: leading zeros dropped, no country code added "
    "(give the record's country or the connection's default_country)"
)
UNREADABLE = "not a phone number (digits with optional leading + or 00 expected)"
BAD_LENGTH = "not a phone number (7 to 15 digits with country code expected)"


def _plain(value: str) -> str:
    """Return ``value`` as ASCII digits with an optional leading ``+``, or raise :class:`UnusableValue`.

    Separators go; a ``tel:`` prefix, an extension and the ``(0)`` trunk mark of international numbers are
    cut; any other character (letters, ``*``) makes the value unreadable.
    """
    s = value.strip()
    if "(0" not in s and "( 0" not in s:
        t = s.translate(_SEPARATORS)
        if t.isascii() and (t.isdigit() or (t[:1] == "+" and t[1:].isdigit())):
            return t
    # Rare forms: 'tel:' URIs, extensions, '(0)' trunk marks, non-ASCII digits.
    m = _TEL_PREFIX.match(s)
    if m is not None:
        s = s[m.end() :]
    s = _EXTENSION.sub("", s)
    if s[:1] == "+" or s[:2] == "00":
        s = _TRUNK_ZERO.sub("", s)
    t = s.translate(_SEPARATORS)
    plus = t[:1] == "+"
    digits = t[1:] if plus else t
    if not digits.isdecimal():  # also False for ""
        raise UnusableValue(UNREADABLE)
    if not digits.isascii():
        digits = "".join(str(int(c)) for c in digits)  # e.g. Arabic-Indic or full-width digits
    return "+" + digits if plus else digits


#: Why a national number is not a possible number of a region: the message for each outcome of
#: ``parse`` + ``is_possible_number_with_reason`` other than IS_POSSIBLE (``{}`` is the region).
_NOT_A_NUMBER = "not a phone number of region {}"
_LOCAL_ONLY = "local number without area code for region {}"
_WRONG_LENGTH = "not a possible phone number for region {} (wrong length)"


class _Rejected(str):
    """A shortcut's answer that the number is not possible: the message (a ``str`` subclass, so one
    return value carries either answer)."""


class _RegionPlan:
    """The parts of ``phonenumbers``' metadata for one region that a digits-only national number needs."""

    __slots__ = ("country_code", "idd", "lengths", "local_only", "national_prefix", "pattern", "possible",
                 "rejections", "transform")

    def __init__(self, metadata: Any, region: str) -> None:
        general = metadata.general_desc
        self.country_code: str = str(metadata.country_code)
        self.idd = re.compile(metadata.international_prefix) if metadata.international_prefix else None
        prefix = metadata.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix) if prefix else None
        self.transform: bool = bool(metadata.national_prefix_transform_rule)
        self.pattern = re.compile(general.national_number_pattern)
        # Lengths parse() calls IS_POSSIBLE: possible and not "local only".
        self.possible: tuple[int, ...] = tuple(general.possible_length)
        self.local_only = frozenset(general.possible_length_local_only)
        self.lengths = frozenset(general.possible_length) - self.local_only
        self.rejections = {
            reason: _Rejected(message.format(region))
            for reason, message in (("nan", _NOT_A_NUMBER), ("local", _LOCAL_ONLY), ("length", _WRONG_LENGTH))
        }

    def _length(self, n: int) -> ValidationResult:
        """``phonenumbers._test_number_length`` for a national number of ``n`` digits (type UNKNOWN)."""
        possible = self.possible
        if n in self.local_only:
            return _IS_POSSIBLE_LOCAL_ONLY
        if possible[0] == n:
            return _IS_POSSIBLE
        if possible[0] > n:
            return ValidationResult.TOO_SHORT
        if possible[-1] < n:
            return ValidationResult.TOO_LONG
        return _IS_POSSIBLE if n in possible[1:] else ValidationResult.INVALID_LENGTH

    def national(self, digits: str) -> str | None:
        """Return country code + national significant number, a :class:`_Rejected` message when it is
        not a possible number, or None when only ``parse`` can tell.

        Mirrors ``phonenumbers.parse(digits, region)`` followed by an IS_POSSIBLE check for the cases it
        handles: no international dialling prefix, not starting with the country code, and a national
        prefix (if any) that is stripped or kept exactly as ``_maybe_strip_national_prefix_carrier_code``
        and ``parse`` (which keeps the prefix when the stripped number has an impossible length) would.
        """
        if self.idd is not None and self.idd.match(digits):
            return None
        if digits.startswith(self.country_code) or len(digits) > _MAX_INPUT_STRING_LENGTH:
            return None
        national = digits
        if self.national_prefix is not None:
            m = self.national_prefix.match(digits)
            if m is not None:
                if self.transform and m.lastindex is not None and m.group(m.lastindex) is not None:
                    return None  # transform rule applies (e.g. Argentina, Brazil carrier codes)
                stripped = digits[m.end() :]
                pattern = self.pattern.fullmatch
                if not (pattern(digits) is not None and pattern(stripped) is None):
                    if len(stripped) in self.lengths:
                        return self.country_code + stripped  # the usual case, decided early
                    if stripped and self._length(len(stripped)) not in _KEEPS_PREFIX:
                        national = stripped
        n = len(national)
        if n in self.lengths:
            return self.country_code + national
        if n < _MIN_LENGTH_FOR_NSN or n > _MAX_LENGTH_FOR_NSN:
            return self.rejections["nan"]
        return self.rejections["local" if n in self.local_only else "length"]


#: Length outcomes after which ``parse`` keeps a national prefix it could strip.
_KEEPS_PREFIX = frozenset(
    {ValidationResult.TOO_SHORT, _IS_POSSIBLE_LOCAL_ONLY, ValidationResult.INVALID_LENGTH}
)


_PLANS: dict[str, _RegionPlan | None] = {}


def _plan(region: str) -> _RegionPlan | None:
    """The shortcut plan for ``region``, built on first use; None for regions sharing a country code
    with another main region (``is_possible_number`` would judge them by that region's metadata)."""
    try:
        return _PLANS[region]
    except KeyError:
        pass
    metadata = PhoneMetadata.metadata_for_region(region, None)
    plan = None
    if (
        metadata is not None
        and metadata.country_code is not None
        and phonenumbers.region_code_for_country_code(metadata.country_code) == region
    ):
        plan = _RegionPlan(metadata, region)
    _PLANS[region] = plan
    return plan


def _checked_length(digits: str) -> str:
    if not 7 <= len(digits) <= 15:
        raise UnusableValue(BAD_LENGTH)
    return digits


def _normalize(value: str, region: str | None) -> tuple[str, bool]:
    """Return (international digits, True when no region was known for a national number)."""
    s = _plain(value)
    if s[0] == "+":
        return _checked_length(s[1:].lstrip("0")), False
    if s[:2] == "00":
        return _checked_length(s[2:].lstrip("0")), False
    region_uc = region.upper() if region else None
    if region_uc is None or region_uc not in _SUPPORTED_REGIONS:
        return _checked_length(s.lstrip("0")), True
    if region_uc in _NANP_FAST:
        n = len(s)
        if n == 10 and s[0] >= "2":
            return "1" + s, False
        if n == 11 and s[0] == "1" and s[1] >= "2":
            return s, False
    plan = _plan(region_uc)
    if plan is not None:
        fast = plan.national(s)
        if fast is not None:
            if fast.__class__ is _Rejected:
                raise UnusableValue(str(fast))
            return fast, False
    try:
        number = _parse(s, region_uc)
    except NumberParseException:
        raise UnusableValue(f"not a phone number of region {region_uc}") from None
    reason = _possible(number)
    if reason != _IS_POSSIBLE:
        if reason == _IS_POSSIBLE_LOCAL_ONLY:
            raise UnusableValue(f"local number without area code for region {region_uc}")
        raise UnusableValue(f"not a possible phone number for region {region_uc} (wrong length)")
    return _format(number, _E164)[1:], False


def normalize_phone(value: str, region: str | None = None) -> str:
    """Return the phone as international digits (country code, no ``+``), or raise :class:`UnusableValue`.

    ``region`` is an ISO 3166-1 alpha-2 code (any case), used only for national numbers: the record's own
    country, else the connection's default country.
    """
    return _normalize(value, region)[0]


def phone_region_warning(value: str, region: str | None) -> str | None:
    """Return the warning for a number :func:`normalize_phone` accepted but could not give a country code.

    That is a national number (no ``+``/``00``) with no supported region: it is sent, but Meta will
    probably not match it.
    """
    if region and region.upper() in _SUPPORTED_REGIONS:
        return None
    return NO_REGION_WARNING if _normalize(value, region)[1] else None
