"""How first name, last name, first initial and city are normalized (CAPI fn/ln/ct, audience FN/LN/FI/CT).

Rule (identity-rules.md "fn, ln", "FI", "ct"): NFC, lowercase, then remove whitespace, punctuation, symbols
and digits, keeping letters of every script (``Mary-Jane`` -> ``maryjane``, ``São Paulo`` -> ``sãopaulo``,
``정`` -> ``정``). This follows Meta's D-CIP "no punctuation" and Meta's newest normalizer (capi-param-builder)
rather than the official SDK, which keeps punctuation and spaces (conversions-api.md §10.2). City follows
the same rule, so ``São Paulo`` keeps its accent (identity-rules.md wins over the SDK and CPB, §10.3).
"""

from __future__ import annotations

import unicodedata

from metabridge.identity._text import letters_only, nfc_lower
from metabridge.identity.issues import UnusableValue

__all__ = ["first_initial", "normalize_city", "normalize_name"]

NO_LETTERS = "no letters left after removing whitespace, punctuation, symbols and digits"


def normalize_name(value: str) -> str:
    """Return the name lowercased with only letters (any script) kept, or raise :class:`UnusableValue`."""
    s = letters_only(nfc_lower(value))
    if not s:
        raise UnusableValue(NO_LETTERS)
    return s


def normalize_city(value: str) -> str:
    """Return the city normalized exactly like a name (identity-rules.md: "ct: as names")."""
    return normalize_name(value)


def first_initial(normalized_first_name: str) -> str:
    """Return the first letter of an already normalized first name (audience ``FI``: ``mary`` -> ``m``).

    A base letter keeps the combining marks that follow it, since together they are one written letter.
    """
    end = 1
    n = len(normalized_first_name)
    while end < n and unicodedata.category(normalized_first_name[end])[0] == "M":
        end += 1
    return normalized_first_name[:end]
