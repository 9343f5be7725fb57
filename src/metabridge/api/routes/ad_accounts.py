"""``/v1/ad-accounts``: Meta ad accounts that audiences sync to, and the Custom Audiences they hold."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from metabridge.api.deps import lookup_or_404, service_of, unique_name
from metabridge.api.errors import ApiError
from metabridge.api.meta_errors import graph_failure
from metabridge.api.schemas_audiences import (
    AdAccountCreate,
    AdAccountOut,
    AdAccountUpdate,
    MetaAudienceList,
    MetaAudienceOut,
)
from metabridge.delivery.audiences import needs_person_message
from metabridge.graph import GraphError
from metabridge.service import Service
from metabridge.store import ad_accounts as store
from metabridge.store.ad_accounts import StoredAdAccount
from metabridge.store.audiences import linked_destinations_of_account, resume_account_destinations
from metabridge.store.schema import audience_destinations
from metabridge.timeutil import now_ms

router = APIRouter(prefix="/v1/ad-accounts", tags=["audiences"])

META_AUDIENCE_FIELDS = (
    "id,name,subtype,description,approximate_count_lower_bound,approximate_count_upper_bound,"
    "time_updated,time_content_updated,operation_status,delivery_status"
)
PAGE_LIMIT = 100
MAX_PAGES = 1_000


def to_out(a: StoredAdAccount) -> AdAccountOut:
    return AdAccountOut(id=a.id, name=a.name, account_id=a.account_id, has_app_secret=a.has_app_secret,
                        throttled_until=a.throttled_until, created_at=a.created_at, updated_at=a.updated_at)


def ad_account_or_404(service: Service, id_or_name: int | str) -> StoredAdAccount:
    return lookup_or_404(service, lambda conn: store.find_ad_account(conn, id_or_name),
                         f"ad account {id_or_name} does not exist")


def meta_error(exc: GraphError, account: StoredAdAccount, doing: str) -> ApiError:
    """A Graph error met while serving an API call about ``account``, as the API's error."""
    return graph_failure(exc, doing, throttled="this ad account",
                         needs_person=lambda error: needs_person_message(error, account))


@router.post("", status_code=201, response_model=AdAccountOut)
def create(body: AdAccountCreate, request: Request) -> AdAccountOut:
    """Add an ad account (any number); the token and app secret are stored encrypted."""
    service = service_of(request)
    with unique_name("an ad account", body.name), service.engine.begin() as conn:
        created = store.create_ad_account(
            conn, service.box, name=body.name, account_id=body.account_id.removeprefix("act_"),
            access_token=body.access_token, app_secret=body.app_secret,
        )
    return to_out(created)


@router.get("", response_model=list[AdAccountOut])
def list_all(request: Request) -> list[AdAccountOut]:
    with service_of(request).engine.connect() as conn:
        return [to_out(a) for a in store.list_ad_accounts(conn)]


@router.get("/{ad_account_id}", response_model=AdAccountOut)
def get_one(ad_account_id: int, request: Request) -> AdAccountOut:
    return to_out(ad_account_or_404(service_of(request), ad_account_id))


@router.patch("/{ad_account_id}", response_model=AdAccountOut)
def patch(ad_account_id: int, body: AdAccountUpdate, request: Request) -> AdAccountOut:
    service = service_of(request)
    changes = body.model_dump(exclude_unset=True)
    with unique_name("an ad account", str(changes.get("name"))), service.engine.begin() as conn:
        updated = store.update_credentials(conn, service.box, ad_account_id, name=changes.get("name"),
                                           access_token=changes.get("access_token"),
                                           app_secret=changes.get("app_secret"))
        if updated is not None and ("access_token" in changes or "app_secret" in changes):
            resume_account_destinations(conn, ad_account_id, now_ms())
    if updated is None:
        raise ApiError(404, f"ad account {ad_account_id} does not exist")
    return to_out(updated)


@router.delete("/{ad_account_id}", status_code=204)
def remove(ad_account_id: int, request: Request) -> Response:
    """Refused while audiences are linked to it (detach them first)."""
    service = service_of(request)
    from metabridge.store.schema import ad_accounts

    with service.engine.begin() as conn:
        linked = linked_destinations_of_account(conn, ad_account_id)
        if linked:
            raise ApiError(409, "ad account is linked to audiences: detach them first",
                           links=[{"audience": d.audience_id, "destination": d.id, "name": d.name} for d in linked])
        conn.execute(audience_destinations.delete().where(audience_destinations.c.ad_account_id == ad_account_id))
        if not conn.execute(ad_accounts.delete().where(ad_accounts.c.id == ad_account_id)).rowcount:
            raise ApiError(404, f"ad account {ad_account_id} does not exist")
    return Response(status_code=204)


def fetch_meta_audiences(service: Service, account: StoredAdAccount) -> tuple[list[dict[str, Any]], int]:
    """Every Custom Audience of the ad account, following Meta's cursor paging to the end."""
    token, secret = account.access_token(service.box), account.app_secret(service.box)
    found: list[dict[str, Any]] = []
    after: str | None = None
    limit = PAGE_LIMIT
    pages = 0
    with service.graph_client() as graph:
        while pages < MAX_PAGES:
            params: dict[str, Any] = {"fields": META_AUDIENCE_FIELDS, "limit": limit}
            if after:
                params["after"] = after
            try:
                answer = graph.request("GET", f"{account.node}/customaudiences", access_token=token,
                                       app_secret=secret, params=params)
            except GraphError as exc:
                if exc.code == 1 and limit > 10:  # "reduce the amount of data you're asking for"
                    limit = max(10, limit // 4)
                    continue
                raise meta_error(exc, account, "listing the ad account's audiences failed") from None
            pages += 1
            data = answer.body.get("data")
            if isinstance(data, list):
                found.extend(item for item in data if isinstance(item, dict))
            paging = answer.body.get("paging") if isinstance(answer.body.get("paging"), dict) else {}
            cursors = paging.get("cursors") if isinstance(paging.get("cursors"), dict) else {}
            next_after = cursors.get("after")
            if not paging.get("next") or not next_after or next_after == after or not data:
                break
            after = next_after
    return found, pages


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


@router.get("/{ad_account_id}/meta-audiences", response_model=MetaAudienceList)
def meta_audiences(ad_account_id: int, request: Request) -> MetaAudienceList:
    """Every Custom Audience on the Meta ad account, whoever created it: size, last update, status."""
    service = service_of(request)
    account = ad_account_or_404(service, ad_account_id)
    items, pages = fetch_meta_audiences(service, account)
    with service.engine.connect() as conn:
        links: dict[str, list[int]] = {}
        for row in conn.execute(select(audience_destinations.c.id, audience_destinations.c.meta_audience_id).where(
                audience_destinations.c.ad_account_id == ad_account_id, audience_destinations.c.status != "detached")):
            links.setdefault(row.meta_audience_id, []).append(row.id)
    out = [
        MetaAudienceOut(
            id=str(item.get("id")), name=item.get("name"), subtype=item.get("subtype"),
            description=item.get("description"),
            approximate_count_lower_bound=_int_or_none(item.get("approximate_count_lower_bound")),
            approximate_count_upper_bound=_int_or_none(item.get("approximate_count_upper_bound")),
            time_updated=_int_or_none(item.get("time_updated")),
            time_content_updated=_int_or_none(item.get("time_content_updated")),
            operation_status=item.get("operation_status"), delivery_status=item.get("delivery_status"),
            linked_destinations=links.get(str(item.get("id")), []),
        )
        for item in items
    ]
    return MetaAudienceList(ad_account=ad_account_id, count=len(out), pages=pages, data=out)
