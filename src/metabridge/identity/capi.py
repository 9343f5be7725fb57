"""Entry point for the Conversions API: normalize and hash one event's ``user_data``.

Each value is normalized by the rule :data:`~metabridge.identity.rules.CAPI_RULES` gives its key, hashed
when that rule says so, and either kept or left out with a :class:`FieldIssue` (identity-rules.md).

Speed (this runs once per event): the work for one value is a pure function of (key, raw value, the one
context part the key needs), so its outcome is memoized in a plain dict per (key, context part) — a value
seen again costs one dict look-up. Each key's memos are bounded together (:data:`CACHE_SIZES`) and emptied
when full, which is cheaper per hit than LRU bookkeeping, and low-cardinality keys (gender, country) never
lose entries to high-cardinality ones. Values that belong to one person (email, phone, ids, IP, cookies,
birth date, ZIP) are not memoized: a person seen again is served whole by the events pipeline's customer
cache, and a memo of values that rarely repeat only costs time and memory (measured: distinct people
~10% slower with them). Values unique per event (``fbc``) are never memoized either.
Issues are immutable, so one :class:`FieldIssue` per distinct bad value is shared by every repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from metabridge.identity._input import EMPTY, UNREADABLE_TYPE, record_country, to_text
from metabridge.identity.context import IdentityContext
from metabridge.identity.hashing import is_sha256_hex, sha256_constructor
from metabridge.identity.issues import FieldIssue, UnusableValue
from metabridge.identity.rules import CAPI_RULES, FieldRule, Hashing, Needs

__all__ = [
    "CACHE_SIZES", "NOT_A_CAPI_KEY", "Outcome", "UserDataResult", "ValueMemo", "cache_clear",
    "normalize_user_data", "normalize_value", "record_country", "value_memos",
]

NOT_A_CAPI_KEY = "not a Conversions API customer information parameter"
ONE_VALUE_ONLY = "this key takes one value: extra values left out"

#: Memo entries per key (across its context parts); about 200 bytes each; 0 = not memoized; unlisted: 4096.
CACHE_SIZES: Mapping[str, int] = {
    "em": 0,
    "ph": 0,
    "external_id": 0,
    "client_ip_address": 0,
    "fbp": 0,
    "db": 0,
    "zp": 0,
    "fbc": 0,
    "ln": 8192,
    "fn": 8192,
    "ct": 4096,
    "st": 2048,
    "country": 1024,
    "ge": 256,
    "client_user_agent": 2048,
}

#: What one raw value turns into: the value to send (no issue), or (value to send or None, its issue).
Outcome = str | tuple[str | None, FieldIssue]

_sha256 = sha256_constructor


@dataclass(slots=True)
class UserDataResult:
    """``user_data`` ready for the request (one value -> str, several -> list), and what was left out."""

    user_data: dict[str, str | list[str]] = field(default_factory=dict)
    issues: list[FieldIssue] = field(default_factory=list)


def _make_compute(rule: FieldRule, name: str, arg: Any) -> Callable[[str], Outcome]:
    """Build the function giving the :data:`Outcome` of one raw text value of a key under ``rule``.

    ``arg`` is the context part the rule needs (None when it needs none); ``name`` is the issue field.
    Specialized per rule shape (hashed or not, context or not) because it runs for every new value.
    """
    empty: Outcome = (None, FieldIssue(name, EMPTY, "dropped"))
    base = rule.normalize
    normalize: Callable[[str], str] = base if rule.needs is Needs.NOTHING else (lambda s: base(s, arg))
    warn = rule.warn
    hashed = rule.hashing is Hashing.ALWAYS or (rule.hashing is Hashing.BY_SETTING and bool(arg))

    if not hashed:

        def compute_plain(raw: str) -> Outcome:
            s = raw.strip()
            if not s:
                return empty
            try:
                return normalize(s)
            except UnusableValue as exc:
                return None, FieldIssue(name, exc.args[0], "dropped")

        return compute_plain

    def compute_hashed(raw: str) -> Outcome:
        s = raw.strip()
        if not s:
            return empty
        if len(s) == 64 and is_sha256_hex(s):
            return s.lower()  # already a SHA-256: passed through, never hashed twice
        try:
            digest: str = _sha256(normalize(s).encode()).hexdigest()
        except UnusableValue as exc:
            return None, FieldIssue(name, exc.args[0], "dropped")
        if warn is not None:
            message = warn(s, arg)
            if message is not None:
                return digest, FieldIssue(name, message, "warning")
        return digest

    return compute_hashed


class _Budget:
    """Entries allowed across all memos of one key (a key has one memo per context part, e.g. one phone
    memo per region), so that many regions cannot multiply a key's memory."""

    __slots__ = ("memos", "size", "used")

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = [0]  # a cell the memos' miss functions update without a method call
        self.memos: list[_Memo] = []

    def reset(self) -> None:
        """Empty all memos of the key."""
        for memo in self.memos:
            memo.clear()
        self.used[0] = 0


class _Memo(dict):  # type: ignore[type-arg]
    """raw value -> :data:`Outcome` for one key under one context part."""

    __slots__ = ("miss",)

    def __init__(self, key: str, rule: FieldRule, arg: Any, budget: _Budget) -> None:
        super().__init__()
        compute = _make_compute(rule, f"user_data.{key}", arg)
        self.miss: Callable[[str], Outcome] = compute  # budget 0: values unique per event, never kept
        size = budget.size
        if size:
            used = budget.used
            reset = budget.reset

            def miss(raw: str) -> Outcome:
                """Compute the outcome of a value not in the memo and remember it."""
                outcome = compute(raw)
                used[0] += 1
                if used[0] > size:  # the key's budget is spent: start its memos afresh
                    reset()
                    used[0] = 1
                self[raw] = outcome
                return outcome

            self.miss = miss


_RULES: dict[str, FieldRule] = dict(CAPI_RULES)
_BUDGETS: dict[str, _Budget] = {key: _Budget(CACHE_SIZES.get(key, 4096)) for key in _RULES}
#: (key, context part) -> its memo, shared by every route that gives the key the same context part.
_MEMOS: dict[tuple[str, Any], _Memo] = {}
#: (record country, default country, date order, external_id hashing) -> {key: memo}.
_ROUTES: dict[tuple[Any, ...], dict[str, _Memo]] = {}


def _route(country: str | None, ctx: IdentityContext) -> dict[str, _Memo]:
    """The key -> memo table for one combination of context parts, built once per combination."""
    parts = (None, country or ctx.default_country, country, ctx.date_order, ctx.external_id_hashing)
    table: dict[str, _Memo] = {}
    for key, rule in _RULES.items():
        arg = parts[rule.needs]
        memo = _MEMOS.get((key, arg))
        if memo is None:
            budget = _BUDGETS[key]
            created = _Memo(key, rule, arg, budget)
            memo = _MEMOS.setdefault((key, arg), created)
            if memo is created:
                budget.memos.append(memo)
        table[key] = memo
    _ROUTES[(country, ctx.default_country, ctx.date_order, ctx.external_id_hashing)] = table
    return table


#: One key's memo under one context part: ``memo.get(raw) or memo.miss(raw)`` is the :data:`Outcome` of a raw
#: text value (``miss`` computes and remembers it).
ValueMemo = _Memo


def value_memos(country: str | None, ctx: IdentityContext) -> Mapping[str, ValueMemo]:
    """CAPI key -> its :data:`ValueMemo` for a record whose own country is ``country`` (see
    :func:`record_country`), under ``ctx``.

    For callers that normalize the values of many records one by one, as :func:`normalize_user_data`
    does inside: the events pipeline maps incoming keys and normalizes in one pass. The memos are the
    same ones :func:`normalize_user_data` uses, so both give the same outcome for a value.
    """
    route = _ROUTES.get((country, ctx.default_country, ctx.date_order, ctx.external_id_hashing))
    if route is None:
        route = _route(country, ctx)
    return route


def normalize_value(key: str, value: str, ctx: IdentityContext, country: str | None = None) -> Outcome:
    """The :data:`Outcome` of one text value of CAPI ``key`` in a record whose own country is ``country``:
    what :func:`normalize_user_data` gives for ``{key: value}``, without building a result."""
    memo = value_memos(country, ctx)[key]
    outcome = memo.get(value)
    return memo.miss(value) if outcome is None else outcome


def cache_clear() -> None:
    """Empty the memos (tests, and benchmarks measuring the uncached path)."""
    for budget in _BUDGETS.values():
        budget.reset()


def normalize_user_data(user: Mapping[str, Any], ctx: IdentityContext) -> UserDataResult:
    """Normalize and hash ``user`` (keyed by CAPI user_data keys) for one event.

    Values may be text, numbers, dates or lists of them; ``None`` means "not given" and is skipped quietly.
    List items are normalized one by one and de-duplicated in first-seen order. Unknown keys, empty and
    unreadable values are left out with a ``"dropped"`` issue; sha256("") is never produced.
    """
    out: dict[str, str | list[str]] = {}
    issues: list[FieldIssue] = []
    country = user.get("country")
    if country is not None:
        country = record_country(country)  # an alpha-2 code, or None when unreadable
    route = value_memos(country, ctx)
    memo_for = route.get
    for key, value in user.items():
        memo = memo_for(key)
        if memo is None:
            issues.append(FieldIssue(f"user_data.{key}", NOT_A_CAPI_KEY, "dropped"))
            continue
        if type(value) is str:
            # The hot path: one look-up for a value already seen.
            hit = memo.get(value)
            if hit is None:
                hit = memo.miss(value)
            if isinstance(hit, str):
                out[key] = hit
                continue
            result, issue = hit
            if result is not None:
                out[key] = result
            issues.append(issue)
        elif value is not None:
            _add_values(key, value, memo, out, issues)
    return UserDataResult(out, issues)


def _add_values(
    key: str, value: Any, memo: _Memo, out: dict[str, str | list[str]], issues: list[FieldIssue]
) -> None:
    """A list (or a non-text scalar): each item normalized, results de-duplicated in first-seen order."""
    name = f"user_data.{key}"
    kept: list[str] = []
    for item in value if isinstance(value, (list, tuple)) else (value,):
        if item is None:
            continue
        text = item if type(item) is str else to_text(item)
        if text is None:
            issues.append(FieldIssue(name, UNREADABLE_TYPE, "dropped"))
            continue
        hit = memo.get(text)
        if hit is None:
            hit = memo.miss(text)
        if isinstance(hit, str):
            result: str | None = hit
        else:
            result, issue = hit
            issues.append(issue)
        if result is not None and result not in kept:
            kept.append(result)
    if not kept:
        return
    if len(kept) == 1:
        out[key] = kept[0]
    elif _RULES[key].multi:
        out[key] = kept
    else:
        out[key] = kept[0]
        issues.append(FieldIssue(name, ONE_VALUE_ONLY, "warning"))
