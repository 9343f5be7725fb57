"""``/v1/catalogs``: Meta product catalogs kept equal to the products stored here, and their product sets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection

from metabridge.api.bodies import read_json_list
from metabridge.api.deps import lookup_or_404, service_of, unique_name
from metabridge.api.errors import ApiError
from metabridge.api.meta_errors import graph_failure
from metabridge.api.schemas_catalog import (
    CatalogCreate,
    CatalogJobOut,
    CatalogOut,
    CatalogUpdate,
    LastCatalogSync,
    ProductIds,
    ProductOut,
    ProductPage,
    ProductSetOut,
    ProductSetPut,
    ProductsChanged,
    ProductsDeleted,
    catalog_job_id,
)
from metabridge.catalog import DEFAULT_SET_SIZE, MAX_SET_SIZE, PERSONAL_KINDS, SET_KINDS, canonical_filter, refusal_reason, validate_filter
from metabridge.catalog_ingest import store_products
from metabridge.delivery.catalogs import needs_person_message
from metabridge.graph import GraphError
from metabridge.service import Service
from metabridge.store import catalog_jobs as jobs
from metabridge.store import catalogs as store
from metabridge.store.catalogs import StoredCatalog
from metabridge.store.connections import find_connection
from metabridge.timeutil import now_ms

router = APIRouter(prefix="/v1/catalogs", tags=["catalog"])

MAX_PRODUCTS_PER_CALL = 50_000
SET_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


# -- helpers -----------------------------------------------------------------------------------------------
def catalog_or_404(service: Service, catalog_id: int) -> StoredCatalog:
    return lookup_or_404(service, lambda conn: store.get_catalog(conn, catalog_id),
                         f"catalog {catalog_id} does not exist")


def catalog_out(conn: Connection, c: StoredCatalog) -> CatalogOut:
    return CatalogOut(
        id=c.id, name=c.name, catalog_id=c.catalog_id, has_app_secret=c.has_app_secret, schedule=c.schedule,
        currency=c.currency, connections=store.linked_connections(conn, c.id), status=c.status,  # type: ignore[arg-type]
        paused_reason=c.paused_reason, product_count=store.count_products(conn, c.id),
        items_in_meta=store.count_in_meta(conn, c.id), product_sets=len(store.list_product_sets(conn, c.id)),
        next_sync_at=c.next_sync_at, throttled_until=c.throttled_until,
        last_sync=LastCatalogSync(at=c.last_sync_at, result=c.last_sync_result,  # type: ignore[arg-type]
                                  job=catalog_job_id(c.last_job_id) if c.last_job_id else None,
                                  error=c.last_sync_error),
        created_at=c.created_at, updated_at=c.updated_at,
    )


def job_out(conn: Connection, job: dict[str, Any]) -> CatalogJobOut:
    return CatalogJobOut(
        id=catalog_job_id(job["id"]), catalog=job["catalog_id"], kind=job["kind"], trigger=job["trigger"],
        status=job["status"], items_created=job["items_created"], items_updated=job["items_updated"],
        items_deleted=job["items_deleted"], items_rejected=job["items_rejected"], rejected=job["rejected"],
        warnings_count=job["warnings_count"], warnings=job["warnings"] or [],
        batches=jobs.job_batches(conn, job["id"]),  # type: ignore[arg-type]
        product_sets=job["product_sets"], error=job["error"], attempts=job["attempts"],
        next_attempt_at=job["next_attempt_at"] or None, created_at=job["created_at"], started_at=job["started_at"],
        finished_at=job["finished_at"],
    )


def _connection_ids(conn: Connection, given: list[int | str]) -> list[int]:
    ids: list[int] = []
    for index, item in enumerate(given):
        found = find_connection(conn, str(item))
        if found is None:
            raise ApiError(422, f"connection {item!r} does not exist",
                           [{"field": f"connections.{index}", "message": f"no connection named or numbered {item!r}"}])
        ids.append(found.id)
    return ids


def meta_error(exc: GraphError, catalog: StoredCatalog, doing: str) -> ApiError:
    """A Graph error met while serving an API call about ``catalog``, as the API's error."""
    return graph_failure(exc, doing, throttled="this catalog",
                         needs_person=lambda error: needs_person_message(error, catalog))


# -- catalogs ----------------------------------------------------------------------------------------------
@router.post("", status_code=201, response_model=CatalogOut)
def create(body: CatalogCreate, request: Request) -> CatalogOut:
    """Add a catalog (any number). Its first scheduled sync is one schedule period away; sync now with
    ``POST /v1/catalogs/{id}/sync``."""
    service = service_of(request)
    with unique_name("a catalog", body.name), service.engine.begin() as conn:
        linked = _connection_ids(conn, body.connections)
        created = store.create_catalog(
            conn, service.box, name=body.name, catalog_id=body.catalog_id, access_token=body.access_token,
            app_secret=body.app_secret, schedule=body.schedule, currency=body.currency,
        )
        store.link_connections(conn, created.id, linked)
        return catalog_out(conn, created)


@router.get("", response_model=list[CatalogOut])
def list_all(request: Request) -> list[CatalogOut]:
    with service_of(request).engine.connect() as conn:
        return [catalog_out(conn, c) for c in store.list_catalogs(conn)]


@router.get("/{catalog_id}", response_model=CatalogOut)
def get_one(catalog_id: int, request: Request) -> CatalogOut:
    """Product count, items Meta confirmed, schedule, last sync time and result."""
    service = service_of(request)
    found = catalog_or_404(service, catalog_id)
    with service.engine.connect() as conn:
        return catalog_out(conn, found)


@router.patch("/{catalog_id}", response_model=CatalogOut)
def patch(catalog_id: int, body: CatalogUpdate, request: Request) -> CatalogOut:
    """Change settings; a new schedule counts from now; new credentials resume a paused catalog."""
    service = service_of(request)
    changes = body.model_dump(exclude_unset=True)
    with unique_name("a catalog", str(changes.get("name"))), service.engine.begin() as conn:
        updated = store.update_catalog(
            conn, service.box, catalog_id, name=changes.get("name"), meta_catalog_id=changes.get("catalog_id"),
            schedule=changes.get("schedule"), currency=changes.get("currency"),
            clear_currency="currency" in changes and changes["currency"] is None,
            access_token=changes.get("access_token"), app_secret=changes.get("app_secret"),
        )
        if updated is None:
            raise ApiError(404, f"catalog {catalog_id} does not exist")
        if body.connections is not None:
            store.link_connections(conn, catalog_id, _connection_ids(conn, body.connections))
        return catalog_out(conn, updated)


@router.delete("/{catalog_id}", status_code=204)
def remove(catalog_id: int, request: Request) -> Response:
    """Forget the catalog, its products, sets and jobs. The Meta catalog and its items stay as they are."""
    service = service_of(request)
    with service.engine.begin() as conn:
        if not store.delete_catalog(conn, catalog_id):
            raise ApiError(404, f"catalog {catalog_id} does not exist")
    return Response(status_code=204)


@router.post("/{catalog_id}/sync", status_code=202, response_model=CatalogJobOut)
def sync_now(catalog_id: int, request: Request) -> CatalogJobOut:
    """Sync now (whatever the schedule, "off" included); resumes a catalog paused for a person to act.

    Returns the queued job (an already queued job is reused: it will see every change made before it runs).
    """
    service = service_of(request)
    catalog_or_404(service, catalog_id)
    with service.engine.begin() as conn:
        store.set_catalog(conn, catalog_id, status="ok", paused_reason=None)
        job_id, _ = jobs.request_sync(conn, catalog_id, trigger="manual", now=now_ms())
        job = jobs.get_job(conn, job_id)
        assert job is not None
        return job_out(conn, job)


# -- products ----------------------------------------------------------------------------------------------
@router.put("/{catalog_id}/products", response_model=ProductsChanged)
async def put_products(catalog_id: int, request: Request) -> ProductsChanged:
    """Add or update up to 50,000 products (``{"products": [...]}`` or a list), by their ``id``.

    Each product is validated against Meta's rules; invalid ones come back in ``rejected`` with the field
    and the rule, the others are stored. Nothing is sent to Meta until the next sync.
    """
    service = service_of(request)
    raw = await read_json_list(request, "products", MAX_PRODUCTS_PER_CALL)
    assert raw is not None
    catalog = await run_in_threadpool(catalog_or_404, service, catalog_id)
    outcome = await run_in_threadpool(store_products, service.engine, catalog, raw)
    return ProductsChanged(
        received=outcome.received, created=outcome.created, updated=outcome.updated, unchanged=outcome.unchanged,
        rejected=outcome.rejected, warnings=outcome.warnings, warnings_total=outcome.warnings_total,  # type: ignore[arg-type]
        product_count=outcome.product_count,
    )


def _in_meta(row: dict[str, Any]) -> str:
    if row["unsettled"]:  # whatever was confirmed before, an abandoned batch may have changed it since
        return "unsettled"
    if row["sent_fingerprint"] == row["fingerprint"]:
        return "confirmed"
    if row["rejected_fingerprint"] == row["fingerprint"]:
        return "rejected"
    return "changed" if row["sent_fingerprint"] else "pending"


@router.get("/{catalog_id}/products", response_model=ProductPage)
def list_products(
    catalog_id: int, request: Request, after: int = Query(0, ge=0, description="next_after of the previous page"),
    limit: int = Query(1000, ge=1, le=10_000),
) -> ProductPage:
    """Products as given and as sent, in the order they were first stored (paged), with their state in Meta."""
    service = service_of(request)
    catalog_or_404(service, catalog_id)
    with service.engine.connect() as conn:
        page = store.product_page(conn, catalog_id, after, limit + 1)
    more = len(page) > limit
    page = page[:limit]
    data = [
        ProductOut(id=r["id"], retailer_id=r["retailer_id"], data=r["data"], item=r["item"], in_meta=_in_meta(r),  # type: ignore[arg-type]
                   meta_errors=r["rejected"] if _in_meta(r) == "rejected" else None,
                   created_at=r["created_at"], updated_at=r["updated_at"])
        for r in page
    ]
    return ProductPage(data=data, next_after=page[-1]["id"] if more and page else None)


@router.delete("/{catalog_id}/products", response_model=ProductsDeleted)
def delete_products(catalog_id: int, body: ProductIds, request: Request) -> ProductsDeleted:
    """Remove products by id; the next sync deletes them from the Meta catalog."""
    service = service_of(request)
    catalog_or_404(service, catalog_id)
    with service.engine.begin() as conn:
        removed = store.delete_products(conn, catalog_id, body.ids)
        count = store.count_products(conn, catalog_id)
    distinct = len(set(body.ids))
    return ProductsDeleted(received=len(body.ids), deleted=removed, not_found=distinct - removed, product_count=count)


# -- product sets ------------------------------------------------------------------------------------------
def set_out(row: dict[str, Any]) -> ProductSetOut:
    return ProductSetOut(**{k: row[k] for k in ProductSetOut.model_fields})


def _set_definition(key: str, body: ProductSetPut, catalog: StoredCatalog) -> dict[str, Any]:
    """kind, name, size and filter of a set, or a 422 naming the rule (personal kinds are refused)."""
    if key in PERSONAL_KINDS:
        reason = refusal_reason(key)
        raise ApiError(422, str(reason), [{"field": "kind", "message": str(reason)}], reason="personal_product_set")
    if key in SET_KINDS:
        if body.filter is not None:
            raise ApiError(422, f"{key} is computed by metabridge: it takes a size, not a filter",
                           [{"field": "filter", "message": f"is not allowed for the computed kind {key}"}])
        size = body.size or DEFAULT_SET_SIZE
        if size > MAX_SET_SIZE:
            raise ApiError(422, f"size must be at most {MAX_SET_SIZE}",
                           [{"field": "size", "message": f"must be between 1 and {MAX_SET_SIZE}"}])
        name = body.name or f"{catalog.name}: {key.replace('_', ' ')} ({size}, by metabridge)"
        return {"kind": key, "name": name, "size": size, "filter": None}
    if body.filter is None:
        reason = refusal_reason(key)
        raise ApiError(422, f"{reason}; or give a filter to define your own set named {key!r}",
                       [{"field": "filter", "message": f"is required for a set that is not one of {', '.join(SET_KINDS)}"}])
    if body.size is not None:
        raise ApiError(422, "a filter set takes no size", [{"field": "size", "message": "is only for computed kinds"}])
    errors = validate_filter(body.filter)
    if errors:
        raise ApiError(422, f"the filter is invalid: {errors[0].field} {errors[0].message}",
                       [e.as_dict() for e in errors])
    canonical = canonical_filter(body.filter)
    if not canonical:
        raise ApiError(422, "an empty filter would put every item in the set; give a filter",
                       [{"field": "filter", "message": "must not be empty"}])
    return {"kind": "filter", "name": body.name or key, "size": None, "filter": canonical}


@router.put("/{catalog_id}/product-sets/{key}", response_model=ProductSetOut)
def put_product_set(catalog_id: int, key: str, body: ProductSetPut, request: Request, response: Response) -> ProductSetOut:
    """Turn on a computed set (``most_sold``, ``most_viewed``, ``most_in_stock``, ``random``; ``{size?}``) or
    define a filter set (``{name?, filter}``) under a key of your choice. Personal kinds are refused (422).

    The next sync creates or updates the Meta product set.
    """
    service = service_of(request)
    catalog = catalog_or_404(service, catalog_id)
    if len(key) > 100:
        raise ApiError(422, "the set key is too long", [{"field": "key", "message": "at most 100 characters"}])
    definition = _set_definition(key, body, catalog)
    with service.engine.begin() as conn:
        row, created = store.put_product_set(conn, catalog_id, key, **definition)
    response.status_code = 201 if created else 200
    return set_out(row)


@router.get("/{catalog_id}/product-sets", response_model=list[ProductSetOut])
def list_product_sets(catalog_id: int, request: Request) -> list[ProductSetOut]:
    service = service_of(request)
    catalog_or_404(service, catalog_id)
    with service.engine.connect() as conn:
        return [set_out(r) for r in store.list_product_sets(conn, catalog_id)]


@router.get("/{catalog_id}/product-sets/{key}", response_model=ProductSetOut)
def get_product_set(catalog_id: int, key: str, request: Request) -> ProductSetOut:
    service = service_of(request)
    catalog_or_404(service, catalog_id)
    with service.engine.connect() as conn:
        row = store.get_product_set(conn, catalog_id, key)
    if row is None:
        raise ApiError(404, f"catalog {catalog_id} has no product set {key!r}")
    return set_out(row)


@router.delete("/{catalog_id}/product-sets/{key}", status_code=204)
def delete_product_set(
    catalog_id: int, key: str, request: Request,
    keep_in_meta: bool = Query(False, description="Stop syncing the set but leave the Meta product set."),
) -> Response:
    """Stop syncing the set and delete it from the Meta catalog (unless ``keep_in_meta``)."""
    service = service_of(request)
    catalog = catalog_or_404(service, catalog_id)
    with service.engine.connect() as conn:
        row = store.get_product_set(conn, catalog_id, key)
    if row is None:
        raise ApiError(404, f"catalog {catalog_id} has no product set {key!r}")
    if row["meta_product_set_id"] and not keep_in_meta:
        with service.graph_client() as graph:
            try:
                graph.request("DELETE", row["meta_product_set_id"], access_token=catalog.access_token(service.box),
                              app_secret=catalog.app_secret(service.box))
            except GraphError as exc:
                if not (exc.code == 100 and exc.subcode == 33):  # already gone in Meta
                    raise meta_error(exc, catalog, f"deleting Meta product set {row['meta_product_set_id']} failed") from None
    with service.engine.begin() as conn:
        store.delete_product_set(conn, row["id"])
    return Response(status_code=204)
