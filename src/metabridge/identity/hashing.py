"""SHA-256 hashing of normalized customer data.

Meta matches people by the SHA-256 of the UTF-8 bytes of a normalized value, written as lowercase hex
(identity-rules.md "General"; conversions-api.md §3; audiences-and-catalog.md §2.3). A value that is
already 64 hex characters is an existing hash and must never be hashed a second time.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable
from typing import Any

__all__ = ["is_sha256_hex", "sha256_constructor", "sha256_hex"]

_SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")


def _fastest_sha256() -> Callable[[bytes], Any]:
    """CPython's built-in C SHA-256 (module ``_sha256`` in 3.11, ``_sha2`` from 3.12) skips OpenSSL 3's
    per-call set-up, which dominates for the short strings hashed here (~25% faster). Same algorithm and
    digest (tests compare with ``hashlib``); ``hashlib.sha256`` when the interpreter has neither."""
    for module in ("_sha256", "_sha2"):
        try:
            constructor: Callable[[bytes], Any] = importlib.import_module(module).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    return hashlib.sha256  # pragma: no cover - depends on the interpreter


#: ``sha256_constructor(data).hexdigest()``: the SHA-256 constructor used on hot paths.
sha256_constructor: Callable[[bytes], Any] = _fastest_sha256()
_sha256 = sha256_constructor


def sha256_hex(s: str) -> str:
    """Return the lowercase hex SHA-256 of the UTF-8 bytes of ``s`` (the only hash Meta accepts)."""
    digest: str = _sha256(s.encode("utf-8")).hexdigest()
    return digest


def is_sha256_hex(s: object) -> bool:
    """Tell whether ``s`` is exactly 64 hex characters (any case), i.e. an existing SHA-256 hash.

    No trimming happens here: callers trim first, as the rules require, so that this stays a pure check.
    """
    return type(s) is str and len(s) == 64 and _SHA256_HEX.fullmatch(s) is not None
