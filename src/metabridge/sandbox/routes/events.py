"""``POST /{version}/{pixel_id}/events``: the Conversions API endpoint (spec §1).

Answers exactly like Graph: ``{"events_received", "messages", "fbtrace_id"}`` on success, the §1.3 error
envelope otherwise. If any event is invalid the whole request is rejected (D-USE) and nothing is stored.
Events sent with ``test_event_code`` are stored apart from live events, like Events Manager's Test Events.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from metabridge.sandbox.errors import invalid_parameter
from metabridge.sandbox.parsing import decode_events
from metabridge.sandbox.routes.common import begin_node_call, control_path, get_state, graph_success
from metabridge.sandbox.validation.events import MAX_EVENTS_PER_REQUEST, validate_events

__all__ = ["router"]

router = APIRouter()


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@router.post("/{version}/{pixel_id}/events")
async def post_events(version: str, pixel_id: str, request: Request) -> Response:
    """Validate and store one Conversions API request."""
    if (answer := control_path(version)) is not None:
        return answer
    call = await begin_node_call(request, version, pixel_id, "post")
    call.pixel_id = pixel_id
    test_event_code = _optional_str(call.params.get("test_event_code"))
    call.test = test_event_code is not None
    events = decode_events(call.params.get("data"))
    call.events_count = len(events)
    if not events:
        raise invalid_parameter(
            "Empty Data",
            "param data must contain at least one event.",
            message="(#100) param data must be a non-empty array.",
        )
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise invalid_parameter(
            "Too Many Events",
            f"A request may contain at most {MAX_EVENTS_PER_REQUEST} events; this one has {len(events)}.",
            message=f"(#100) param data must be an array with at most {MAX_EVENTS_PER_REQUEST} elements.",
            field="data",
        )
    result = validate_events(events, time.time())
    if result.error is not None:
        err = result.error
        raise invalid_parameter(
            err.user_title, err.user_msg, subcode=err.subcode, event_index=err.event_index, field=err.field
        )
    get_state(request).add_events(
        pixel_id,
        events,
        fbtrace_id=call.fbtrace_id,
        test_event_code=test_event_code,
        partner_agent=_optional_str(call.params.get("partner_agent")),
        generation=call.generation,
    )
    return graph_success(
        request,
        call,
        {"events_received": len(events), "messages": result.warnings, "fbtrace_id": call.fbtrace_id},
    )
