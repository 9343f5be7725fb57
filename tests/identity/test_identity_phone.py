"""Phone numbers: international digits with country code, from national numbers via the record's region.

Also holds the shortcut paths to ``phonenumbers.parse`` (NANP and metadata-driven national numbers, plain
IPv6 is elsewhere) to the library's own answers on random numbers, so a metadata update cannot silently
make them disagree.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, ValidationResult

from metabridge.identity.issues import UnusableValue
from metabridge.identity.phone import NO_REGION_WARNING, _plan, normalize_phone, phone_region_warning


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # identity-rules.md examples
        ("(650)555-1212", "us", "16505551212"),
        ("+44 20 7946 0958", None, "442079460958"),
        ("020 7946 0958", "gb", "442079460958"),
        ("0044 20 7946 0958", None, "442079460958"),
        ("06 12 34 56 78", "fr", "33612345678"),
        # international spellings: the region does not matter
        ("+44 20 7946 0958", "us", "442079460958"),
        ("0044 20 7946 0958", "us", "442079460958"),
        ("+44 (0)20 7946 0958", None, "442079460958"),
        ("+44 (0) 20 7946 0958", "gb", "442079460958"),
        ("+49 (0)30 123456", None, "4930123456"),
        ("+1 (650) 555-1212", None, "16505551212"),
        ("+1.650.555.1212", None, "16505551212"),
        ("tel:+1-650-555-1212", None, "16505551212"),
        ("+1 650 555 1212 x23", None, "16505551212"),
        ("0033 6 12 34 56 78", "fr", "33612345678"),
        # national numbers, region from the record or the connection
        ("650-555-1212", "us", "16505551212"),
        ("650.555.1212", "US", "16505551212"),
        ("1-650-555-1212", "us", "16505551212"),
        ("16505551212", "us", "16505551212"),
        (" 650 555 1212 ", "us", "16505551212"),
        ("650-555-1212 ext. 12", "us", "16505551212"),
        ("(416) 555-0199", "ca", "14165550199"),
        ("07911 123456", "gb", "447911123456"),
        ("(020) 7946 0958", "gb", "442079460958"),
        ("(0)20 7946 0958", "gb", "442079460958"),
        ("030/1234567", "de", "49301234567"),
        ("0151 12345678", "de", "4915112345678"),
        ("612 345 678", "es", "34612345678"),
        ("06 1234 5678", "it", "390612345678"),  # Italy keeps the leading 0
        ("(11) 91234-5678", "br", "5511912345678"),
        ("0412 345 678", "au", "61412345678"),
        ("011 44 20 7946 0958", "us", "442079460958"),  # US international dialling prefix
        (
            "\uff16\uff15\uff10\uff15\uff15\uff15\uff11\uff12\uff11\uff12",
            "us",
            "16505551212",
        ),  # full-width digits
    ],
)
def test_phone(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected
    assert phone_region_warning(raw, region) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("(650)555-1212", "6505551212"), ("020 7946 0958", "2079460958"), ("0650 555 1212", "6505551212")],
)
def test_national_phone_without_region_sent_with_warning(raw: str, expected: str) -> None:
    """No country code can be added: leading zeros dropped, digits sent, counted as a warning."""
    assert normalize_phone(raw, None) == expected
    assert phone_region_warning(raw, None) == NO_REGION_WARNING


def test_unsupported_region_counts_as_no_region() -> None:
    assert normalize_phone("0201 2345", "aq") == "2012345"
    assert phone_region_warning("0201 2345", "aq") == NO_REGION_WARNING


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("1-800-FLOWERS", "us", "not a phone number"),
        ("n/a", "us", "not a phone number"),
        ("+", "us", "not a phone number"),
        ("+123", None, r"7 to 15 digits"),
        ("+1234567890123456", None, r"7 to 15 digits"),
        ("00", "us", r"7 to 15 digits"),
        ("555-1212", "us", "local number without area code for region US"),
        ("33612345678", "us", "not a possible phone number for region US"),
        ("12", "gb", "not a p"),
    ],
)
def test_phone_unusable(raw: str, region: str | None, reason: str) -> None:
    with pytest.raises(UnusableValue, match=reason):
        normalize_phone(raw, region)


def _reference(digits: str, region: str) -> str | None:
    """What phonenumbers itself makes of a national digits-only number (None: not a possible number)."""
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]


@pytest.mark.parametrize(
    "region", ["US", "CA", "GB", "FR", "DE", "ES", "IT", "BR", "AU", "NL", "IN", "MX", "JP", "AR"]
)
def test_shortcuts_agree_with_phonenumbers(region: str) -> None:
    rng = random.Random(region)
    checked = 0
    for _ in range(1500):
        prefix = rng.choice(["", "0", "0", "1", "9", "00", "01"])
        digits = (prefix + "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 13))))[:17]
        if digits.startswith("00") or len(digits) < 2:
            continue  # "00..." is international by metabridge's own rule, before any region is used
        expected = _reference(digits, region)
        try:
            got: str | None = normalize_phone(digits, region)
        except UnusableValue:
            got = None
        if len(digits.lstrip("0")) < 7 or len(digits.lstrip("0")) > 15:
            continue
        assert got == expected, (region, digits)
        checked += 1
    assert checked > 300


@pytest.mark.parametrize(
    ("region", "raw"),
    [
        ("GB", "07911123456"),
        ("GB", "02079460958"),
        ("FR", "0612345678"),
        ("DE", "0301234567"),
        ("ES", "612345678"),
        ("BR", "11912345678"),
        ("US", "6505551212"),
    ],
)
def test_common_national_numbers_take_the_shortcut(region: str, raw: str) -> None:
    """Speed guarantee: these never reach phonenumbers.parse (~40 µs each)."""
    plan = _plan(region)
    assert plan is not None
    assert plan.national(raw) == _reference(raw, region)


def _outcome(raw: str, region: str) -> str:
    try:
        return normalize_phone(raw, region)
    except UnusableValue as exc:
        return f"rejected: {exc}"


@pytest.mark.parametrize(
    "region", ["US", "CA", "GB", "FR", "DE", "ES", "IT", "BR", "AU", "NL", "IN", "MX", "JP", "AR", "CH", "SE"]
)
def test_shortcuts_give_what_parse_gives_including_rejections(region: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every national number, accepted or rejected (with its message), is the same with the metadata shortcut
    as through ``phonenumbers.parse`` (shortcut turned off)."""
    import metabridge.identity.phone as phone

    rng = random.Random(f"reject-{region}")
    numbers = []
    for _ in range(1500):
        prefix = rng.choice(["", "0", "0", "1", "9", "01", "011", "07", "2"])
        numbers.append(prefix + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 16))))
    numbers = [n for n in numbers if n and not n.startswith("00")]
    with_shortcut = [_outcome(n, region) for n in numbers]
    monkeypatch.setattr(phone, "_plan", lambda region: None)
    through_parse = [_outcome(n, region) for n in numbers]
    assert with_shortcut == through_parse
    assert sum(o.startswith("rejected") for o in through_parse) > 100
    assert sum(not o.startswith("rejected") for o in through_parse) > 50
