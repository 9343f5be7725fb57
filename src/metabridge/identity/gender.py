"""How gender is normalized (CAPI ``ge``, audience ``GEN``).

Rule (identity-rules.md "ge"; Meta D-CIP: lowercase initial ``f`` / ``m``): read ``m``, ``male``, ``man``,
``mr``, ``f``, ``female``, ``woman``, ``mrs``, ``ms`` in any case (punctuation ignored, so ``Mr.`` is read).
Anything else is left out: Meta only knows ``m`` and ``f``, and the official SDK's "first character"
approach would turn ``other`` into ``o`` (audiences-and-catalog.md §7.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from metabridge.identity._text import fold_key
from metabridge.identity.issues import UnusableValue, quote

__all__ = ["GENDER_WORDS", "normalize_gender"]

GENDER_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "m": "m",
        "male": "m",
        "man": "m",
        "mr": "m",
        "f": "f",
        "female": "f",
        "woman": "f",
        "mrs": "f",
        "ms": "f",
    }
)


def normalize_gender(value: str) -> str:
    """Return ``m`` or ``f``, or raise :class:`UnusableValue`."""
    s = value.strip()
    g = GENDER_WORDS.get(s.lower())
    if g is None:
        g = GENDER_WORDS.get(fold_key(s))
        if g is None:
            raise UnusableValue(f"not a gender {quote(s)} (m/male/man/mr or f/female/woman/mrs/ms expected)")
    return g
