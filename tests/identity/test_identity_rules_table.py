"""The declarative tables and the public hashing helpers: every documented key, hashed as documented."""

from __future__ import annotations

import hashlib

import pytest

from metabridge import identity
from metabridge.identity import is_sha256_hex, sha256_hex
from metabridge.identity.rules import AUDIENCE_RULES, CAPI_RULES, MEMBER_FIELDS, Hashing

CAPI_HASHED = {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country"}
CAPI_NEVER_HASHED = {
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "anon_id",
    "madid",
    "page_id",
    "page_scoped_user_id",
    "ctwa_clid",
    "ig_account_id",
    "ig_sid",
    "whatsapp_business_account_id",
    "instagram_business_account_id",
}
AUDIENCE_HASHED = {
    "EMAIL",
    "PHONE",
    "FN",
    "LN",
    "FI",
    "CT",
    "ST",
    "ZIP",
    "COUNTRY",
    "DOBY",
    "DOBM",
    "DOBD",
    "GEN",
}


def test_capi_table_covers_every_key_with_its_hashing() -> None:
    assert set(CAPI_RULES) == CAPI_HASHED | CAPI_NEVER_HASHED | {"external_id"}
    for key in CAPI_HASHED:
        assert CAPI_RULES[key].hashing is Hashing.ALWAYS, key
        assert CAPI_RULES[key].multi, key
    for key in CAPI_NEVER_HASHED:
        assert CAPI_RULES[key].hashing is Hashing.NEVER, key
    assert CAPI_RULES["external_id"].hashing is Hashing.BY_SETTING
    assert CAPI_RULES["external_id"].multi


def test_audience_table_covers_every_key_with_its_hashing() -> None:
    assert set(AUDIENCE_RULES) == AUDIENCE_HASHED | {"EXTERN_ID", "MADID"}
    for key, rule in AUDIENCE_RULES.items():
        assert rule.hashed is (key in AUDIENCE_HASHED), key
    assert set(MEMBER_FIELDS) == {
        "email",
        "phone",
        "first_name",
        "last_name",
        "birthdate",
        "gender",
        "city",
        "state",
        "zip",
        "country",
        "external_id",
        "madid",
    }
    assert [key for key, _, _ in MEMBER_FIELDS["first_name"].outputs] == ["FN", "FI"]
    assert [key for key, _, _ in MEMBER_FIELDS["birthdate"].outputs] == ["DOBY", "DOBM", "DOBD"]


def test_public_api() -> None:
    assert set(identity.__all__) >= {
        "IdentityContext",
        "FieldIssue",
        "UserDataResult",
        "normalize_user_data",
        "MemberIdentity",
        "normalize_member",
        "sha256_hex",
        "is_sha256_hex",
    }
    for name in identity.__all__:
        assert getattr(identity, name) is not None


@pytest.mark.parametrize("text", ["", "a", "john_smith@gmail.com", "정", "valéry", "x" * 1000])
def test_sha256_hex_is_lowercase_hex_of_utf8(text: str) -> None:
    digest = sha256_hex(text)
    assert digest == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert len(digest) == 64 and digest == digest.lower()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a" * 64, True),
        ("A" * 64, True),
        ("0123456789abcdefABCDEF" + "0" * 42, True),
        ("a" * 63, False),
        ("a" * 65, False),
        ("g" * 64, False),
        (" " + "a" * 64, False),
        ("", False),
        (None, False),
        (12, False),
        ("a" * 32, False),
    ],
)
def test_is_sha256_hex(value: object, expected: bool) -> None:
    assert is_sha256_hex(value) is expected
