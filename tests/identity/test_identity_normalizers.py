"""Each normalizer on its own: the per-key rules of identity-rules.md, edge cases and their reasons."""

from __future__ import annotations

import pycountry
import pytest

from metabridge.identity.birthdate import normalize_birthdate
from metabridge.identity.email import normalize_email
from metabridge.identity.gender import normalize_gender
from metabridge.identity.ids import (
    build_fbc,
    normalize_extern_id,
    normalize_external_id,
    normalize_fbc,
    normalize_fbp,
    normalize_ip_address,
    normalize_madid,
    normalize_passthrough,
)
from metabridge.identity.issues import UnusableValue
from metabridge.identity.location import (
    CA_PROVINCES,
    US_STATES,
    country_code,
    normalize_country,
    normalize_state,
    normalize_zip,
)
from metabridge.identity.names import first_initial, normalize_city, normalize_name

# --------------------------------------------------------------------------------------------------- email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" John_Smith@Gmail.com ", "john_smith@gmail.com"),
        ("JOHN.SMITH+promo@Example.CO.UK", "john.smith+promo@example.co.uk"),
        ("\tmary@example.com\n", "mary@example.com"),
        ("Zoë@Exämple.de", "zoë@exämple.de"),
        ("Zoe\u0308@example.de", "zoë@example.de"),  # NFC: e + combining diaeresis -> ë
    ],
)
def test_email_normalized(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["a@b", "a", "abc", "@b.c", "a@b.c", ".c", "@", "john smith@gmail.com", "a@@b.com", "a@b.com.", "a@.com"],
)
def test_email_unusable(raw: str) -> None:
    with pytest.raises(UnusableValue, match=r"not a valid email address \(local@domain\.tld, no spaces\)"):
        normalize_email(raw)


# ---------------------------------------------------------------------------------------- names and city


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mary-Jane", "maryjane"),
        ("O'Brien", "obrien"),
        ("Jean Luc", "jeanluc"),
        ("Valéry", "valéry"),
        ("정", "정"),
        ("ZOË", "zoë"),
        ("  John2 ", "john"),
        ("Ana María", "anamaría"),
        ("李小龍", "李小龍"),
        ("Nguyễn", "nguyễn"),
        ("Vale\u0301ry", "valéry"),  # decomposed input is composed first (NFC), same hash as the doc example
        ("देवनागरी", "देवनागरी"),  # combining vowel signs are part of the letters
        ("Dr. Smith-Jones, Jr.", "drsmithjonesjr"),
    ],
)
def test_name_normalized(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "  ", "123", "-", "!!!", "🙂"])
def test_name_without_letters_unusable(raw: str) -> None:
    with pytest.raises(UnusableValue, match="no letters left"):
        normalize_name(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("São Paulo", "sãopaulo"),
        ("St. Louis", "stlouis"),
        ("New York", "newyork"),
        ("Saint-Étienne", "saintétienne"),
        ("London 2", "london"),
        ("東京", "東京"),
    ],
)
def test_city_follows_name_rule(raw: str, expected: str) -> None:
    assert normalize_city(raw) == expected


@pytest.mark.parametrize(("name", "initial"), [("mary", "m"), ("정", "정"), ("élodie", "é"), ("कि", "कि")])
def test_first_initial(name: str, initial: str) -> None:
    assert first_initial(name) == initial


# --------------------------------------------------------------------------------------------- country


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("United States", "us"),
        ("UK", "gb"),
        ("DEU", "de"),
        ("France", "fr"),
        ("us", "us"),
        ("USA", "us"),
        ("U.S.", "us"),
        ("U.S.A.", "us"),
        (" US ", "us"),
        ("united states of america", "us"),
        ("United Kingdom", "gb"),
        ("Great Britain", "gb"),
        ("England", "gb"),
        ("GBR", "gb"),
        ("Deutschland", "de"),
        ("España", "es"),
        ("Brasil", "br"),
        ("Côte d'Ivoire", "ci"),
        ("Ivory Coast", "ci"),
        ("South Korea", "kr"),
        ("Korea, Republic of", "kr"),
        ("North Korea", "kp"),
        ("Russia", "ru"),
        ("Türkiye", "tr"),
        ("Turkey", "tr"),
        ("Vietnam", "vn"),
        ("Viet Nam", "vn"),
        ("The Netherlands", "nl"),
        ("the Gambia", "gm"),
        ("Czech Republic", "cz"),
        ("République française", "fr"),
        ("UAE", "ae"),
    ],
)
def test_country_read(raw: str, expected: str) -> None:
    assert normalize_country(raw) == expected


@pytest.mark.parametrize(
    "raw", ["Atlantis", "N/A", "-", "Unknown", "XX", "Germanyy", "12", "us1", "Untied States", ""]
)
def test_country_never_guessed(raw: str) -> None:
    with pytest.raises(
        UnusableValue, match=r"unknown country .*\(ISO 3166-1 alpha-2, alpha-3 or English name expected\)"
    ):
        normalize_country(raw)


def test_country_message_quotes_the_value() -> None:
    with pytest.raises(UnusableValue) as info:
        normalize_country("Atlantis")
    assert (
        str(info.value) == "unknown country 'Atlantis' (ISO 3166-1 alpha-2, alpha-3 or English name expected)"
    )


def test_every_pycountry_code_and_name_is_read() -> None:
    for country in pycountry.countries:
        code = country.alpha_2.lower()
        assert normalize_country(country.alpha_2) == code
        assert normalize_country(country.alpha_3) == code
        assert normalize_country(country.name) == code, country.name
        for attr in ("official_name", "common_name"):
            name = getattr(country, attr, None)
            if name:
                assert normalize_country(name) == code, name


def test_country_code_helper_returns_none_when_unreadable() -> None:
    assert country_code("Germany") == "de"
    assert country_code("Atlantis") is None


# ---------------------------------------------------------------------------------------------- states


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("California", None, "ca"),
        ("new york", None, "ny"),
        ("NY", None, "ny"),
        ("N.Y.", None, "ny"),
        ("Calif.", "us", "ca"),
        ("Mass", "us", "ma"),
        ("District of Columbia", "us", "dc"),
        ("D.C.", "us", "dc"),
        ("Washington", "us", "wa"),
        ("Puerto Rico", None, "pr"),
        ("texas", "us", "tx"),
        ("Ontario", "ca", "on"),
        ("Ont.", "ca", "on"),
        ("Québec", "ca", "qc"),
        ("Quebec", "ca", "qc"),
        ("B.C.", "ca", "bc"),
        ("British Columbia", None, "bc"),
        ("QC", None, "qc"),
        ("Bayern", "de", "bayern"),
        ("Île-de-France", "fr", "îledefrance"),
        ("Greater London", "gb", "greaterlondon"),
        ("CA", "de", "ca"),  # not the US: name rule, no mapping
        ("Bayern", None, "bayern"),  # no country and not a US/Canadian name: name rule
    ],
)
def test_state(raw: str, country: str | None, expected: str) -> None:
    assert normalize_state(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country"), [("Bayern", "us"), ("Narnia", "us"), ("Texas", "ca"), ("", "us")]
)
def test_state_unknown_in_us_or_canada_left_out(raw: str, country: str) -> None:
    with pytest.raises(UnusableValue, match="not a (US state|Canadian province)"):
        normalize_state(raw, country)


@pytest.mark.parametrize("country", ["us", "ca"])
def test_state_tables_cover_pycountry_subdivisions(country: str) -> None:
    """Every US state/DC/territory and Canadian province/territory name and code maps to its code."""
    for sub in pycountry.subdivisions.get(country_code=country.upper()):
        code = sub.code.split("-")[1].lower()
        assert normalize_state(sub.name, country) == code, sub.name
        assert normalize_state(code.upper(), country) == code
    table = US_STATES if country == "us" else CA_PROVINCES
    assert {
        s.code.split("-")[1].lower() for s in pycountry.subdivisions.get(country_code=country.upper())
    } <= set(table)


# ------------------------------------------------------------------------------------------------- zip


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("94035-1234", None, "94035"),
        ("940351234", "us", "94035"),
        ("94035 1234", "us", "94035"),
        (" 94035", "us", "94035"),
        ("SW1A 1AA", None, "sw1a1aa"),
        ("SW1A 1AA", "gb", "sw1a1aa"),
        ("M1 1AE", "gb", "m11ae"),
        ("75018", None, "75018"),
        ("75018", "fr", "75018"),
        ("M5V 2T6", "ca", "m5v2t6"),
        ("01310-100", "br", "01310100"),
        ("940351234", "de", "940351234"),  # not the US: no cut
        ("1987", "au", "1987"),
    ],
)
def test_zip(raw: str, country: str | None, expected: str) -> None:
    assert normalize_zip(raw, country) == expected


@pytest.mark.parametrize("raw", ["9403", "ABCDE", "94035-12"])
def test_zip_us_must_be_5_or_9_digits(raw: str) -> None:
    with pytest.raises(UnusableValue, match=r"not a US ZIP code \(5 digits or ZIP\+4\)"):
        normalize_zip(raw, "us")


def test_zip_empty_after_cleaning() -> None:
    with pytest.raises(UnusableValue, match="no characters left"):
        normalize_zip(" - ", None)


# ------------------------------------------------------------------------------------------- birthdate


@pytest.mark.parametrize(
    ("raw", "order", "expected"),
    [
        ("1997-02-16", "mdy", "19970216"),
        ("2/16/1997", "mdy", "19970216"),
        ("16.02.1997", "mdy", "19970216"),
        ("19970216", "mdy", "19970216"),
        ("1997/02/16", "mdy", "19970216"),
        ("1997-2-6", "mdy", "19970206"),
        ("1997-02-16T10:30:00Z", "mdy", "19970216"),
        ("1997-02-16 00:00:00", "dmy", "19970216"),
        ("02/03/1997", "mdy", "19970203"),
        ("02/03/1997", "dmy", "19970302"),  # ambiguous: connection's order
        ("16/02/1997", "mdy", "19970216"),
        ("2/16/1997", "dmy", "19970216"),  # unambiguous either way
        ("02-16-1997", "mdy", "19970216"),
        ("16-02-1997", "dmy", "19970216"),
        ("6.2.1997", "mdy", "19970206"),
        ("2000-02-29", "mdy", "20000229"),
        ("1900-01-01", "mdy", "19000101"),
    ],
)
def test_birthdate(raw: str, order: str, expected: str) -> None:
    assert normalize_birthdate(raw, order) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1997-02-30", "not a real calendar date"),
        ("1900-02-29", "not a real calendar date"),
        ("1997-13-01", "not a real calendar date"),
        ("1899-12-31", "year outside 1900..current year"),
        ("2999-01-01", "year outside 1900..current year"),
        ("16/02/97", "not a readable date"),
        ("Feb 16 1997", "not a readable date"),
        ("1997", "not a readable date"),
        ("20/20/1997", "neither of the first two"),
        ("abcdefgh", "not a readable date"),
        ("1997-02-16-1", "not a readable date"),
    ],
)
def test_birthdate_unusable(raw: str, reason: str) -> None:
    with pytest.raises(UnusableValue, match=reason):
        normalize_birthdate(raw, "mdy")


# ---------------------------------------------------------------------------------------------- gender


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Female", "f"),
        ("M", "m"),
        ("male", "m"),
        ("MAN", "m"),
        ("Mr.", "m"),
        ("mr", "m"),
        ("f", "f"),
        ("woman", "f"),
        ("Mrs", "f"),
        ("Ms.", "f"),
        (" FEMALE ", "f"),
    ],
)
def test_gender(raw: str, expected: str) -> None:
    assert normalize_gender(raw) == expected


@pytest.mark.parametrize("raw", ["other", "U", "prefer not to say", "x", "miss"])
def test_gender_other_words_left_out(raw: str) -> None:
    with pytest.raises(UnusableValue, match="not a gender"):
        normalize_gender(raw)


# --------------------------------------------------------------------------------------------------- ids


def test_external_id_hashing_form_and_raw_form() -> None:
    assert normalize_external_id(" ABC 123 ", True) == "abc123"
    assert normalize_external_id(" ABC 123 ", False) == "ABC 123"  # unhashed: sent as given, trimmed


def test_extern_id_and_madid() -> None:
    assert normalize_extern_id("  CUST-0042 ") == "CUST-0042"
    assert normalize_madid(" 6D92078A-8246-4BA4-AE5B-76104861E7DC ") == "6d92078a-8246-4ba4-ae5b-76104861e7dc"


@pytest.mark.parametrize(
    "raw",
    [
        "168.212.226.204",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "2001:db8::1",
        "::1",
        "::",
        "fe80::1%eth0",
        "::ffff:192.0.2.1",
        "0.0.0.0",
        "1:2:3:4:5:6:7::",
    ],
)
def test_ip_accepted_as_given(raw: str) -> None:
    assert normalize_ip_address(f" {raw} ") == raw


@pytest.mark.parametrize(
    "raw",
    [
        "256.1.1.1",
        "1.2.3",
        "01.2.3.4",
        "1.2.3.4:8080",
        "localhost",
        "2001:db8::1::2",
        ":::",
        "12345::",
        "1:2:3:4:5:6:7:8:9",
    ],
)
def test_bad_ip_unusable(raw: str) -> None:
    with pytest.raises(UnusableValue, match="not an IPv4 or IPv6 address"):
        normalize_ip_address(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890",
        "fb.1.1554763741205.AbCdEf.ABcDEFGh",
        "fb.0.1554763741205.IwAR2F4-dbP0l7Mn1IawQQ_x",
    ],
)
def test_fbc_kept_exactly(raw: str) -> None:
    assert normalize_fbc(f" {raw}  ") == raw  # never lowercased


@pytest.mark.parametrize(
    "raw",
    ["fb.1.1554763741205", "fb.1.abc.IwAR", "FB.1.1554763741205.x", "fb.1.1.a.b.c", "IwAR2F4", "fb.1.1.a b"],
)
def test_bad_fbc_left_out(raw: str) -> None:
    with pytest.raises(UnusableValue, match=r"not a valid fbc \(fb\.<subdomain index>"):
        normalize_fbc(raw)


def test_fbp() -> None:
    assert normalize_fbp("fb.1.1596403881668.1116446470") == "fb.1.1596403881668.1116446470"
    with pytest.raises(UnusableValue, match="not a valid fbp"):
        normalize_fbp("1116446470")


def test_passthrough_trims_only() -> None:
    ua = "  Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36  "
    assert normalize_passthrough(ua) == ua.strip()
    with pytest.raises(UnusableValue, match="empty value"):
        normalize_passthrough("   ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://shop.example.com/p?utm_source=fb&fbclid=IwAR2F4-dbP0l7Mn",
            "fb.1.1554763741205.IwAR2F4-dbP0l7Mn",
        ),
        ("https://shop.example.com/?fbclid=AbC&x=1", "fb.1.1554763741205.AbC"),
        ("https://shop.example.com/p", None),
        ("https://shop.example.com/?fbclid=", None),
        (None, None),
    ],
)
def test_build_fbc_from_url(url: str | None, expected: str | None) -> None:
    assert build_fbc(url, 1554763741205) == expected
