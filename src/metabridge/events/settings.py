"""Per-connection settings that change how events are transformed.

A *connection* is one Meta pixel or dataset. These settings are pure data: the preview command reads them
from a TOML file, the service stores them in its database; both hand the same model to the pipeline.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metabridge.identity import IdentityContext

MatchingPolicy = Literal["meta", "strict"]
DateOrder = Literal["mdy", "dmy"]


class ConnectionSettings(BaseModel):
    """How one connection turns incoming events into Conversions API events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pixel_id: str = Field(default="", description="Meta pixel or dataset id the events are posted to.")
    consent_category: str | None = Field(
        default=None,
        description="When set, only events whose consent_categories contain it are sent; others are "
        "skipped with reason no_consent.",
    )
    matching: MatchingPolicy = Field(
        default="meta",
        description="meta: Meta's own baseline (at least one customer key, not only broad combinations). "
        "strict: at least one of em, ph, external_id, fbp, fbc or three other keys; Purchase needs em or ph.",
    )
    default_country: str | None = Field(
        default=None,
        description="ISO 3166-1 alpha-2 region used to read national phone numbers when the event has "
        "no country of its own.",
    )
    date_order: DateOrder = Field(default="mdy", description="How ambiguous slashed birthdates are read.")
    event_names: dict[str, str] = Field(
        default_factory=dict,
        description="Extra event-name mappings (incoming name -> Meta event name), checked before the "
        "default table.",
    )
    external_id_hashing: bool = Field(
        default=True, description="Hash external_id (as Meta's Pixel tools do) or send it as given."
    )
    test_event_code: str | None = Field(
        default=None, description="When set, every request carries it and events go to Test Events."
    )

    @field_validator("default_country")
    @classmethod
    def _lower_country(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        code = value.strip().lower()
        if len(code) != 2 or not code.isalpha():
            raise ValueError("must be an ISO 3166-1 alpha-2 code such as 'us' or 'fr'")
        return code

    def identity_context(self) -> IdentityContext:
        """The part of these settings that customer-data normalization needs."""
        return IdentityContext(
            default_country=self.default_country,
            date_order=self.date_order,
            external_id_hashing=self.external_id_hashing,
        )
