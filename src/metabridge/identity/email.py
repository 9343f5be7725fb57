"""How an email address (CAPI ``em``, audience ``EMAIL``) is normalized.

Rule (identity-rules.md "em / EMAIL"; Meta D-CIP and audiences §2.3): trim, NFC, lowercase, and the
result must look like ``local@domain.tld`` with no spaces. Anything else (``a@b``, ``john smith@x.com``)
is left out rather than hashed: a malformed address cannot match, and sending its hash only hides the
problem.
"""

from __future__ import annotations

import re

from metabridge.identity._text import nfc_lower
from metabridge.identity.issues import UnusableValue

__all__ = ["normalize_email"]

# local part: anything but whitespace and '@'; domain: dot-separated non-empty labels ending in a
# top-level label of at least two characters.
_EMAIL = re.compile(r"[^\s@]+@(?:[^\s@.]+\.)+[^\s@.]{2,}")

INVALID_EMAIL = "not a valid email address (local@domain.tld, no spaces)"


def normalize_email(value: str) -> str:
    """Return the trimmed, NFC-normalized, lowercased address, or raise :class:`UnusableValue`."""
    s = nfc_lower(value.strip())
    if _EMAIL.fullmatch(s) is None:
        raise UnusableValue(INVALID_EMAIL)
    return s
