"""Entry point for Custom Audiences: normalize one member into multi-key schema values.

A member is keyed by plain field names (``email``, ``first_name``, ``birthdate`` ...). Each field is
normalized once by the rule in :data:`~metabridge.identity.rules.MEMBER_FIELDS` and fills one or more schema
keys (``first_name`` -> ``FN`` and ``FI``; ``birthdate`` -> ``DOBY``, ``DOBM``, ``DOBD``), hashed where
Meta hashes them (all but ``EXTERN_ID`` and ``MADID``; audiences-and-catalog.md §2.3).

Keys with no usable value are absent from :attr:`MemberIdentity.values`; the batch builder writes them as
``""`` (Meta: unknown cells are the empty string, never sha256("")) and keeps rows without ``EXTERN_ID``
out of batches whose schema has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from metabridge.identity._input import EMPTY, UNREADABLE_TYPE, record_country, to_text
from metabridge.identity.context import IdentityContext
from metabridge.identity.hashing import is_sha256_hex, sha256_hex
from metabridge.identity.issues import FieldIssue, UnusableValue
from metabridge.identity.rules import MEMBER_FIELDS, MemberFieldRule, Needs

__all__ = ["CACHE_SIZE", "NOT_A_MEMBER_FIELD", "MemberIdentity", "normalize_member"]

NOT_A_MEMBER_FIELD = "not an audience member field (" + ", ".join(MEMBER_FIELDS) + ")"
ONE_VALUE_ONLY = "an audience row holds one value per key: extra values left out"
HASHED_CANNOT_PROJECT = "already hashed: {keys} cannot be derived from a hash"

CACHE_SIZE = 1 << 16

_NOTHING = Needs.NOTHING
_rule_for = MEMBER_FIELDS.get

#: One field value's outcome, flat: (issue message or None, issue level or None, key1, value1, key2, value2 ...).
#: Flat because up to CACHE_SIZE of them live in the cache: a tuple of strings is untracked by the garbage
#: collector, nested tuples mostly reach the oldest generation still tracked and set off full collections.
_Outcome = tuple[Any, ...]


@dataclass(slots=True)
class MemberIdentity:
    """Schema key -> value to upload (hashed where the audience rules hash), and what was left out."""

    values: dict[str, str] = field(default_factory=dict)
    issues: list[FieldIssue] = field(default_factory=list)


def _outcome(name: str, raw: str, arg: Any) -> _Outcome:
    """Normalize one field value: see :data:`_Outcome`."""
    rule: MemberFieldRule = MEMBER_FIELDS[name]
    s = raw.strip()
    if not s:
        return EMPTY, "dropped"
    if len(s) == 64 and is_sha256_hex(s) and any(hashed for _, _, hashed in rule.outputs):
        # An existing hash can only stand for the field's own key, not for a projection of it.
        digest = s.lower()
        pairs = tuple(x for key, project, hashed in rule.outputs if hashed and project is None
                      for x in (key, digest))
        lost = [key for key, project, _ in rule.outputs if project is not None]
        if not lost:
            return (None, None, *pairs)
        return (HASHED_CANNOT_PROJECT.format(keys="/".join(lost)), "warning" if pairs else "dropped", *pairs)
    try:
        value = rule.normalize(s) if rule.needs is _NOTHING else rule.normalize(s, arg)
    except UnusableValue as exc:
        return str(exc), "dropped"
    warning = rule.warn(s, arg) if rule.warn is not None else None
    level = "warning" if warning is not None else None
    outputs = rule.outputs
    if len(outputs) == 1 and outputs[0][1] is None:  # most fields: one key, the value itself
        key, _, hashed = outputs[0]
        return warning, level, key, sha256_hex(value) if hashed else value
    flat: list[Any] = [warning, level]
    for key, project, hashed in outputs:
        projected = project(value) if project is not None else value
        flat += (key, sha256_hex(projected) if hashed else projected)
    return tuple(flat)


#: Fields whose values name one person: a list of members almost never repeats them, so memoizing them
#: would only cost a cache insert each and push out the values that do repeat (names, cities, countries).
UNIQUE_PER_PERSON = frozenset({"email", "phone", "external_id", "madid"})
_cached_outcome = lru_cache(maxsize=CACHE_SIZE)(_outcome)
#: member field -> the function normalizing one of its values.
_NORMALIZE = {name: _outcome if name in UNIQUE_PER_PERSON else _cached_outcome for name in MEMBER_FIELDS}


def normalize_member(member: Mapping[str, Any], ctx: IdentityContext) -> MemberIdentity:
    """Normalize one audience member into schema-key values.

    ``member`` is keyed by ``email, phone, first_name, last_name, birthdate, gender, city, state, zip,
    country, external_id, madid``; ``None`` means "not given". A list gives the first usable value (an
    audience row has one cell per key) and a warning if other, different values were left out.
    """
    values: dict[str, str] = {}
    issues: list[FieldIssue] = []
    country = record_country(member.get("country"))
    args = (None, country or ctx.default_country, country, ctx.date_order, ctx.external_id_hashing)
    for name, value in member.items():
        rule = _rule_for(name)
        if rule is None:
            issues.append(FieldIssue(str(name), NOT_A_MEMBER_FIELD, "dropped"))
            continue
        normalize = _NORMALIZE[name]
        if type(value) is str:  # the common case, without the list handling below
            outcome = normalize(name, value, args[rule.needs])
            if outcome[1] is not None:
                issues.append(FieldIssue(name, outcome[0], outcome[1]))
            if len(outcome) == 4:
                values[outcome[2]] = outcome[3]
            else:
                for i in range(2, len(outcome), 2):
                    values[outcome[i]] = outcome[i + 1]
            continue
        if value is None:
            continue
        arg = args[rule.needs]
        items = value if isinstance(value, (list, tuple)) else (value,)
        chosen: _Outcome | None = None
        extra = False
        for item in items:
            if item is None:
                continue
            text = item if type(item) is str else to_text(item)
            if text is None:
                issues.append(FieldIssue(name, UNREADABLE_TYPE, "dropped"))
                continue
            outcome = normalize(name, text, arg)
            if outcome[1] is not None:
                issues.append(FieldIssue(name, outcome[0], outcome[1]))
            pairs = outcome[2:]
            if not pairs:
                continue
            if chosen is None:
                chosen = pairs
            elif pairs != chosen:
                extra = True
        if chosen is not None:
            for i in range(0, len(chosen), 2):
                values[chosen[i]] = chosen[i + 1]
        if extra:
            issues.append(FieldIssue(name, ONE_VALUE_ONLY, "warning"))
    return MemberIdentity(values, issues)
