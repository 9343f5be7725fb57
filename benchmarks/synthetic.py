"""Deterministic synthetic marketing events with realistic, messy customer data.

Reusable by every benchmark: the same ``(n_events, n_people, seed, now_ms)`` always yields the same events
(only :class:`random.Random` with a fixed seed is used; no set or hash ordering is involved).

What the data looks like, and why:

- **People** come from seven countries (US, GB, FR, DE, CA, ES, BR) and write their details the way real
  CRMs, checkout forms and CDPs store them: emails with capitals and stray spaces, phones in national and
  international spellings (``(650) 555-1212``, ``+44 20 7946 0958``, ``06 12 34 56 78``,
  ``0049 30 123456``, ``650.555.1212``), names with accents, hyphens and apostrophes, cities, states as
  names or codes, ZIP+4 / spaced postcodes, the country as a name, alpha-2 or alpha-3 code (or missing),
  birthdates in several formats, gender words, an IP (v4 or v6), a browser user agent, an ``_fbp`` cookie
  and an external id. A small share of values is broken (``a@b``, ``N/A``, ``other``), as in real data.
- **Events** follow a shop funnel (page views, product views, carts, checkouts, purchases). Page views of
  anonymous visitors carry only browser data; logged-in visitors and purchases carry the full profile.
  Some landing URLs carry an ``fbclid``. Timestamps (ISO 8601 in several spellings or Unix seconds) fall
  within the six days before ``now_ms`` so that none is too old for the Conversions API.
- **Repetition**: with ``n_people < n_events`` every person gets at least one event and the rest are
  spread with a skewed (Zipf-like) weight, as real traffic repeats people across page views, carts and
  purchases. A person's values are spelled the same way each time (one CRM record), so repeated people
  repeat exact strings. With ``n_people == n_events`` every event is a different person.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "DEFAULT_SEED",
    "NOW_MS",
    "DatasetSpec",
    "generate_events",
    "generate_people",
    "dataset",
    "DATASETS",
]

DEFAULT_SEED = 20_261_120

#: Fixed "now" for every benchmark (2026-11-20T12:00:00Z), so results never depend on the wall clock.
NOW_MS = int(datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc).timestamp() * 1000)

# ------------------------------------------------------------------------------------------------------
# Value pools. Each country: spellings of the country, phone formatters, (city, state spellings, zip base)
# places, first/last names, email domains, currency, birthdate formats.


def _digits(rng: random.Random, n: int) -> str:
    return f"{rng.randrange(10**n):0{n}d}"


def _pick(rng: random.Random, values: tuple[Any, ...] | list[Any], cum_weights: list[float]) -> Any:
    """``rng.choices(values, cum_weights=...)[0]`` without rebuilding the cumulative weights each call."""
    return values[bisect.bisect(cum_weights, rng.random() * cum_weights[-1])]


def _us_phone(rng: random.Random) -> str:
    area = rng.choice(["212", "415", "650", "312", "617", "305", "206", "512", "303", "404", "213", "702"])
    exch = str(rng.randint(200, 999))
    line = _digits(rng, 4)
    return rng.choices(
        [
            f"({area}) {exch}-{line}",
            f"{area}-{exch}-{line}",
            f"{area}.{exch}.{line}",
            f"+1 {area} {exch} {line}",
            f"1-{area}-{exch}-{line}",
            f"{area}{exch}{line}",
            f"+1 ({area}) {exch}-{line}",
            f" {area} {exch} {line} ",
        ],
        weights=[25, 20, 8, 12, 6, 15, 8, 6],
    )[0]


def _ca_phone(rng: random.Random) -> str:
    area = rng.choice(["416", "604", "514", "403", "613"])
    exch = str(rng.randint(200, 999))
    line = _digits(rng, 4)
    return rng.choice(
        [f"+1 ({area}) {exch}-{line}", f"{area}-{exch}-{line}", f"({area}) {exch} {line}", f"1{area}{exch}{line}"]
    )


def _gb_phone(rng: random.Random) -> str:
    if rng.random() < 0.55:  # mobile 07xxx xxxxxx
        a, b = "7" + _digits(rng, 3), _digits(rng, 6)
    else:  # London landline 020 xxxx xxxx
        a, b = "20", _digits(rng, 4) + " " + _digits(rng, 4)
    return rng.choices(
        [f"+44 {a} {b}", f"0{a} {b}", f"+44 (0){a} {b}", f"0044 {a} {b}", f"+44{a}{b.replace(' ', '')}"],
        weights=[30, 35, 12, 8, 15],
    )[0]


def _fr_phone(rng: random.Random) -> str:
    first = rng.choice(["6", "7", "1", "4"])
    pairs = [_digits(rng, 2) for _ in range(4)]
    return rng.choices(
        [
            f"0{first} " + " ".join(pairs),
            f"0{first}." + ".".join(pairs),
            f"+33 {first} " + " ".join(pairs),
            f"0033 {first} " + " ".join(pairs),
            f"0{first}" + "".join(pairs),
            f"+33 (0){first} " + " ".join(pairs),
        ],
        weights=[35, 12, 20, 8, 17, 8],
    )[0]


def _de_phone(rng: random.Random) -> str:
    if rng.random() < 0.5:  # mobile 015x/016x/017x
        pre, num = rng.choice(["151", "160", "171", "176"]), _digits(rng, 7)
    else:  # landline Berlin/Munich/Hamburg
        pre, num = rng.choice(["30", "89", "40", "221"]), _digits(rng, rng.choice([6, 7, 8]))
    return rng.choices(
        [f"0049 {pre} {num}", f"+49 {pre} {num}", f"0{pre} {num}", f"+49 (0){pre} {num}", f"0{pre}/{num}",
         f"0{pre}-{num}"],
        weights=[12, 30, 25, 10, 15, 8],
    )[0]


def _es_phone(rng: random.Random) -> str:
    n = rng.choice(["6", "9"]) + _digits(rng, 8)
    return rng.choice([f"+34 {n[:3]} {n[3:5]} {n[5:7]} {n[7:]}", f"{n[:3]} {n[3:6]} {n[6:]}", f"0034 {n}", n])


def _br_phone(rng: random.Random) -> str:
    ddd = rng.choice(["11", "21", "31", "41"])
    n = "9" + _digits(rng, 8)
    return rng.choice([f"+55 {ddd} {n[:5]}-{n[5:]}", f"({ddd}) {n[:5]}-{n[5:]}", f"0055 {ddd} {n}", f"{ddd}{n}"])


@dataclass(frozen=True)
class _Country:
    weight: int
    spellings: tuple[str, ...]
    phone: Any
    places: tuple[tuple[str, tuple[str, ...], str], ...]  # (city, state spellings, zip base)
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    domains: tuple[str, ...]
    currency: tuple[str, ...]
    date_formats: tuple[str, ...]
    zip_style: str  # "us", "ca", "gb", "plain", "br"


_COUNTRIES: tuple[_Country, ...] = (
    _Country(
        44,
        ("US", "us", "USA", "United States", "United States of America", "usa", "U.S.", "US ", "United states"),
        _us_phone,
        (
            ("San Francisco", ("California", "CA", "ca", "Calif."), "941"),
            ("New York", ("New York", "NY", "ny", "N.Y."), "100"),
            ("Chicago", ("Illinois", "IL", "il"), "606"),
            ("Austin", ("Texas", "TX", "tx"), "787"),
            ("Seattle", ("Washington", "WA"), "981"),
            ("Boston", ("Massachusetts", "MA", "Mass"), "021"),
            ("Miami", ("Florida", "FL", "fl"), "331"),
            ("St. Louis", ("Missouri", "MO"), "631"),
            ("Denver", ("Colorado", "CO"), "802"),
            ("Atlanta", ("Georgia", "GA"), "303"),
            ("Los Angeles", ("California", "CA", "Ca"), "900"),
            ("Washington", ("District of Columbia", "DC", "D.C."), "200"),
        ),
        ("John", "Mary-Jane", "Michael", "Jennifer", "D'Andre", "Zoë", "José", "Emily", "ROBERT", "mary jane",
         "Chloé", "DeShawn", "Ana María", "Christopher", "Ashley", "Nguyễn", "Liam", "Olivia"),
        ("Smith", "O'Brien", "Johnson", "García", "Williams", "Nguyen", "McDonald", "Van der Berg", "Brown",
         "Rodriguez-Lopez", "DAVIS", "o'connor", "Miller", "Wilson", "Kim", "Thompson"),
        ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com", "comcast.net"),
        ("USD", "usd", " USD"),
        ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%-m/%-d/%Y", "%m-%d-%Y"),
        "us",
    ),
    _Country(
        15,
        ("GB", "UK", "United Kingdom", "GBR", "England", "gb", "uk", "Great Britain"),
        _gb_phone,
        (
            ("London", ("England", "Greater London", ""), "SW1A"),
            ("Manchester", ("England", "Greater Manchester"), "M1"),
            ("Birmingham", ("England", "West Midlands"), "B1"),
            ("Edinburgh", ("Scotland",), "EH1"),
            ("Leeds", ("England", "West Yorkshire"), "LS1"),
            ("Cardiff", ("Wales",), "CF10"),
        ),
        ("Oliver", "Siobhán", "Amelia", "Harry", "Chloë", "Isla-Rose", "George", "Niamh", "JACK", "Sophie"),
        ("Smith", "O'Neill", "Jones", "Taylor", "Brontë", "Ffion-Davies", "Williams", "Evans", "MacLeod",
         "Wright"),
        ("gmail.com", "yahoo.co.uk", "hotmail.co.uk", "btinternet.com", "outlook.com", "sky.com"),
        ("GBP", "gbp", " GBP "),
        ("%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y"),
        "gb",
    ),
    _Country(
        12,
        ("FR", "France", "FRA", "fr", "france", "République française"),
        _fr_phone,
        (
            ("Paris", ("Île-de-France", "IDF", "Ile de France"), "750"),
            ("Lyon", ("Auvergne-Rhône-Alpes", "Rhône"), "690"),
            ("Marseille", ("Provence-Alpes-Côte d'Azur", "PACA"), "130"),
            ("Saint-Étienne", ("Auvergne-Rhône-Alpes", "Loire"), "420"),
            ("Toulouse", ("Occitanie", "Haute-Garonne"), "310"),
            ("Nice", ("Provence-Alpes-Côte d'Azur",), "060"),
        ),
        ("Françoise", "Jean-Luc", "Hélène", "Benoît", "Zoé", "Amélie", "Jérôme", "Anaïs", "Camille", "LÉA"),
        ("Dubois", "Lefèvre", "Saint-Exupéry", "Martin", "D'Artagnan", "Bernard", "Moreau", "de la Fontaine",
         "Laurent", "Roussel"),
        ("gmail.com", "orange.fr", "free.fr", "laposte.net", "wanadoo.fr", "sfr.fr"),
        ("EUR", "eur", "Eur"),
        ("%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y"),
        "plain",
    ),
    _Country(
        12,
        ("DE", "Germany", "Deutschland", "DEU", "de", "germany"),
        _de_phone,
        (
            ("Berlin", ("Berlin", "BE"), "101"),
            ("München", ("Bayern", "Bavaria", "BY"), "803"),
            ("Hamburg", ("Hamburg", "HH"), "200"),
            ("Köln", ("Nordrhein-Westfalen", "NRW"), "506"),
            ("Frankfurt am Main", ("Hessen", "Hesse"), "603"),
            ("Düsseldorf", ("Nordrhein-Westfalen",), "402"),
        ),
        ("Jürgen", "Anna-Lena", "Lukas", "Sören", "Maximilian", "Günther", "Lea", "Jörg", "Mia", "FELIX"),
        ("Müller", "Schröder", "Schmidt", "von Weizsäcker", "Meyer-Lübke", "Weiß", "Fischer", "Schneider",
         "Hoffmann", "Groß"),
        ("gmail.com", "web.de", "gmx.de", "t-online.de", "gmx.net", "outlook.de"),
        ("EUR", "eur"),
        ("%d.%m.%Y", "%Y-%m-%d", "%d.%m.%Y", "%Y%m%d"),
        "plain",
    ),
    _Country(
        7,
        ("CA", "Canada", "CAN", "ca", "canada"),
        _ca_phone,
        (
            ("Toronto", ("Ontario", "ON", "Ont."), "M5V"),
            ("Vancouver", ("British Columbia", "BC", "B.C."), "V6B"),
            ("Montréal", ("Québec", "QC", "Quebec"), "H2X"),
            ("Calgary", ("Alberta", "AB"), "T2P"),
        ),
        ("Liam", "Émilie", "Noah", "Chloé", "Jean-François", "Olivia", "Ethan", "Sophie", "Mathéo", "Ava"),
        ("Tremblay", "Roy", "Côté", "Smith", "Gagnon", "O'Reilly", "Wong", "MacDonald", "Bouchard", "Lee"),
        ("gmail.com", "hotmail.ca", "yahoo.ca", "rogers.com", "outlook.com", "videotron.ca"),
        ("CAD", "cad"),
        ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y"),
        "ca",
    ),
    _Country(
        5,
        ("ES", "Spain", "España", "ESP", "es"),
        _es_phone,
        (
            ("Madrid", ("Madrid", "Comunidad de Madrid", "M"), "280"),
            ("Barcelona", ("Cataluña", "Catalunya", "B"), "080"),
            ("A Coruña", ("Galicia", "C"), "150"),
            ("Sevilla", ("Andalucía", "SE"), "410"),
        ),
        ("José", "María", "Nuñez", "Ángel", "Lucía", "Iñigo", "Ana Belén", "Álvaro", "Sofía", "Pau"),
        ("García", "Fernández", "Núñez", "López-Ibáñez", "Martínez", "de la Cruz", "Sánchez", "Pérez",
         "Muñoz", "Gómez"),
        ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"),
        ("EUR", "eur"),
        ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y"),
        "plain",
    ),
    _Country(
        5,
        ("BR", "Brazil", "Brasil", "BRA", "br"),
        _br_phone,
        (
            ("São Paulo", ("São Paulo", "SP", "Sao Paulo"), "013"),
            ("Rio de Janeiro", ("Rio de Janeiro", "RJ"), "200"),
            ("Belo Horizonte", ("Minas Gerais", "MG"), "301"),
            ("Curitiba", ("Paraná", "PR"), "800"),
        ),
        ("João", "Maria", "Luís", "Ana Clara", "Gabriel", "Júlia", "Pedro", "Letícia", "Conceição", "Thiago"),
        ("Silva", "Santos", "Oliveira", "Souza", "Da Silva", "Pereira", "Conceição", "Gonçalves", "Araújo",
         "Lima"),
        ("gmail.com", "hotmail.com", "uol.com.br", "bol.com.br", "yahoo.com.br"),
        ("BRL", "brl"),
        ("%d/%m/%Y", "%Y-%m-%d"),
        "br",
    ),
)
_COUNTRY_CUM = list(itertools.accumulate(c.weight for c in _COUNTRIES))

_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/489.0.0.38.106;FBBV/659000000;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/18.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.107 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/488.0.0.62.79;]",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Linux; Android 12; moto g(60)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.6668.100 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-G991B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
)
_UA_CUM = list(itertools.accumulate([14, 6, 9, 7, 14, 6, 5, 8, 5, 4, 5, 2, 3, 2, 2, 3]))

_GENDER_WORDS = ("M", "m", "male", "Male", "MALE", "F", "f", "female", "Female", "FEMALE", "woman", "man",
                 "Mr.", "Mrs", "Ms", "other", "U", "prefer not to say")
_GENDER_CUM = list(itertools.accumulate((14, 8, 10, 6, 2, 14, 8, 10, 6, 2, 3, 3, 3, 2, 2, 2, 2, 1)))

_BROKEN_EMAILS = ("a@b", "n/a", "test@test", "john smith@gmail.com", "noemail", "@gmail.com")
_SHOP_PATHS = ("", "products/linen-shirt", "products/trail-runner-2", "collections/sale", "cart", "checkout",
               "products/espresso-cup-set", "blogs/news/winter-guide", "search?q=socks",
               "products/wool-beanie?variant=4471")
_EVENT_KINDS = ("page_view", "view_item", "add_to_cart", "begin_checkout", "purchase")
_EVENT_CUM = list(itertools.accumulate((50, 20, 15, 7, 8)))
_TS_STYLES = ("iso_z", "iso_ms", "iso_offset", "unix", "unix_str", "iso_naive")
_TS_CUM = list(itertools.accumulate((35, 20, 10, 20, 8, 7)))


def _messy_case(rng: random.Random, s: str) -> str:
    r = rng.random()
    if r < 0.62:
        return s
    if r < 0.74:
        return s.upper()
    if r < 0.84:
        return s.lower()
    if r < 0.92:
        return f" {s}"
    return f"{s}  "


_ASCII = str.maketrans("àáâãäåçèéêëìíîïñòóôõöùúûüýÿßøæœễ", "aaaaaaceeeeiiiinooooouuuuyysoaoe")


def _ascii_slug(s: str) -> str:
    return "".join(c for c in s.lower().translate(_ASCII) if c.isalnum())


def _zip(rng: random.Random, style: str, base: str) -> str:
    if style == "us":
        z = base + _digits(rng, 2)
        plus4 = _digits(rng, 4)
        return rng.choices([z, f"{z}-{plus4}", f"{z} {plus4}", f"{z}{plus4}", f" {z}"], weights=[50, 25, 8, 7, 10])[0]
    if style == "gb":
        inward = f"{rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        return rng.choice([f"{base} {inward}", f"{base}{inward}", f"{base} {inward}".lower()])
    if style == "ca":
        inward = f"{rng.randint(1, 9)}{rng.choice('ABCEGHJKLMNPRSTVXY')}{rng.randint(1, 9)}"
        return rng.choice([f"{base} {inward}", f"{base}{inward}", f"{base.lower()} {inward.lower()}"])
    if style == "br":
        return rng.choice([f"{base}{_digits(rng, 2)}-{_digits(rng, 3)}", f"{base}{_digits(rng, 5)}"])
    z = base + _digits(rng, 2)
    return rng.choice([z, z, z, f" {z}", f"{z[:2]} {z[2:]}"])


def _birthdate(rng: random.Random, formats: tuple[str, ...]) -> str:
    day = datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
    fmt = rng.choice(formats)
    if fmt == "%-m/%-d/%Y":
        return f"{day.month}/{day.day}/{day.year}"
    return day.strftime(fmt)


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.78:
        return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    groups = [f"{rng.randrange(0x10000):x}" for _ in range(5)]
    return f"2a02:{groups[0]}:{groups[1]}:{groups[2]}::{groups[3]}:{groups[4]}"


def make_person(rng: random.Random, pid: int) -> dict[str, Any]:
    """One person's ``user`` record (keys absent when the source has no value)."""
    c = _pick(rng, _COUNTRIES, _COUNTRY_CUM)
    first = rng.choice(c.first_names)
    last = rng.choice(c.last_names)
    user: dict[str, Any] = {}
    r = rng.random()
    if r < 0.84:
        f, l = _ascii_slug(first) or "x", _ascii_slug(last) or "y"
        local = rng.choice([f"{f}.{l}", f"{f}{l}", f"{f[0]}{l}", f"{f}_{l}", f"{l}.{f}"])
        local = f"{local}{pid}" if rng.random() < 0.6 else f"{local}.{pid}"
        email = f"{local}@{rng.choice(c.domains)}"
        style = rng.random()
        if style < 0.25:  # as typed on a phone keyboard: capitalized
            email = email[:1].upper() + email[1:]
        elif style < 0.35:
            email = email.upper()
        elif style < 0.5:
            email = f"  {email} "
        elif style < 0.55:
            email = email.title()
        user["email"] = email
    elif r < 0.86:
        user["email"] = rng.choice(_BROKEN_EMAILS)
    if rng.random() < 0.62:
        user["phone"] = c.phone(rng)
    if rng.random() < 0.76:
        user["first_name"] = _messy_case(rng, first)
        user["last_name"] = _messy_case(rng, last)
    if rng.random() < 0.5:
        user["gender"] = _pick(rng, _GENDER_WORDS, _GENDER_CUM)
    if rng.random() < 0.36:
        user["birthdate"] = _birthdate(rng, c.date_formats)
    if rng.random() < 0.56:
        city, states, zip_base = rng.choice(c.places)
        user["city"] = _messy_case(rng, city)
        state = rng.choice(states)
        if state:
            user["state"] = state
        user["zip"] = _zip(rng, c.zip_style, zip_base)
    r = rng.random()
    if r < 0.9:
        user["country"] = rng.choice(c.spellings)
    elif r < 0.92:
        user["country"] = rng.choice(("N/A", "-", "Unknown"))
    if rng.random() < 0.7:
        user["external_id"] = rng.choice([f"cust_{pid:07d}", f"{pid + 100_000}", f"U-{pid:06X}"])
    user["ip"] = _ip(rng)
    user["user_agent"] = _pick(rng, _USER_AGENTS, _UA_CUM)
    if rng.random() < 0.8:
        user["fbp"] = f"fb.1.{NOW_MS - rng.randrange(1, 90 * 86_400_000)}.{rng.randrange(10**9, 10**10)}"
    return user


def generate_people(n_people: int, rng: random.Random, first_id: int = 0) -> list[dict[str, Any]]:
    return [make_person(rng, first_id + i) for i in range(n_people)]


_ANON_KEYS = ("ip", "user_agent", "fbp")


def _timestamp(rng: random.Random, ms: int) -> Any:
    style = _pick(rng, _TS_STYLES, _TS_CUM)
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if style == "iso_z":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "iso_ms":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if style == "iso_offset":
        return moment.astimezone(timezone(timedelta(hours=1))).isoformat(timespec="seconds")
    if style == "unix":
        return ms // 1000
    if style == "unix_str":
        return str(ms // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


_QTY_CUM = [70, 90, 97, 100]


def _items(rng: random.Random, n: int) -> list[dict[str, Any]]:
    items = []
    for _ in range(n):
        item: dict[str, Any] = {"id": f"SKU-{rng.randrange(1, 5000):05d}", "quantity": _pick(rng, (1, 2, 3, 4), _QTY_CUM),
                                "price": round(rng.uniform(4, 180), 2)}
        items.append(item)
    return items


def make_event(rng: random.Random, person: dict[str, Any], seq: int, now_ms: int, seed: int) -> dict[str, Any]:
    """One incoming event for ``person`` (``seq`` makes the event id unique within the data set)."""
    kind = _pick(rng, _EVENT_KINDS, _EVENT_CUM)
    ts_ms = now_ms - rng.randrange(60_000, 6 * 86_400_000)
    logged_in = {"page_view": 0.4, "view_item": 0.45, "add_to_cart": 0.6, "begin_checkout": 0.9}.get(kind, 1.0)
    if rng.random() < logged_in:
        user = dict(person)
    else:
        user = {k: person[k] for k in _ANON_KEYS if k in person}
        if "external_id" in person and rng.random() < 0.3:
            user["external_id"] = person["external_id"]
    url = f"https://shop.example.com/{rng.choice(_SHOP_PATHS)}"
    if rng.random() < 0.12:
        fbclid = "IwAR" + base64.urlsafe_b64encode(rng.randbytes(30)).decode()
        url += ("&" if "?" in url else "?") + f"utm_source=facebook&utm_medium=paid&fbclid={fbclid}"
    event: dict[str, Any] = {
        "event": kind,
        "event_id": f"{seed:x}-{seq:08d}",
        "timestamp": _timestamp(rng, ts_ms),
        "url": url,
        "user": user,
    }
    if rng.random() < 0.93:
        event["action_source"] = "website"
    if kind != "page_view":
        n_items = {"view_item": 1, "add_to_cart": rng.choice([1, 1, 2])}.get(kind) or rng.randint(1, 5)
        items = _items(rng, n_items)
        value = round(sum(i["price"] * i["quantity"] for i in items), 2)
        country = user.get("country")
        currency = "USD"
        for c in _COUNTRIES:
            if country in c.spellings:
                currency = rng.choice(c.currency)
                break
        props: dict[str, Any] = {"value": value if rng.random() < 0.9 else f"{value:.2f}", "currency": currency,
                                 "items": items}
        if kind == "purchase":
            props["order_id"] = f"ORD-{seed % 1000:03d}-{seq:08d}"
        event["properties"] = props
    return event


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    n_events: int
    n_people: int
    seed: int = DEFAULT_SEED
    now_ms: int = NOW_MS

    def build(self) -> list[dict[str, Any]]:
        return generate_events(self.n_events, self.n_people, seed=self.seed, now_ms=self.now_ms)


def generate_events(
    n_events: int, n_people: int, *, seed: int = DEFAULT_SEED, now_ms: int = NOW_MS, first_person_id: int = 0
) -> list[dict[str, Any]]:
    """``n_events`` events from exactly ``min(n_people, n_events)`` distinct people, deterministic for a seed."""
    rng = random.Random(seed)
    n_people = max(1, min(n_people, n_events))
    people = generate_people(n_people, rng, first_person_id)
    owners = list(range(n_people))  # everyone at least once
    extra = n_events - n_people
    if extra:
        # Skewed repetition: a few people come back often, most a few times (weight 1/(rank+200): with
        # 100k events from 20k people the busiest person has ~90 events, the median person 3).
        weights = [1.0 / (rank + 200) for rank in range(n_people)]
        owners += rng.choices(range(n_people), weights=weights, k=extra)
    rng.shuffle(owners)
    return [make_event(rng, people[p], seq, now_ms, seed) for seq, p in enumerate(owners)]


#: The data sets of the events benchmarks, as (name, people per event).
DATASETS: dict[str, float] = {"repeated": 0.2, "distinct": 1.0}


def dataset(name: str, n_events: int, seed: int = DEFAULT_SEED) -> DatasetSpec:
    """``repeated``: n/5 people (100k events -> 20k people); ``distinct``: one person per event."""
    share = DATASETS[name]
    return DatasetSpec(name, n_events, max(1, round(n_events * share)), seed)
