"""``/v1/audiences``: audiences, their members, their destinations (links to Meta audiences), syncs."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import Connection

from metabridge.api.bodies import read_json_list
from metabridge.api.deps import lookup_or_404, service_of, unique_name
from metabridge.api.errors import ApiError
from metabridge.api.routes.ad_accounts import ad_account_or_404, meta_error
from metabridge.api.schemas_audiences import (
    AUDIENCE_ID_PATTERN,
    AudienceOut,
    AudiencePut,
    DestinationCreate,
    DestinationOut,
    JobOut,
    LastSync,
    MemberPage,
    MembersChanged,
    SyncStarted,
)
from metabridge.api.routes.jobs import job_out
from metabridge.audiences import MEMBER_FIELDS, KeysError, Member, columns_for, normalize_keys, read_member
from metabridge.graph import GraphError
from metabridge.service import Service
from metabridge.store import audience_jobs as jobs
from metabridge.store import audiences as store
from metabridge.store.ad_accounts import get_ad_account
from metabridge.store.audiences import StoredAudience, StoredDestination
from metabridge.timeutil import now_ms

router = APIRouter(prefix="/v1/audiences", tags=["audiences"])

MAX_MEMBERS_PER_CALL = 100_000
AudienceId = Path(pattern=AUDIENCE_ID_PATTERN, description="Chosen by the caller: letters, digits, _ . : -")
CUSTOMER_FILE_SOURCE = "USER_PROVIDED_ONLY"


# -- helpers -------------------------------------------------------------------------------------------
def audience_or_404(service: Service, audience_id: str) -> StoredAudience:
    return lookup_or_404(service, lambda conn: store.get_audience(conn, audience_id),
                         f"audience '{audience_id}' does not exist")


def destination_or_404(service: Service, audience_id: str, destination_id: int) -> StoredDestination:
    def of_this_audience(conn: Connection) -> StoredDestination | None:
        found = store.get_destination(conn, destination_id)
        return found if found is not None and found.audience_id == audience_id else None

    return lookup_or_404(service, of_this_audience, f"audience '{audience_id}' has no destination {destination_id}")


def _last_sync(d: StoredDestination) -> LastSync:
    return LastSync(at=d.last_sync_at, result=d.last_sync_result, error=d.last_sync_error)  # type: ignore[arg-type]


def destination_out(conn: Any, d: StoredDestination, *, with_count: bool = True) -> DestinationOut:
    account = get_ad_account(conn, d.ad_account_id)
    return DestinationOut(
        id=d.id, audience=d.audience_id, name=d.name, ad_account=d.ad_account_id,
        ad_account_name=account.name if account else None, meta_audience_id=d.meta_audience_id,
        created_meta_audience=d.created_meta_audience, keys=list(d.keys), mode=d.mode,  # type: ignore[arg-type]
        status=d.status, paused_reason=d.paused_reason,  # type: ignore[arg-type]
        members_in_meta=jobs.held_count(conn, d.id) if with_count else None, next_sync_at=d.next_sync_at,
        last_sync=_last_sync(d), created_at=d.created_at, detached_at=d.detached_at,
    )


def audience_out(service: Service, a: StoredAudience) -> AudienceOut:
    with service.engine.connect() as conn:
        count = store.count_members(conn, a.id)
        linked = store.list_destinations(conn, a.id, linked_only=True)
        everything = store.list_destinations(conn, a.id)
        destinations = [destination_out(conn, d) for d in linked]
    synced = [d for d in everything if d.last_sync_at is not None]
    latest = max(synced, key=lambda d: d.last_sync_at or 0) if synced else None
    return AudienceOut(
        id=a.id, name=a.name, description=a.description, member_count=count, destinations=destinations,
        last_sync=_last_sync(latest) if latest else LastSync(at=None, result=None),
        created_at=a.created_at, updated_at=a.updated_at,
    )


def _read_all(raw: list[Any]) -> tuple[list[store.MemberRow], list[dict[str, Any]], list[dict[str, Any]]]:
    """The valid members as rows to store, the rejected ones (index, field, rule), the warnings."""
    members: list[store.MemberRow] = []
    rejected: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        outcome = read_member(index, item)
        if outcome.warnings:
            warnings.append({"index": index, "warnings": outcome.warnings})
        if isinstance(outcome, Member):
            members.append(store.member_row(outcome))
        else:
            rejected.append(outcome.as_dict())
    return members, rejected, warnings


def _debounced(service: Service) -> int:
    return now_ms() + int(service.settings.audience_debounce_seconds * 1000)


# -- audiences -----------------------------------------------------------------------------------------
@router.put("/{audience_id}", response_model=AudienceOut)
def put(body: AudiencePut, request: Request, response: Response, audience_id: str = AudienceId) -> AudienceOut:
    """Create the audience (201) or rename it (200). A name used by another audience: 409.

    A rename also renames the Meta audiences metabridge created for it (a ``rename`` job per destination).
    """
    service = service_of(request)
    # The read names the audience holding the name; the constraint (unique_name) decides between two racing PUTs.
    with unique_name("an audience", body.name), service.engine.begin() as conn:
        other = store.audience_named(conn, body.name)
        if other is not None and other.id != audience_id:
            raise ApiError(409, f"the name '{body.name}' is already used by audience '{other.id}'",
                           [{"field": "name", "message": f"is already used by audience '{other.id}'"}],
                           audience=other.id)
        audience, before = store.put_audience(conn, audience_id, body.name, body.description)
        if before is not None and before.name != audience.name:
            jobs.queue_renames(conn, audience_id, now_ms())
    response.status_code = 201 if before is None else 200
    return audience_out(service, audience)


@router.get("", response_model=list[AudienceOut])
def list_all(request: Request) -> list[AudienceOut]:
    service = service_of(request)
    with service.engine.connect() as conn:
        found = store.list_audiences(conn)
    return [audience_out(service, a) for a in found]


@router.get("/{audience_id}", response_model=AudienceOut)
def get_one(request: Request, audience_id: str = AudienceId) -> AudienceOut:
    """Member count, linked destinations, last sync time and result."""
    service = service_of(request)
    return audience_out(service, audience_or_404(service, audience_id))


@router.delete("/{audience_id}", status_code=204)
def remove(request: Request, audience_id: str = AudienceId) -> Response:
    """Delete the audience. Refused (409) while it is linked to destinations: detach them first."""
    service = service_of(request)
    with service.engine.begin() as conn:
        if store.get_audience(conn, audience_id) is None:
            raise ApiError(404, f"audience '{audience_id}' does not exist")
        linked = store.list_destinations(conn, audience_id, linked_only=True)
        if linked:
            names = ", ".join(f"'{d.name}'" for d in linked)
            raise ApiError(409, f"audience '{audience_id}' is linked to {names}: detach them first "
                           f"(DELETE /v1/audiences/{audience_id}/destinations/{{id}})",
                           links=[{"id": d.id, "name": d.name, "status": d.status} for d in linked])
        store.delete_audience(conn, audience_id)
    return Response(status_code=204)


# -- members -------------------------------------------------------------------------------------------
@router.post("/{audience_id}/members", response_model=MembersChanged)
async def add_members(request: Request, audience_id: str = AudienceId) -> MembersChanged:
    """Add or update up to 100,000 members (by external_id, else email, else phone).

    Invalid members come back in ``rejected`` with field and rule; the others are applied.
    """
    service = service_of(request)
    raw = await read_json_list(request, "members", MAX_MEMBERS_PER_CALL)
    assert raw is not None
    await run_in_threadpool(audience_or_404, service, audience_id)
    return await run_in_threadpool(_apply_adds, service, audience_id, raw)


def _apply_adds(service: Service, audience_id: str, raw: list[Any]) -> MembersChanged:
    members, rejected, warnings = _read_all(raw)
    with service.engine.begin() as conn:
        added, updated = store.upsert_members(conn, audience_id, members)
        if members:
            store.schedule_sync(conn, audience_id, _debounced(service))
        count = store.count_members(conn, audience_id)
    return MembersChanged(received=len(raw), added=added, updated=updated, rejected=rejected,
                          warnings=warnings, member_count=count)  # type: ignore[arg-type]


@router.delete("/{audience_id}/members", response_model=MembersChanged)
async def delete_members(request: Request, audience_id: str = AudienceId) -> MembersChanged:
    """Remove the members given (``{"members": [...]}``); with no body or an empty list, empty the audience.

    Emptying removes every member in Meta too, also for add_only destinations.
    """
    service = service_of(request)
    raw = await read_json_list(request, "members", MAX_MEMBERS_PER_CALL, allow_empty=True)
    await run_in_threadpool(audience_or_404, service, audience_id)
    return await run_in_threadpool(_apply_removes, service, audience_id, raw)


def _apply_removes(service: Service, audience_id: str, raw: list[Any] | None) -> MembersChanged:
    if not raw:
        with service.engine.begin() as conn:
            removed = store.empty_audience(conn, audience_id)
            store.schedule_sync(conn, audience_id, _debounced(service), purge=True)
        return MembersChanged(received=0, removed=removed, emptied=True, member_count=0)
    members, rejected, warnings = _read_all(raw)
    with service.engine.begin() as conn:
        removed = store.delete_members(conn, audience_id, [key for key, _, _ in members])
        if removed:
            store.schedule_sync(conn, audience_id, _debounced(service))
        count = store.count_members(conn, audience_id)
    distinct = len({key for key, _, _ in members})
    return MembersChanged(received=len(raw), removed=removed, not_found=distinct - removed, rejected=rejected,
                          warnings=warnings, member_count=count)  # type: ignore[arg-type]


@router.get("/{audience_id}/members", response_model=MemberPage,
            responses={200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV with ?format=csv"}})
def list_members(
    request: Request, audience_id: str = AudienceId,
    after: int = Query(0, ge=0, description="next_after of the previous page"),
    limit: int = Query(1000, ge=1, le=10_000),
    format: str = Query("json", pattern="^(json|csv)$", description="csv: every member, as a download"),
) -> Any:
    """Members as given, in the order they were first added (paged); ``?format=csv`` exports them all."""
    service = service_of(request)
    audience_or_404(service, audience_id)
    if format == "csv":
        return StreamingResponse(
            _csv_rows(service, audience_id), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="audience-{audience_id}-members.csv"'},
        )
    with service.engine.connect() as conn:
        page = store.member_page(conn, audience_id, after, limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return MemberPage(data=page, next_after=page[-1]["id"] if more and page else None)  # type: ignore[arg-type]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return str(value)


def _csv_rows(service: Service, audience_id: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MEMBER_FIELDS)
    for count, member in enumerate(store.iter_members(service.engine, audience_id), start=1):
        data = member["data"]
        writer.writerow([_cell(data.get(name)) for name in MEMBER_FIELDS])
        if count % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# -- destinations --------------------------------------------------------------------------------------
@router.post("/{audience_id}/destinations", status_code=201, response_model=DestinationOut)
def add_destination(body: DestinationCreate, request: Request, audience_id: str = AudienceId) -> DestinationOut:
    """Link the audience to an ad account: the given Meta audience, or a new one (subtype CUSTOM).

    The first sync starts at once. A Custom Audience Terms error (200/1870090) or a token problem answers
    409 with ``reason: needs_person``: a person must act on the ad account.
    """
    service = service_of(request)
    audience = audience_or_404(service, audience_id)
    account = ad_account_or_404(service, body.ad_account)
    try:
        keys = normalize_keys(body.keys)
        columns_for(keys)
    except KeysError as exc:
        raise ApiError(422, str(exc), [{"field": "keys", "message": str(exc)}]) from None
    token, secret = account.access_token(service.box), account.app_secret(service.box)
    created = False
    meta_name: str | None = None
    with service.graph_client() as graph:
        if body.meta_audience_id:
            try:
                answer = graph.request("GET", body.meta_audience_id, access_token=token, app_secret=secret,
                                       params={"fields": "id,name,subtype"})
            except GraphError as exc:
                raise meta_error(exc, account, f"Meta audience {body.meta_audience_id} cannot be used") from None
            subtype = answer.body.get("subtype")
            if subtype not in (None, "CUSTOM"):
                raise ApiError(422, f"Meta audience {body.meta_audience_id} is a {subtype} audience; "
                               "members can only be uploaded to CUSTOM (customer list) audiences",
                               [{"field": "meta_audience_id", "message": "must be a CUSTOM audience"}])
            meta_id, meta_name = body.meta_audience_id, answer.body.get("name")
        else:
            description = (f"Synced by metabridge from audience '{audience.id}' "
                           f"({'+'.join(keys)}, {body.mode}). Changes made here may be overwritten.")
            try:
                answer = graph.request("POST", f"{account.node}/customaudiences", access_token=token,
                                       app_secret=secret, json={
                                           "name": audience.name, "subtype": "CUSTOM", "description": description,
                                           "customer_file_source": CUSTOMER_FILE_SOURCE,
                                       })
            except GraphError as exc:
                raise meta_error(exc, account, "creating the Meta audience failed") from None
            meta_id, meta_name, created = str(answer.body.get("id")), audience.name, True
            if not meta_id.isdigit():
                raise ApiError(502, f"Meta answered without an audience id: {answer.body}")
    name = body.name or f"{account.name}: {meta_name or meta_id}"
    with service.engine.begin() as conn:
        destination = store.create_destination(
            conn, audience_id=audience_id, ad_account_id=account.id, name=name, keys=keys, mode=body.mode,
            meta_audience_id=meta_id, created_meta_audience=created, sync_at=now_ms(),
        )
        return destination_out(conn, destination)


@router.get("/{audience_id}/destinations", response_model=list[DestinationOut])
def list_destination(request: Request, audience_id: str = AudienceId, all: bool = False) -> list[DestinationOut]:
    """Linked destinations (``?all=true``: detached ones too)."""
    service = service_of(request)
    audience_or_404(service, audience_id)
    with service.engine.connect() as conn:
        return [destination_out(conn, d) for d in store.list_destinations(conn, audience_id, linked_only=not all)]


@router.get("/{audience_id}/destinations/{destination_id}", response_model=DestinationOut)
def get_destination(destination_id: int, request: Request, audience_id: str = AudienceId) -> DestinationOut:
    service = service_of(request)
    destination = destination_or_404(service, audience_id, destination_id)
    with service.engine.connect() as conn:
        return destination_out(conn, destination)


@router.delete("/{audience_id}/destinations/{destination_id}", status_code=204)
def detach(destination_id: int, request: Request, audience_id: str = AudienceId) -> Response:
    """Stop syncing to this destination. The Meta audience and its members stay as they are."""
    service = service_of(request)
    destination_or_404(service, audience_id, destination_id)
    with service.engine.begin() as conn:
        store.detach_destination(conn, destination_id)
    return Response(status_code=204)


@router.post("/{audience_id}/sync", status_code=202, response_model=SyncStarted)
def sync_now(request: Request, audience_id: str = AudienceId) -> SyncStarted:
    """Sync every linked destination now (resumes destinations paused for a person to act)."""
    service = service_of(request)
    audience_or_404(service, audience_id)
    with service.engine.begin() as conn:
        store.schedule_sync(conn, audience_id, now_ms(), resume=True)
        ids = [d.id for d in store.list_destinations(conn, audience_id, linked_only=True)]
    return SyncStarted(destinations=ids)


@router.post("/{audience_id}/destinations/{destination_id}/replace", status_code=202, response_model=JobOut)
def replace(destination_id: int, request: Request, audience_id: str = AudienceId) -> JobOut:
    """Rebuild the Meta audience from scratch with a ``usersreplace`` session (one replace at a time)."""
    service = service_of(request)
    destination = destination_or_404(service, audience_id, destination_id)
    if destination.status == "detached":
        raise ApiError(409, f"destination {destination_id} is detached")
    with service.engine.begin() as conn:
        if jobs.has_unfinished(conn, destination_id, "replace"):
            raise ApiError(409, f"a replace of destination {destination_id} is already queued or running")
        job_id = jobs.create_job(conn, audience_id=audience_id, destination_id=destination_id, kind="replace",
                                 trigger="replace", now=now_ms())
        job = jobs.get_job(conn, job_id)
    assert job is not None
    return job_out(job)
