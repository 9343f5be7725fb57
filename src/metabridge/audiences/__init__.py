"""Custom Audiences: the pure core (no I/O).

- :mod:`~metabridge.audiences.keys`: destination keys -> Meta schema columns (a table);
- :mod:`~metabridge.audiences.members`: reading posted members, their identity key;
- :mod:`~metabridge.audiences.rows`: a member's row for a destination's schema, grouping, fingerprints;
- :mod:`~metabridge.audiences.payloads`: ``/users`` and ``/usersreplace`` request bodies.

Storage is in :mod:`metabridge.store.audiences` / ``ad_accounts`` / ``audience_jobs``; the sync engine in
:mod:`metabridge.delivery.audiences` (run by the same worker runner as event delivery).
"""

from metabridge.audiences.keys import KEY_COLUMNS, SCHEMA_ORDER, KeysError, columns_for, normalize_keys
from metabridge.audiences.members import MEMBER_FIELDS, Member, MemberError, member_key, read_member
from metabridge.audiences.payloads import MAX_ROWS, replace_body, users_body
from metabridge.audiences.rows import RowBuilder, row_fingerprint

__all__ = [
    "KEY_COLUMNS", "SCHEMA_ORDER", "KeysError", "columns_for", "normalize_keys",
    "MEMBER_FIELDS", "Member", "MemberError", "member_key", "read_member",
    "MAX_ROWS", "replace_body", "users_body",
    "RowBuilder", "row_fingerprint",
]
