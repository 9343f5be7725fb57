"""Reading members as callers give them: validation, identity key, normalized form. Pure.

A member is identified by its external_id when given, else its email, else its phone (all normalized,
email and phone hashed), so the same person posted twice updates one member. Members are kept as given
(to list and export them) and as their normalized, hashed schema values (``identity``), which is all that
is compared and sent to Meta.

A member is rejected (per index, with field and rule) when it is not an object, has a field that is not a
member field, a value that cannot be read under its rule (an email without a domain, an unknown country,
...), or nothing to identify it by. Warnings (a phone with no known country code) do not reject.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from metabridge.identity import IdentityContext, normalize_member
from metabridge.identity._input import EMPTY

__all__ = ["MEMBER_FIELDS", "Member", "MemberError", "member_key", "read_member", "NO_IDENTITY"]

#: The fields of a member, in export (CSV) column order.
MEMBER_FIELDS: tuple[str, ...] = (
    "external_id", "email", "phone", "first_name", "last_name", "birthdate", "gender", "city", "state",
    "zip", "country", "madid",
)
NO_IDENTITY = "a member needs a usable external_id, email or phone to be identified"
_MAX_EXTERN_IN_KEY = 200


@dataclass(slots=True)
class Member:
    key: str
    data: dict[str, Any]
    identity: dict[str, str]
    warnings: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class MemberError:
    index: int
    errors: list[dict[str, str]]
    warnings: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "errors": self.errors}


def member_key(values: Mapping[str, str]) -> str | None:
    """Identity of a member from its normalized values: external_id, else email hash, else phone hash."""
    extern = values.get("EXTERN_ID")
    if extern:
        if len(extern) > _MAX_EXTERN_IN_KEY:
            return "external_id#sha256:" + hashlib.sha256(extern.encode("utf-8")).hexdigest()
        return "external_id:" + extern
    if values.get("EMAIL"):
        return "email:" + values["EMAIL"]
    if values.get("PHONE"):
        return "phone:" + values["PHONE"]
    return None


_DEFAULT_CONTEXT = IdentityContext()


def read_member(index: int, raw: Any, ctx: IdentityContext | None = None) -> Member | MemberError:
    """Validate and normalize one member as posted."""
    if not isinstance(raw, Mapping):
        return MemberError(index, [{"field": "member", "message": "must be a JSON object"}])
    identity = normalize_member(raw, ctx or _DEFAULT_CONTEXT)
    errors: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []
    for issue in identity.issues:
        if issue.level == "warning":
            warnings.append({"field": issue.field, "message": issue.message})
        elif issue.message != EMPTY:
            errors.append({"field": issue.field, "message": issue.message})
    key = member_key(identity.values)
    if key is None and not errors:
        errors.append({"field": "external_id", "message": NO_IDENTITY})
    if errors:
        return MemberError(index, errors, warnings)
    assert key is not None
    # Only member fields are left (any other field is an error above), kept in the order given.
    data = {name: value for name, value in raw.items() if value is not None and value != ""}
    return Member(key, data, identity.values, warnings)
