"""Text helpers shared by the normalizers (private).

identity-rules.md "General": Unicode text is NFC-normalized before lowercasing, so that a precomposed
``é`` and ``e`` + combining accent hash the same. ASCII text is already NFC, so it skips the (slower) call.
"""

from __future__ import annotations

import unicodedata

_normalize = unicodedata.normalize
_category = unicodedata.category


def nfc_lower(s: str) -> str:
    """NFC-normalize (non-ASCII only) and lowercase ``s``."""
    if s.isascii():
        return s.lower()
    return _normalize("NFC", s).lower()


def letters_only(s: str) -> str:
    """Keep letters of every script and their combining marks; drop whitespace, punctuation, symbols, digits.

    Combining marks (Unicode category M) are kept because in many scripts (Devanagari, Thai, ...) they are
    part of the letter; dropping them would change the name.
    """
    if s.isalpha():  # the common case: nothing to remove
        return s
    if s.isascii():
        return "".join(filter(str.isalpha, s))
    return "".join(c for c in s if c.isalpha() or _category(c)[0] == "M")


def fold_key(s: str) -> str:
    """Reduce ``s`` to ASCII lowercase letters for table look-ups (``Côte d'Ivoire`` -> ``cotedivoire``).

    Only used to *find* a code in a table (countries, states, gender words); never as an output value.
    """
    if s.isascii():
        s = s.lower()
        if s.isalpha():
            return s
        return "".join(filter(str.isalpha, s))
    s = "".join(c for c in _normalize("NFKD", s) if not unicodedata.combining(c))
    return "".join(c for c in s.lower() if "a" <= c <= "z")
