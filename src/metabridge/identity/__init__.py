"""Normalization and SHA-256 hashing of customer data for the Conversions API and Custom Audiences.

Pure functions, no I/O. The rules are metabridge's product decisions in
``meta-spec/identity-rules.md``; where to find each one:

- ``email.py``, ``phone.py``, ``names.py`` (first/last name, initial, city), ``location.py`` (state, zip,
  country), ``birthdate.py``, ``gender.py``, ``ids.py`` (external ids, madid, IP, fbc/fbp, other ids);
- ``rules.py``: which rule and hashing each CAPI ``user_data`` key and audience schema key uses;
- ``capi.py`` (:func:`normalize_user_data`) and ``audience.py`` (:func:`normalize_member`): entry points.
"""

from metabridge.identity.audience import MemberIdentity, normalize_member
from metabridge.identity.capi import UserDataResult, normalize_user_data
from metabridge.identity.context import IdentityContext
from metabridge.identity.hashing import is_sha256_hex, sha256_hex
from metabridge.identity.ids import build_fbc
from metabridge.identity.issues import FieldIssue

__all__ = [
    "FieldIssue",
    "IdentityContext",
    "MemberIdentity",
    "UserDataResult",
    "build_fbc",
    "is_sha256_hex",
    "normalize_member",
    "normalize_user_data",
    "sha256_hex",
]
