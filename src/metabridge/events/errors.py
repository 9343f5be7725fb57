"""The one error shape every layer reports per event: which field, which rule."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """A problem with one field of one event.

    ``field`` is a dotted path in the *incoming* event where the caller can fix it (``user.email``,
    ``properties.currency``) or in the Conversions API event when the rule is Meta's
    (``custom_data.value``); ``message`` names the rule.
    """

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}
