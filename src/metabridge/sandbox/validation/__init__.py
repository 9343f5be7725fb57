"""Request validation for the sandbox's Graph endpoints, one module per surface."""

from metabridge.sandbox.validation.events import (
    MAX_EVENTS_PER_REQUEST,
    EventError,
    ValidationResult,
    validate_event,
    validate_events,
)

__all__ = ["MAX_EVENTS_PER_REQUEST", "EventError", "ValidationResult", "validate_event", "validate_events"]
