"""``/v1/connections/{id}/events``, ``/test-event``, ``/stats``: ingest, try, and watch delivery."""

from __future__ import annotations

from typing import Any

import orjson

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from metabridge.api.deps import connection_or_404, service_of
from metabridge.api.errors import ApiError, JSONBytesResponse
from metabridge.api.schemas import EventRecord, EventStatus, IngestResponse, StatsResponse, TestEventRequest, TestEventResponse
from metabridge.events import request_body
from metabridge.graph import GraphError, GraphTransportError
from metabridge.ingest import ConnectionChanged, IngestOutcome, ingest
from metabridge.records import RecordFileError, parse_records
from metabridge.service import Service
from metabridge.store.db import read_only
from metabridge.store.outbox import connection_stats, event_records
from metabridge.timeutil import now_ms

router = APIRouter(prefix="/v1/connections/{connection_id}", tags=["events"])

MAX_EVENTS_PER_CALL = 10_000
_NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines")


async def _body(request: Request) -> bytes:
    """The raw body, refused early (413) when larger than ``max_body_bytes``."""
    limit = request.app.state.service.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is larger than {limit} bytes; send fewer events per call")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ApiError(413, f"request body is larger than {limit} bytes; send fewer events per call")
    if not body.strip():
        raise ApiError(400, "the request body is empty: send one event, {\"events\": [...]}, or NDJSON")
    return bytes(body)


def _records(data: bytes, content_type: str) -> list[Any]:
    """One event, ``{"events": [...]}`` or NDJSON (by content type, or by its look) -> records."""
    if content_type in _NDJSON_TYPES:
        records = list(parse_records(data, "ndjson"))
    else:
        try:
            records = list(parse_records(data, "json", list_key="events"))
        except RecordFileError as exc:
            if not _looks_like_ndjson(data):
                raise ApiError(400, f"the request body is {exc}") from None
            records = list(parse_records(data, "ndjson"))
    if len(records) > MAX_EVENTS_PER_CALL:
        raise ApiError(413, f"at most {MAX_EVENTS_PER_CALL} events per call, got {len(records)}")
    return records


def _looks_like_ndjson(data: bytes) -> bool:
    """Several JSON objects, one per line, sent without the NDJSON content type."""
    lines = [line for line in data.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(orjson.loads(lines[0]), dict)
    except orjson.JSONDecodeError:
        return False


def _ingest_into(service: Service, connection_id: int, records: list[Any]) -> IngestOutcome:
    """Ingest into a connection with no separate read of it in the usual case.

    The connection (its settings drive the pipeline) is the copy the service kept from an earlier call;
    the write transaction checks that its ``updated_at`` is unchanged (every change of settings bumps it).
    When it changed or is unknown, the connection is read again (404 once deleted, and then nothing is
    kept for it) and the records decided again. On PostgreSQL this saves a transaction and its round trips
    per call.
    """
    cached = service.known_connection(connection_id)
    if cached is not None:
        try:
            return ingest(service, cached, records, verify_current=True)
        except ConnectionChanged:
            service.forget(connection_id)
    try:
        current = connection_or_404(service, connection_id)
    except ApiError:
        service.forget(connection_id)  # deleted since: a concurrent call may have kept it meanwhile
        raise
    service.remember(current)
    return ingest(service, current, records)


def _ingest_body(service: Service, connection_id: int, data: bytes, content_type: str) -> dict[str, Any]:
    """Parse, decide and commit: the whole call in one worker thread (one hop off the event loop)."""
    outcome = _ingest_into(service, connection_id, _records(data, content_type))
    return {"accepted": outcome.accepted, "pending": outcome.pending, "skipped": outcome.skipped,
            "deduplicated": outcome.deduplicated, "rejected": outcome.rejected}


@router.post("/events", status_code=202, response_model=IngestResponse)
async def ingest_events(connection_id: int, request: Request) -> Response:
    """Accept one event, ``{"events": [...]}`` (up to 10,000) or NDJSON.

    Answers 202 only after the accepted events are committed. Malformed events, and events Meta would
    reject, come back in ``rejected`` with the field and the rule; the rest are still accepted.
    """
    data = await _body(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    answer = await run_in_threadpool(_ingest_body, service_of(request), connection_id, data, content_type)
    return JSONBytesResponse(answer, status_code=202)  # the IngestResponse shape, built without re-validation


@router.post("/test-event", response_model=TestEventResponse)
def test_event(connection_id: int, body: TestEventRequest, request: Request) -> TestEventResponse:
    """Send one event right now with a test_event_code and show Meta's raw answer (Events Manager → Test Events)."""
    service = service_of(request)
    connection = connection_or_404(service, connection_id)
    code = body.test_event_code or connection.settings.test_event_code
    if not code:
        raise ApiError(422, "a test_event_code is needed (from Events Manager → Test Events)",
                       [{"field": "test_event_code", "message": "is required when the connection has none"}])
    now = now_ms()
    decision = service.pipeline(connection).process(body.event, index=0, now_ms=now, received_ms=now)
    if decision.server_event is None:
        return TestEventResponse(sent=False, decision=decision.summary())
    payload = request_body([decision.server_event], test_event_code=code)
    try:
        with service.graph_client() as graph:
            answer = graph.post_events(
                connection.pixel_id, connection.access_token(service.box), payload,
                app_secret=connection.app_secret(service.box),
            )
        status, meta_body = answer.status_code, answer.body
    except GraphError as exc:
        status, meta_body = exc.http_status, exc.body
    except GraphTransportError as exc:
        raise ApiError(502, f"Meta could not be reached: {exc}") from None
    return TestEventResponse(sent=True, decision=decision.summary(), request=payload,
                             meta_status=status, meta_body=meta_body)


@router.get("/events/{event_id}", response_model=EventStatus)
def event_status(connection_id: int, event_id: str, request: Request) -> EventStatus:
    """Where one event is: pending, sent, deduplicated, skipped/invalid (with reason) or failed (Meta's error)."""
    service = service_of(request)
    connection_or_404(service, connection_id)
    with read_only(service.engine) as conn:
        records = event_records(conn, connection_id, event_id)
    if not records:
        raise ApiError(404, f"no event with event_id '{event_id}' on connection {connection_id}")
    primary = next((r for r in records if r["status"] != "deduplicated"), records[0])
    others = [EventRecord(**r) for r in records if r is not primary]
    return EventStatus(**primary, history=others)


@router.get("/stats", response_model=StatsResponse)
def stats(connection_id: int, request: Request, since: int | None = None, until: int | None = None,
          hours: float = 24) -> StatsResponse:
    """Counts by status and event name for events received in the window (default: the last 24 hours)."""
    service = service_of(request)
    connection = connection_or_404(service, connection_id)
    end = until if until is not None else now_ms() + 1
    start = since if since is not None else end - int(hours * 3600 * 1000)
    if start >= end:
        raise ApiError(422, "the window is empty", [{"field": "since", "message": "must be before until"}])
    with read_only(service.engine) as conn:
        figures = connection_stats(conn, connection_id, start, end)
    return StatsResponse(
        connection_id=connection_id, since=start, until=end,
        health="paused" if connection.status == "paused" else "ok",
        paused_reason=connection.paused_reason, **figures,
    )
