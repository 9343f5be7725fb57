"""normalize_user_data: what one event's user_data becomes, and what is left out with which reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from metabridge.identity import FieldIssue, IdentityContext, UserDataResult, normalize_user_data, sha256_hex
from metabridge.identity.capi import CACHE_SIZES, cache_clear

US = IdentityContext(default_country="us")
NONE = IdentityContext()


def _norm(user: dict[str, Any], ctx: IdentityContext = NONE) -> UserDataResult:
    return normalize_user_data(user, ctx)


def test_full_record() -> None:
    result = _norm(
        {
            "em": " John_Smith@Gmail.com ",
            "ph": "(650)555-1212",
            "fn": "Mary-Jane",
            "ln": "O'Brien",
            "ge": "Female",
            "db": "2/16/1997",
            "ct": "St. Louis",
            "st": "Missouri",
            "zp": "63101-1234",
            "country": "United States",
            "external_id": "ABC 123",
            "client_ip_address": " 168.212.226.204 ",
            "client_user_agent": "Mozilla/5.0",
            "fbc": "fb.1.1554763741205.AbCdEf.ABcDEFGh",
            "fbp": "fb.1.1596403881668.1116446470",
            "madid": "6D92078A-8246-4BA4-AE5B-76104861E7DC",
            "lead_id": " 1234567890123456 ",
            "page_id": "1001",
        }
    )
    assert result.issues == []
    assert result.user_data == {
        "em": "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
        "ph": "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
        "fn": sha256_hex("maryjane"),
        "ln": sha256_hex("obrien"),
        "ge": sha256_hex("f"),
        "db": "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c",
        "ct": sha256_hex("stlouis"),
        "st": sha256_hex("mo"),
        "zp": sha256_hex("63101"),
        "country": "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",
        "external_id": sha256_hex("abc123"),
        "client_ip_address": "168.212.226.204",
        "client_user_agent": "Mozilla/5.0",
        "fbc": "fb.1.1554763741205.AbCdEf.ABcDEFGh",
        "fbp": "fb.1.1596403881668.1116446470",
        "madid": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
        "lead_id": "1234567890123456",
        "page_id": "1001",
    }


def test_output_keeps_input_key_order() -> None:
    result = _norm({"zp": "75018", "em": "a@example.com", "fn": "Jo"})
    assert list(result.user_data) == ["zp", "em", "fn"]


@pytest.mark.parametrize(
    "key", ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id"]
)
def test_already_hashed_passed_through_lowercased(key: str) -> None:
    digest = sha256_hex("anything")
    for raw in (digest, digest.upper(), f"  {digest.upper()} "):
        result = _norm({key: raw}, US)
        assert result.user_data == {key: digest}  # lowercased, not hashed again
        assert result.issues == []


def test_63_or_65_hex_chars_are_not_a_hash() -> None:
    result = _norm({"em": "a" * 63})
    assert result.user_data == {}
    assert result.issues[0].message.startswith("not a valid email address")


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_empty_values_left_out_never_hash_of_empty(raw: str) -> None:
    result = _norm({"em": raw, "fn": raw, "client_user_agent": raw})
    assert result.user_data == {}
    assert sha256_hex("") not in str(result)
    assert result.issues == [
        FieldIssue("user_data.em", "empty value", "dropped"),
        FieldIssue("user_data.fn", "empty value", "dropped"),
        FieldIssue("user_data.client_user_agent", "empty value", "dropped"),
    ]


def test_none_means_not_given() -> None:
    result = _norm({"em": None, "ph": None, "fbc": None})
    assert result.user_data == {}
    assert result.issues == []


@pytest.mark.parametrize(
    ("user", "issue"),
    [
        (
            {"em": "a@b"},
            FieldIssue("user_data.em", "not a valid email address (local@domain.tld, no spaces)", "dropped"),
        ),
        (
            {"country": "Atlantis"},
            FieldIssue(
                "user_data.country",
                "unknown country 'Atlantis' (ISO 3166-1 alpha-2, alpha-3 or English name expected)",
                "dropped",
            ),
        ),
        ({"db": "1997-02-30"}, FieldIssue("user_data.db", "not a real calendar date", "dropped")),
        (
            {"ge": "other"},
            FieldIssue(
                "user_data.ge",
                "not a gender 'other' (m/male/man/mr or f/female/woman/mrs/ms expected)",
                "dropped",
            ),
        ),
        (
            {"client_ip_address": "999.1.1.1"},
            FieldIssue("user_data.client_ip_address", "not an IPv4 or IPv6 address", "dropped"),
        ),
        (
            {"fbc": "fb.1.1554763741205"},
            FieldIssue(
                "user_data.fbc",
                "not a valid fbc (fb.<subdomain index>.<creation time ms>.<fbclid>[.<appendix>])",
                "dropped",
            ),
        ),
        (
            {"fn": "123"},
            FieldIssue(
                "user_data.fn",
                "no letters left after removing whitespace, punctuation, symbols and digits",
                "dropped",
            ),
        ),
        (
            {"zp": "9403", "country": "us"},
            FieldIssue("user_data.zp", "not a US ZIP code (5 digits or ZIP+4)", "dropped"),
        ),
        (
            {"st": "Narnia", "country": "USA"},
            FieldIssue("user_data.st", "not a US state name or 2-letter code", "dropped"),
        ),
        (
            {"email": "a@example.com"},
            FieldIssue("user_data.email", "not a Conversions API customer information parameter", "dropped"),
        ),
    ],
)
def test_left_out_with_reason(user: dict[str, Any], issue: FieldIssue) -> None:
    result = _norm(user)
    assert issue in result.issues
    key = issue.field.removeprefix("user_data.")
    assert key not in result.user_data


def test_issue_messages_do_not_echo_contact_information() -> None:
    result = _norm({"em": "john.secret@nowhere", "ph": "call-me-maybe", "db": "31/31/1990", "fn": "12345"})
    assert len(result.issues) == 4
    for issue in result.issues:
        for secret in ("john", "secret", "call", "1990", "12345"):
            assert secret not in issue.message


def test_lists_deduplicated_in_first_seen_order() -> None:
    result = _norm(
        {
            "em": ["B@example.com", " b@example.com", "a@example.com", "bad", "A@EXAMPLE.COM"],
            "ph": ["+1 650 555 1212", "(650) 555-1212", "+44 20 7946 0958"],
            "fn": ["Mary"],
        },
        US,
    )
    assert result.user_data == {
        "em": [sha256_hex("b@example.com"), sha256_hex("a@example.com")],
        "ph": [sha256_hex("16505551212"), sha256_hex("442079460958")],
        "fn": sha256_hex("mary"),  # one value -> plain string
    }
    assert result.issues == [
        FieldIssue("user_data.em", "not a valid email address (local@domain.tld, no spaces)", "dropped")
    ]


def test_list_of_only_bad_values_leaves_the_key_out() -> None:
    result = _norm({"em": ["", "x"]})
    assert result.user_data == {}
    assert [i.level for i in result.issues] == ["dropped", "dropped"]


def test_tuple_and_none_items() -> None:
    result = _norm({"external_id": ("A1", None, "a1", "B2")})
    assert result.user_data == {"external_id": [sha256_hex("a1"), sha256_hex("b2")]}


def test_single_value_keys_take_the_first_of_a_list_with_a_warning() -> None:
    result = _norm({"client_ip_address": ["1.2.3.4", "5.6.7.8"], "fbp": ["fb.1.1.a", "fb.1.1.a"]})
    assert result.user_data == {"client_ip_address": "1.2.3.4", "fbp": "fb.1.1.a"}
    assert result.issues == [
        FieldIssue(
            "user_data.client_ip_address", "this key takes one value: extra values left out", "warning"
        )
    ]


def test_numbers_and_dates_are_read() -> None:
    result = _norm(
        {
            "ph": 16505551212,
            "zp": 94035.0,
            "db": dt.date(1997, 2, 16),
            "external_id": 12345,
            "lead_id": 1234567890123456,
        },
        US,
    )
    assert result.user_data == {
        "ph": sha256_hex("16505551212"),
        "zp": sha256_hex("94035"),
        "db": sha256_hex("19970216"),
        "external_id": sha256_hex("12345"),
        "lead_id": "1234567890123456",
    }
    assert result.issues == []


@pytest.mark.parametrize("value", [True, {"a": 1}, float("nan"), object()])
def test_unreadable_types(value: Any) -> None:
    result = _norm({"fn": value})
    assert result.user_data == {}
    assert result.issues == [
        FieldIssue("user_data.fn", "unreadable value (text, number or date expected)", "dropped")
    ]


def test_nfc_before_lowercasing() -> None:
    composed = _norm({"fn": "Valéry", "ct": "São Paulo"})
    decomposed = _norm({"fn": "Vale\u0301ry", "ct": "Sa\u0303o Paulo"})
    assert (
        composed.user_data
        == decomposed.user_data
        == {
            "fn": "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c",
            "ct": sha256_hex("sãopaulo"),
        }
    )


def test_phone_region_is_the_record_country_before_the_default() -> None:
    ctx = IdentityContext(default_country="us")
    assert _norm({"ph": "020 7946 0958", "country": "UK"}, ctx).user_data["ph"] == sha256_hex("442079460958")
    assert _norm({"ph": "(650) 555-1212"}, ctx).user_data["ph"] == sha256_hex("16505551212")
    # an unreadable record country falls back to the default
    result = _norm({"ph": "(650) 555-1212", "country": "N/A"}, ctx)
    assert result.user_data == {"ph": sha256_hex("16505551212")}
    # country key order does not matter
    assert _norm({"country": "fr", "ph": "06 12 34 56 78"}).user_data["ph"] == sha256_hex("33612345678")
    assert _norm({"ph": "06 12 34 56 78", "country": "fr"}).user_data["ph"] == sha256_hex("33612345678")


def test_national_phone_without_any_region_is_a_warning() -> None:
    result = _norm({"ph": "(650) 555-1212"})
    assert result.user_data == {"ph": sha256_hex("6505551212")}
    assert result.issues == [
        FieldIssue(
            "user_data.ph",
            "national number without a known country: leading zeros dropped, no country code added "
            "(give the record's country or the connection's default_country)",
            "warning",
        )
    ]
    # the same value, seen again (memoized), reports the same warning
    assert _norm({"ph": "(650) 555-1212"}).issues == result.issues


def test_state_and_zip_use_the_record_country_not_the_default() -> None:
    ctx = IdentityContext(default_country="us")
    assert _norm({"st": "Bayern", "country": "DE"}, ctx).user_data == {
        "st": sha256_hex("bayern"),
        "country": sha256_hex("de"),
    }
    assert _norm({"zp": "940351234", "country": "DE"}, ctx).user_data["zp"] == sha256_hex("940351234")
    assert _norm({"zp": "940351234"}, ctx).user_data["zp"] == sha256_hex("94035")  # looks like ZIP+4
    assert _norm({"st": "Bayern"}, ctx).user_data["st"] == sha256_hex("bayern")


def test_hashed_country_gives_no_region() -> None:
    result = _norm({"country": sha256_hex("gb"), "ph": "020 7946 0958"})
    assert result.user_data["country"] == sha256_hex("gb")
    assert result.user_data["ph"] == sha256_hex("2079460958")
    assert result.issues[0].level == "warning"


def test_date_order_setting() -> None:
    assert _norm({"db": "02/03/1997"}).user_data["db"] == sha256_hex("19970203")
    dmy = IdentityContext(date_order="dmy")
    assert _norm({"db": "02/03/1997"}, dmy).user_data["db"] == sha256_hex("19970302")


def test_external_id_hashing_setting() -> None:
    assert _norm({"external_id": " ABC 123 "}).user_data == {"external_id": sha256_hex("abc123")}
    raw = IdentityContext(external_id_hashing=False)
    assert _norm({"external_id": [" ABC 123 ", "x1"]}, raw).user_data == {"external_id": ["ABC 123", "x1"]}
    digest = sha256_hex("x").upper()
    assert _norm({"external_id": digest}, raw).user_data == {"external_id": digest}  # unhashed: as given


def test_unhashed_keys_are_never_hashed_nor_lowercased() -> None:
    values = {
        "client_user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)",
        "fbc": "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk",
        "fbp": "fb.1.1596403881668.1116446470",
        "subscription_id": "Sub-1",
        "fb_login_id": "1234",
        "lead_id": "123456789012345",
        "anon_id": "Anon-ID",
        "page_id": "101",
        "page_scoped_user_id": "PSID-9",
        "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM",
        "ig_account_id": "17841400000000000",
        "ig_sid": "IGSID-1",
        "whatsapp_business_account_id": "WABA-1",
        "instagram_business_account_id": "IGBA-1",
        "client_ip_address": "2001:0DB8::1",
    }
    result = _norm({k: f" {v} " for k, v in values.items()})
    assert result.user_data == values
    assert result.issues == []


def test_ctx_default_country_accepts_other_spellings() -> None:
    assert IdentityContext(default_country="US").default_country == "us"
    assert IdentityContext(default_country="United Kingdom").default_country == "gb"
    with pytest.raises(ValueError, match="unknown default_country"):
        IdentityContext(default_country="Atlantis")
    with pytest.raises(ValueError, match="date_order"):
        IdentityContext(date_order="ymd")  # type: ignore[arg-type]


def test_results_do_not_depend_on_the_memo() -> None:
    """Bounded memos are emptied when full; outcomes must be the same on a cold and a warm memo, and a
    caller mutating its result must not change later results."""
    user = {"em": "A@example.com", "ph": "+1 650 555 1212", "ge": "x", "fbc": "fb.1.2.abc"}
    cache_clear()
    cold = _norm(user, US)
    warm = _norm(user, US)
    assert cold == warm
    warm.user_data["em"] = "tampered"
    warm.issues.clear()
    assert _norm(user, US) == cold
    for i in range(CACHE_SIZES["ge"] + 5):  # overflow the gender memo budget
        _norm({"ge": f"g{i}"})
    assert _norm(user, US) == cold
    cache_clear()


def test_memo_is_bounded_per_key_across_context_parts() -> None:
    """One key's memos (one per region/country) share one budget, so many regions cannot multiply memory."""
    from metabridge.identity import capi

    cache_clear()
    countries = ["de", "fr", "es", "it", "nl", "gb", "at", "be", "pl", "se"]
    size = CACHE_SIZES["st"]
    for i in range(size * 2 + 7):
        result = _norm({"st": f"Region {i:05d}", "country": countries[i % len(countries)]})
        assert "st" in result.user_data
    total = sum(len(memo) for (key, _), memo in capi._MEMOS.items() if key == "st")
    assert 0 < total <= size
    cache_clear()
