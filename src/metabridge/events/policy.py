"""Connection policies that decide whether an otherwise valid event may be sent at all.

Both are product rules rather than Meta rules: consent is the business's legal basis, and the matching
policy keeps events Meta cannot match (or would reject, D-BP baseline) out of the pixel.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

#: Meta's baseline (D-BP, since v13): an event whose customer keys are all inside one of these sets is
#: too broad to match and is rejected (100/2804050).
BROAD_KEY_COMBINATIONS: tuple[frozenset[str], ...] = (
    frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)

#: Every key of some broad combination: a key set with any other key is never too broad.
_BROAD_KEYS: frozenset[str] = frozenset().union(*BROAD_KEY_COMBINATIONS)

#: Strict policy: one of these is enough on its own ...
STRICT_STRONG_KEYS: frozenset[str] = frozenset({"em", "ph", "external_id", "fbp", "fbc"})
#: ... otherwise this many other customer keys are needed.
STRICT_MIN_OTHER_KEYS = 3
#: Strict policy: events that need one of these keys whatever else they carry.
STRICT_REQUIRED_ANY: Mapping[str, frozenset[str]] = {"Purchase": frozenset({"em", "ph"})}


def has_consent(event_categories: Collection[str] | None, required: str | None) -> bool:
    """True when the connection needs no category, or the event was consented for it."""
    return required is None or (event_categories is not None and required in event_categories)


def meets_meta_baseline(keys: Collection[str]) -> bool:
    """At least one customer key, and not only one of the broad combinations Meta rejects."""
    if not keys:
        return False
    if not _BROAD_KEYS.issuperset(keys):
        return True  # the usual case, decided without building a set
    key_set = frozenset(keys)
    return not any(key_set <= broad for broad in BROAD_KEY_COMBINATIONS)


def meets_strict(keys: Collection[str], event_name: str) -> bool:
    """metabridge's stricter policy for pixels that must only receive well-matched events."""
    key_set = frozenset(keys)
    needed = STRICT_REQUIRED_ANY.get(event_name)
    if needed is not None and not key_set & needed:
        return False
    if key_set & STRICT_STRONG_KEYS:
        return meets_meta_baseline(key_set)
    return len(key_set) >= STRICT_MIN_OTHER_KEYS and meets_meta_baseline(key_set)


def meets_matching_policy(user_data: Mapping[str, Any], policy: str, event_name: str) -> bool:
    keys = user_data.keys()
    if policy == "strict":
        return meets_strict(keys, event_name)
    return meets_meta_baseline(keys)
