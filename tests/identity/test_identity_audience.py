"""normalize_member: one Custom Audience member -> schema-key values (hashed except EXTERN_ID and MADID)."""

from __future__ import annotations

from typing import Any

import pytest

from metabridge.identity import FieldIssue, IdentityContext, MemberIdentity, normalize_member, sha256_hex

CTX = IdentityContext()


def _member(member: dict[str, Any], ctx: IdentityContext = CTX) -> MemberIdentity:
    return normalize_member(member, ctx)


def test_full_member() -> None:
    result = _member(
        {
            "email": "Mary@Example.com ",
            "phone": "+1 (555) 987-6543",
            "first_name": "Mary-Jane",
            "last_name": "O'Brien",
            "birthdate": "16.02.1997",
            "gender": "woman",
            "city": "St. Louis",
            "state": "Missouri",
            "zip": "63101-1234",
            "country": "USA",
            "external_id": "  CRM-0042 ",
            "madid": "6D92078A-8246-4BA4-AE5B-76104861E7DC",
        }
    )
    assert result.issues == []
    assert result.values == {
        "EMAIL": "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79",
        "PHONE": "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e",
        "FN": sha256_hex("maryjane"),
        "FI": sha256_hex("m"),
        "LN": sha256_hex("obrien"),
        "DOBY": sha256_hex("1997"),
        "DOBM": sha256_hex("02"),
        "DOBD": sha256_hex("16"),
        "GEN": sha256_hex("f"),
        "CT": sha256_hex("stlouis"),
        "ST": sha256_hex("mo"),
        "ZIP": sha256_hex("63101"),
        "COUNTRY": sha256_hex("us"),
        "EXTERN_ID": "CRM-0042",  # trimmed, exact, never hashed
        "MADID": "6d92078a-8246-4ba4-ae5b-76104861e7dc",  # lowercase, never hashed
    }


def test_first_initial_and_birthdate_parts() -> None:
    values = _member({"first_name": "Émilie", "birthdate": "1961-07-04"}).values
    assert values == {
        "FN": sha256_hex("émilie"),
        "FI": sha256_hex("é"),
        "DOBY": sha256_hex("1961"),
        "DOBM": sha256_hex("07"),
        "DOBD": sha256_hex("04"),
    }


def test_extern_id_is_unhashed_even_with_capi_hashing_on() -> None:
    values = _member({"external_id": "ABC 123"}, IdentityContext(external_id_hashing=True)).values
    assert values == {"EXTERN_ID": "ABC 123"}


def test_missing_values_are_absent_not_hash_of_empty() -> None:
    result = _member({"email": "", "phone": None, "first_name": "  "})
    assert result.values == {}
    assert result.issues == [
        FieldIssue("email", "empty value", "dropped"),
        FieldIssue("first_name", "empty value", "dropped"),
    ]


def test_bad_birthdate_gives_one_issue_for_three_keys() -> None:
    result = _member({"birthdate": "1997-02-30"})
    assert result.values == {}
    assert result.issues == [FieldIssue("birthdate", "not a real calendar date", "dropped")]


def test_already_hashed_member_values() -> None:
    digest = sha256_hex("mary@example.com")
    result = _member(
        {"email": digest.upper(), "first_name": sha256_hex("mary"), "birthdate": sha256_hex("19970216")}
    )
    assert result.values == {"EMAIL": digest, "FN": sha256_hex("mary")}
    assert result.issues == [
        FieldIssue("first_name", "already hashed: FI cannot be derived from a hash", "warning"),
        FieldIssue("birthdate", "already hashed: DOBY/DOBM/DOBD cannot be derived from a hash", "dropped"),
    ]


def test_hex_extern_id_is_not_treated_as_a_hash() -> None:
    digest = sha256_hex("x").upper()
    assert _member({"external_id": digest}).values == {"EXTERN_ID": digest}


def test_phone_region_from_member_country_then_default() -> None:
    assert _member({"phone": "020 7946 0958", "country": "GB"}).values["PHONE"] == sha256_hex("442079460958")
    us = IdentityContext(default_country="us")
    assert _member({"phone": "(650) 555-1212"}, us).values == {"PHONE": sha256_hex("16505551212")}
    no_region = _member({"phone": "(650) 555-1212"})
    assert no_region.values == {"PHONE": sha256_hex("6505551212")}
    assert [(i.field, i.level) for i in no_region.issues] == [("phone", "warning")]


def test_state_and_zip_use_member_country() -> None:
    values = _member({"state": "Ontario", "zip": "M5V 2T6", "country": "Canada"}).values
    assert values == {"ST": sha256_hex("on"), "ZIP": sha256_hex("m5v2t6"), "COUNTRY": sha256_hex("ca")}


def test_date_order_applies_to_members() -> None:
    dmy = IdentityContext(date_order="dmy")
    assert _member({"birthdate": "02/03/1997"}, dmy).values["DOBM"] == sha256_hex("03")
    assert _member({"birthdate": "02/03/1997"}).values["DOBM"] == sha256_hex("02")


def test_unknown_member_field() -> None:
    result = _member({"fn": "Mary"})
    assert result.values == {}
    assert len(result.issues) == 1
    assert result.issues[0].field == "fn"
    assert result.issues[0].message.startswith("not an audience member field (email, phone, first_name")


def test_list_gives_first_usable_value_and_a_warning() -> None:
    result = _member({"email": ["bad", "A@example.com", "a@example.com", "b@example.com"]})
    assert result.values == {"EMAIL": sha256_hex("a@example.com")}
    assert result.issues == [
        FieldIssue("email", "not a valid email address (local@domain.tld, no spaces)", "dropped"),
        FieldIssue("email", "an audience row holds one value per key: extra values left out", "warning"),
    ]


@pytest.mark.parametrize(("value", "expected"), [(94035, "94035"), (94035.0, "94035")])
def test_numeric_zip(value: Any, expected: str) -> None:
    assert _member({"zip": value, "country": "us"}).values["ZIP"] == sha256_hex(expected)
