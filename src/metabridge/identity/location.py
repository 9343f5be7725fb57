"""How state, ZIP / postal code and country are normalized (CAPI st/zp/country, audience ST/ZIP/COUNTRY).

Rules (identity-rules.md "st", "zp", "country"; Meta D-CIP and audiences §2.3):

- country: lowercase ISO 3166-1 alpha-2. Alpha-2, alpha-3, English names (pycountry's name, official name
  and common name) and a few common aliases (``uk`` -> ``gb``, ``usa`` -> ``us``) are read. Anything else
  is left out, never guessed from its first letters (Meta's parameter builder turns ``UK`` into ``uk`` and
  ``Côte d'Ivoire`` into ``ct``; conversions-api.md §10.5).
- state: US (country ``us``, or no country and the value is a US state name or code) -> 2-letter USPS/ANSI
  code; Canada likewise for provinces and territories; elsewhere the name rule (``Bayern`` -> ``bayern``).
  US and Canadian codes and names do not overlap, so with no country both tables are tried.
- zip: lowercase, whitespace and ``-`` removed; US (country ``us``, or no country and the value is 5 or 5+4
  digits) -> first 5 digits (``94035-1234`` -> ``94035``); UK and others keep the full code (``sw1a1aa``).

The state and zip rules look at the *record's own* country (already normalized to alpha-2), not the
connection's default country: the rules speak of "country us, or no country", and a default country is a
guess about phones, not evidence about where an address is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

import pycountry

from metabridge.identity._text import fold_key, nfc_lower
from metabridge.identity.issues import UnusableValue, quote
from metabridge.identity.names import normalize_name

__all__ = ["country_code", "normalize_country", "normalize_state", "normalize_zip"]

# --------------------------------------------------------------------------------------------------
# Country table: folded key (ASCII lowercase letters) -> alpha-2 lowercase. Built once at import, because
# pycountry look-ups (fuzzy or by attribute) are slow.

#: Common names that pycountry does not carry; each maps to exactly one country.
COUNTRY_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "uk": "gb",
        "greatbritain": "gb",
        "britain": "gb",
        "england": "gb",
        "scotland": "gb",
        "wales": "gb",
        "northernireland": "gb",
        "us": "us",
        "usa": "us",
        "unitedstatesofamerica": "us",
        "russia": "ru",
        "southkorea": "kr",
        "republicofkorea": "kr",
        "northkorea": "kp",
        "czechrepublic": "cz",
        "holland": "nl",
        "thenetherlands": "nl",
        "ivorycoast": "ci",
        "uae": "ae",
        "turkey": "tr",
        "macedonia": "mk",
        "swaziland": "sz",
        "burma": "mm",
        "capeverde": "cv",
        "vatican": "va",
        "vaticancity": "va",
        "holysee": "va",
        "palestine": "ps",
        "micronesia": "fm",
        "brunei": "bn",
        "drc": "cd",
        "democraticrepublicofthecongo": "cd",
        "drcongo": "cd",
        "congokinshasa": "cd",
        "congobrazzaville": "cg",
        "republicofthecongo": "cg",
        "easttimor": "tl",
        "deutschland": "de",
        "espana": "es",
        "italia": "it",
        "brasil": "br",
        "nederland": "nl",
        "osterreich": "at",
        "schweiz": "ch",
        "suisse": "ch",
        "svizzera": "ch",
        "belgique": "be",
        "belgie": "be",
        "sverige": "se",
        "norge": "no",
        "danmark": "dk",
        "suomi": "fi",
        "polska": "pl",
        "eire": "ie",
        "republiquefrancaise": "fr",
    }
)


def _build_country_table() -> dict[str, str]:
    table: dict[str, str] = {}
    countries = list(pycountry.countries)
    # Codes first, so that no name or alias can shadow a code.
    for c in countries:
        table[c.alpha_2.lower()] = c.alpha_2.lower()
    for c in countries:
        table.setdefault(c.alpha_3.lower(), c.alpha_2.lower())
    for c in countries:
        for attr in ("name", "official_name", "common_name"):
            name = getattr(c, attr, None)
            if name:
                table.setdefault(fold_key(name), c.alpha_2.lower())
    for alias, code in COUNTRY_ALIASES.items():
        table.setdefault(alias, code)
    return table


_COUNTRIES: dict[str, str] = _build_country_table()

#: Characters a country name may contain besides letters and whitespace. A slash, digit or '@' means the
#: value is not a country name (``N/A`` must not become Namibia).
_COUNTRY_PUNCT = frozenset(".,'’()&-")


def _unknown_country(value: str) -> UnusableValue:
    return UnusableValue(
        f"unknown country {quote(value)} (ISO 3166-1 alpha-2, alpha-3 or English name expected)"
    )


def normalize_country(value: str) -> str:
    """Return the lowercase ISO 3166-1 alpha-2 code for ``value``, or raise :class:`UnusableValue`."""
    s = value.strip()
    if s.isascii() and s.isalpha():
        code = _COUNTRIES.get(s.lower())
        if code is not None:
            return code
    if not s or not all(c.isalpha() or c.isspace() or c in _COUNTRY_PUNCT for c in s):
        raise _unknown_country(s)
    key = fold_key(s)
    code = _COUNTRIES.get(key)
    if code is None and key.startswith("the"):
        code = _COUNTRIES.get(key[3:])  # "The Gambia", "the Philippines"
    if code is None:
        raise _unknown_country(s)
    return code


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """Return the alpha-2 code of a raw country value, or ``None`` when it cannot be read.

    Used to find the record's own country for the phone region and the state/zip rules.
    """
    try:
        return normalize_country(value)
    except UnusableValue:
        return None


# --------------------------------------------------------------------------------------------------
# States: US (USPS/ANSI codes, incl. DC, territories and military "states") and Canada. Data, not code.

US_STATES: Mapping[str, str] = MappingProxyType(
    {
        "al": "Alabama",
        "ak": "Alaska",
        "az": "Arizona",
        "ar": "Arkansas",
        "ca": "California",
        "co": "Colorado",
        "ct": "Connecticut",
        "de": "Delaware",
        "fl": "Florida",
        "ga": "Georgia",
        "hi": "Hawaii",
        "id": "Idaho",
        "il": "Illinois",
        "in": "Indiana",
        "ia": "Iowa",
        "ks": "Kansas",
        "ky": "Kentucky",
        "la": "Louisiana",
        "me": "Maine",
        "md": "Maryland",
        "ma": "Massachusetts",
        "mi": "Michigan",
        "mn": "Minnesota",
        "ms": "Mississippi",
        "mo": "Missouri",
        "mt": "Montana",
        "ne": "Nebraska",
        "nv": "Nevada",
        "nh": "New Hampshire",
        "nj": "New Jersey",
        "nm": "New Mexico",
        "ny": "New York",
        "nc": "North Carolina",
        "nd": "North Dakota",
        "oh": "Ohio",
        "ok": "Oklahoma",
        "or": "Oregon",
        "pa": "Pennsylvania",
        "ri": "Rhode Island",
        "sc": "South Carolina",
        "sd": "South Dakota",
        "tn": "Tennessee",
        "tx": "Texas",
        "ut": "Utah",
        "vt": "Vermont",
        "va": "Virginia",
        "wa": "Washington",
        "wv": "West Virginia",
        "wi": "Wisconsin",
        "wy": "Wyoming",
        "dc": "District of Columbia",
        "as": "American Samoa",
        "gu": "Guam",
        "mp": "Northern Mariana Islands",
        "pr": "Puerto Rico",
        "vi": "U.S. Virgin Islands",
        "um": "United States Minor Outlying Islands",
        "aa": "Armed Forces Americas",
        "ae": "Armed Forces Europe",
        "ap": "Armed Forces Pacific",
    }
)
#: Other unambiguous spellings: the AP-style abbreviations (``Calif.``, ``Mass.``, ``N.Y.`` fold to
#: ``calif``, ``mass``, ``ny``) and DC / Virgin Islands variants.
US_STATE_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "ala": "al",
        "ariz": "az",
        "ark": "ar",
        "calif": "ca",
        "cal": "ca",
        "colo": "co",
        "conn": "ct",
        "del": "de",
        "fla": "fl",
        "ill": "il",
        "ind": "in",
        "kan": "ks",
        "kans": "ks",
        "mass": "ma",
        "mich": "mi",
        "minn": "mn",
        "miss": "ms",
        "mont": "mt",
        "neb": "ne",
        "nebr": "ne",
        "nev": "nv",
        "okla": "ok",
        "ore": "or",
        "oreg": "or",
        "penn": "pa",
        "penna": "pa",
        "tenn": "tn",
        "tex": "tx",
        "wash": "wa",
        "wva": "wv",
        "wis": "wi",
        "wisc": "wi",
        "wyo": "wy",
        "washingtondc": "dc",
        "virginislands": "vi",
        "virginislandsus": "vi",
        "unitedstatesvirginislands": "vi",
    }
)

CA_PROVINCES: Mapping[str, str] = MappingProxyType(
    {
        "ab": "Alberta",
        "bc": "British Columbia",
        "mb": "Manitoba",
        "nb": "New Brunswick",
        "nl": "Newfoundland and Labrador",
        "ns": "Nova Scotia",
        "nt": "Northwest Territories",
        "nu": "Nunavut",
        "on": "Ontario",
        "pe": "Prince Edward Island",
        "qc": "Quebec",
        "sk": "Saskatchewan",
        "yt": "Yukon",
    }
)
#: French names (Canada is bilingual) and common short forms.
CA_PROVINCE_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "colombiebritannique": "bc",
        "nouveaubrunswick": "nb",
        "terreneuveetlabrador": "nl",
        "newfoundland": "nl",
        "nouvelleecosse": "ns",
        "territoiresdunordouest": "nt",
        "ileduprinceedouard": "pe",
        "pei": "pe",
        "yukonterritory": "yt",
        "pq": "qc",
        "alta": "ab",
        "man": "mb",
        "nfld": "nl",
        "ont": "on",
        "que": "qc",
        "sask": "sk",
    }
)


def _build_state_table(codes: Mapping[str, str], aliases: Mapping[str, str]) -> dict[str, str]:
    table = {code: code for code in codes}
    for code, name in codes.items():
        table.setdefault(fold_key(name), code)
    for alias, code in aliases.items():
        table.setdefault(alias, code)
    return table


_US: dict[str, str] = _build_state_table(US_STATES, US_STATE_ALIASES)
_CA: dict[str, str] = _build_state_table(CA_PROVINCES, CA_PROVINCE_ALIASES)


def normalize_state(value: str, country: str | None) -> str:
    """Return the state/province for a record whose normalized country is ``country`` (alpha-2 or None).

    US and Canada give the 2-letter code (``California`` -> ``ca``, ``Ontario`` + ca -> ``on``); an
    unknown US/Canadian value is left out rather than sent as a name that can never match a code.
    Elsewhere, and for non-US/Canadian values with no country, the name rule applies.
    """
    key = fold_key(value)
    if country == "us":
        code = _US.get(key)
        if code is None:
            raise UnusableValue("not a US state name or 2-letter code")
        return code
    if country == "ca":
        code = _CA.get(key)
        if code is None:
            raise UnusableValue("not a Canadian province or territory name or 2-letter code")
        return code
    if country is None:
        code = _US.get(key) or _CA.get(key)
        if code is not None:
            return code
    return normalize_name(value)


# --------------------------------------------------------------------------------------------------
# ZIP / postal codes

_US_ZIP = re.compile(r"[0-9]{5}(?:[0-9]{4})?")


def normalize_zip(value: str, country: str | None) -> str:
    """Return the postal code lowercased without whitespace or ``-``; US codes cut to 5 digits.

    With country ``us`` a value that is not 5 or 5+4 digits is left out (it cannot match a ZIP code).
    """
    s = "".join(nfc_lower(value).split()).replace("-", "")
    if not s:
        raise UnusableValue("no characters left after removing whitespace and '-'")
    if country == "us":
        if _US_ZIP.fullmatch(s) is None:
            raise UnusableValue("not a US ZIP code (5 digits or ZIP+4)")
        return s[:5]
    if country is None and len(s) in (5, 9) and _US_ZIP.fullmatch(s) is not None:
        return s[:5]
    return s
