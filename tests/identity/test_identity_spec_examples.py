"""Every example row of identity-rules.md and every usable row of Meta's worked examples (examples/*.json).

identity-rules.md is the authority: each "input -> normalized" example is asserted both on the key's own
normalizer and end to end (hash of the normalized value in the CAPI payload / audience row).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from metabridge.identity import (
    IdentityContext,
    build_fbc,
    is_sha256_hex,
    normalize_member,
    normalize_user_data,
    sha256_hex,
)

#: Meta's worked examples, recorded from ../shared/meta-spec/examples (test_fixtures_match_the_spec
#: checks the copies against the originals whenever the shared folder is beside the checkout).
EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "meta-spec"
SHARED_EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "meta-spec" / "examples"

LEFT_OUT = None

# (CAPI key, input, record country or None, expected normalized value or LEFT_OUT)
RULE_EXAMPLES: list[tuple[str, str, str | None, str | None]] = [
    ("em", " John_Smith@Gmail.com ", None, "john_smith@gmail.com"),
    ("em", "a@b", None, LEFT_OUT),
    ("ph", "(650)555-1212", "us", "16505551212"),
    ("ph", "+44 20 7946 0958", None, "442079460958"),
    ("ph", "020 7946 0958", "gb", "442079460958"),
    ("ph", "0044 20 7946 0958", None, "442079460958"),
    ("ph", "06 12 34 56 78", "fr", "33612345678"),
    ("fn", "Mary-Jane", None, "maryjane"),
    ("fn", "O'Brien", None, "obrien"),
    ("fn", "Jean Luc", None, "jeanluc"),
    ("fn", "Valéry", None, "valéry"),
    ("fn", "정", None, "정"),
    ("ln", "Mary-Jane", None, "maryjane"),
    ("ln", "O'Brien", None, "obrien"),
    ("ln", "Jean Luc", None, "jeanluc"),
    ("ln", "Valéry", None, "valéry"),
    ("ln", "정", None, "정"),
    ("ct", "São Paulo", None, "sãopaulo"),
    ("ct", "St. Louis", None, "stlouis"),
    ("ct", "New York", None, "newyork"),
    ("st", "California", None, "ca"),
    ("st", "new york", None, "ny"),
    ("st", "NY", None, "ny"),
    ("st", "Ontario", "ca", "on"),
    ("st", "Bayern", "de", "bayern"),
    ("zp", "94035-1234", None, "94035"),
    ("zp", "940351234", "us", "94035"),
    ("zp", "SW1A 1AA", None, "sw1a1aa"),
    ("zp", "75018", None, "75018"),
    ("country", "United States", None, "us"),
    ("country", "UK", None, "gb"),
    ("country", "DEU", None, "de"),
    ("country", "France", None, "fr"),
    ("country", "Atlantis", None, LEFT_OUT),
    ("db", "1997-02-16", None, "19970216"),
    ("db", "2/16/1997", None, "19970216"),
    ("db", "16.02.1997", None, "19970216"),
    ("db", "1997-02-30", None, LEFT_OUT),
    ("ge", "Female", None, "f"),
    ("ge", "M", None, "m"),
    ("ge", "other", None, LEFT_OUT),
    ("external_id", "ABC 123", None, "abc123"),
]


def _capi(key: str, value: Any, country: str | None = None, **ctx: Any) -> tuple[Any, list[Any]]:
    user: dict[str, Any] = {key: value}
    if country is not None and key != "country":
        user["country"] = country
    result = normalize_user_data(user, IdentityContext(**ctx))
    return result.user_data.get(key), [i for i in result.issues if i.field == f"user_data.{key}"]


@pytest.mark.parametrize(("key", "raw", "country", "expected"), RULE_EXAMPLES)
def test_identity_rules_example_capi(key: str, raw: str, country: str | None, expected: str | None) -> None:
    sent, issues = _capi(key, raw, country)
    if expected is LEFT_OUT:
        assert sent is None
        assert [i.level for i in issues] == ["dropped"]
    else:
        assert sent == sha256_hex(expected)
        assert issues == []


@pytest.mark.parametrize(
    ("key", "raw", "country", "expected"),
    [row for row in RULE_EXAMPLES if row[2] is not None and row[0] in ("ph",)],
)
def test_identity_rules_example_phone_region_from_default_country(
    key: str, raw: str, country: str, expected: str
) -> None:
    """The region of a national phone may come from the connection's default country too."""
    result = normalize_user_data({key: raw}, IdentityContext(default_country=country))
    assert result.user_data == {key: sha256_hex(expected)}
    assert result.issues == []


_MEMBER_FIELD = {
    "em": ("email", "EMAIL"),
    "ph": ("phone", "PHONE"),
    "fn": ("first_name", "FN"),
    "ln": ("last_name", "LN"),
    "ct": ("city", "CT"),
    "st": ("state", "ST"),
    "zp": ("zip", "ZIP"),
    "country": ("country", "COUNTRY"),
    "ge": ("gender", "GEN"),
}


@pytest.mark.parametrize(
    ("key", "raw", "country", "expected"), [row for row in RULE_EXAMPLES if row[0] in _MEMBER_FIELD]
)
def test_identity_rules_example_audience(
    key: str, raw: str, country: str | None, expected: str | None
) -> None:
    field, schema_key = _MEMBER_FIELD[key]
    member: dict[str, Any] = {field: raw}
    if country is not None and field != "country":
        member["country"] = country
    result = normalize_member(member, IdentityContext())
    if expected is LEFT_OUT:
        assert schema_key not in result.values
        assert [(i.field, i.level) for i in result.issues] == [(field, "dropped")]
    else:
        assert result.values[schema_key] == sha256_hex(expected)
        assert result.issues == []


@pytest.mark.parametrize(
    ("raw", "doby", "dobm", "dobd"),
    [
        ("1997-02-16", "1997", "02", "16"),
        ("2/16/1997", "1997", "02", "16"),
        ("16.02.1997", "1997", "02", "16"),
    ],
)
def test_identity_rules_example_audience_birthdate_split(raw: str, doby: str, dobm: str, dobd: str) -> None:
    values = normalize_member({"birthdate": raw}, IdentityContext()).values
    assert values == {"DOBY": sha256_hex(doby), "DOBM": sha256_hex(dobm), "DOBD": sha256_hex(dobd)}


def test_identity_rules_example_first_initial() -> None:
    values = normalize_member({"first_name": "Mary"}, IdentityContext()).values
    assert values == {"FN": sha256_hex("mary"), "FI": sha256_hex("m")}


# ---------------------------------------------------------------------------------------------------
# Meta's worked examples (examples/*.json)


def _load(name: str) -> list[dict[str, Any]]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


CAPI_DOC_ROWS = _load("conversions-api-doc-examples.json")
AUDIENCE_DOC_ROWS = _load("audiences-doc-examples.json")


def _row_id(row: dict[str, Any]) -> str:
    return f"{row.get('field')}:{str(row.get('input') or row.get('normalized') or row.get('sha256'))[:24]}"


@pytest.mark.parametrize("row", CAPI_DOC_ROWS, ids=_row_id)
def test_conversions_api_doc_example(row: dict[str, Any]) -> None:
    key, raw, normalized, digest = row["field"], row["input"], row["normalized"], row["sha256"]
    ctx = IdentityContext(default_country="us")  # Meta's examples are US data ((650)555-1212 -> 1...)
    if digest is not None:
        assert is_sha256_hex(digest) and digest == digest.lower()
        if normalized is not None:
            assert sha256_hex(normalized) == digest
        # An existing hash (any case) is passed through, lowercased, never hashed twice.
        assert normalize_user_data({key: digest.upper()}, ctx).user_data == {key: digest}
        if raw is not None:
            result = normalize_user_data({key: raw}, ctx)
            assert result.user_data == {key: digest}
            assert result.issues == []
        return
    # Unhashed keys: the documented value is sent exactly as it is (never hashed, never lowercased).
    assert normalized is not None
    result = normalize_user_data({key: f"  {normalized} "}, ctx)
    assert result.user_data == {key: normalized}
    assert result.issues == []
    if key == "fbc" and raw is not None:
        m = re.fullmatch(r"fbclid=(\S+) seen at (\d+) ms", raw)
        if m is not None:
            url = f"https://www.example.com/landing?utm_source=x&fbclid={m[1]}"
            assert build_fbc(url, int(m[2])) == normalized


def _audience_key(row: dict[str, Any]) -> str | None:
    note = row.get("note", "")
    for field, key in (("email", "EMAIL"), ("phone", "PHONE")):
        if f"normalized {key}" in note:
            return field
    return None


@pytest.mark.parametrize(
    "row",
    [r for r in AUDIENCE_DOC_ROWS if isinstance(r["input"], str) and isinstance(r["expected"], str)],
    ids=lambda r: str(r["input"]),
)
def test_audiences_doc_example(row: dict[str, Any]) -> None:
    raw, digest = row["input"], row["expected"]
    assert is_sha256_hex(digest)
    field = _audience_key(row)
    assert field is not None, row
    values = normalize_member({field: raw}, IdentityContext(default_country="us")).values
    assert values == {{"email": "EMAIL", "phone": "PHONE"}[field]: digest}
    assert sha256_hex(raw) == digest  # the documented input is already normalized


@pytest.mark.skipif(not SHARED_EXAMPLES.is_dir(), reason="../shared/meta-spec is not beside this checkout")
def test_fixtures_match_the_spec() -> None:
    for original in SHARED_EXAMPLES.glob("*.json"):
        assert (EXAMPLES / original.name).read_bytes() == original.read_bytes(), original.name
