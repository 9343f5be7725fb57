"""Per-connection settings the identity rules need.

identity-rules.md names three things a record cannot carry itself: the connection's default country (the
phone region when a record has no country), the date order for ambiguous slashed dates, and whether CAPI
external_id is hashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from metabridge.identity.location import country_code

__all__ = ["IdentityContext"]


@dataclass(frozen=True, slots=True)
class IdentityContext:
    """Connection-level settings for normalization.

    ``default_country`` is an ISO 3166-1 alpha-2 code in lowercase; other spellings the country rule reads
    (``"US"``, ``"USA"``, ``"United Kingdom"``) are converted on construction, and an unknown value raises
    ``ValueError`` at configuration time rather than silently disabling phone country codes.
    """

    default_country: str | None = None  # ISO alpha-2 lowercase
    date_order: Literal["mdy", "dmy"] = "mdy"
    external_id_hashing: bool = True

    def __post_init__(self) -> None:
        if self.default_country is not None:
            code = country_code(self.default_country)
            if code is None:
                raise ValueError(
                    f"unknown default_country {self.default_country!r} (ISO 3166-1 alpha-2 expected)"
                )
            if code != self.default_country:
                object.__setattr__(self, "default_country", code)
        if self.date_order not in ("mdy", "dmy"):
            raise ValueError(f"date_order must be 'mdy' or 'dmy', not {self.date_order!r}")
