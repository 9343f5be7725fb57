"""``/v1/jobs``: the history of audience uploads (add, remove, replace) and catalog syncs.

Job ids are unambiguous by their form: an audience job's id is a number (``42``), a catalog job's id is
``catalog-<n>`` (``catalog-7``). ``GET /v1/jobs/{id}`` takes either; each kind answers with its own fields
(catalog jobs carry ``"type": "catalog"``). ``GET /v1/jobs`` lists audience jobs, or catalog jobs with
``?catalog=`` (an id or a name) or ``?type=catalog``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from metabridge.api.deps import service_of
from metabridge.api.errors import ApiError
from metabridge.api.routes.catalogs import job_out as catalog_job_out
from metabridge.api.schemas_audiences import JobOut
from metabridge.api.schemas_catalog import CATALOG_JOB_PREFIX, CatalogJobOut
from metabridge.store import audience_jobs as store
from metabridge.store import catalog_jobs
from metabridge.store.catalogs import find_catalog

router = APIRouter(prefix="/v1/jobs", tags=["audiences", "catalog"])


def job_out(job: dict[str, Any]) -> JobOut:
    return JobOut(
        id=job["id"], audience=job["audience_id"], destination=job["destination_id"], kind=job["kind"],
        scope=job["scope"], trigger=job["trigger"], status=job["status"], rows_sent=job["rows_sent"],
        batches=job["batches"], num_received=job["num_received"], num_invalid_entries=job["num_invalid_entries"],
        invalid_samples=job["invalid_samples"] or [], rejected_count=job["rejected_count"],
        rejected=job["rejected"], error=job["error"], attempts=job["attempts"],
        next_attempt_at=job["next_attempt_at"] or None, created_at=job["created_at"],
        started_at=job["started_at"], finished_at=job["finished_at"], session_id=job["session_id"],
        batch_seq=job["batch_seq"], note=job["note"],
    )


@router.get("", response_model=list[JobOut | CatalogJobOut])
def list_jobs(
    request: Request, audience: str | None = None, destination: int | None = None,
    catalog: str | None = Query(None, description="Catalog id or name: its sync jobs."),
    type: Literal["audience", "catalog"] | None = Query(None, description="Default: catalog when ?catalog= is given."),
    status: str | None = Query(None, pattern="^(queued|running|done|failed)$"),
    kind: str | None = Query(None, pattern="^(add|remove|replace|rename|sync)$"),
    before: int | None = Query(None, description="Only jobs with a smaller number (paging, newest first)."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[JobOut | CatalogJobOut]:
    """Jobs, newest first."""
    service = service_of(request)
    if catalog is not None or type == "catalog":
        if audience is not None or destination is not None or type == "audience":
            raise ApiError(422, "audience filters and catalog filters cannot be combined",
                           [{"field": "catalog", "message": "lists catalog jobs; drop audience/destination"}])
        if kind not in (None, "sync"):
            return []
        with service.engine.connect() as conn:
            catalog_id = None
            if catalog is not None:
                found = find_catalog(conn, catalog)
                if found is None:
                    raise ApiError(404, f"catalog {catalog} does not exist")
                catalog_id = found.id
            rows = catalog_jobs.list_jobs(conn, catalog_id=catalog_id, status=status, before=before, limit=limit)
            return [catalog_job_out(conn, j) for j in rows]
    if kind == "sync":
        return []
    with service.engine.connect() as conn:
        found_jobs = store.list_jobs(conn, audience_id=audience, destination_id=destination, status=status, kind=kind,
                                     before=before, limit=limit)
    return [job_out(j) for j in found_jobs]


@router.get("/{job_id}", response_model=JobOut | CatalogJobOut)
def get_job(job_id: str, request: Request) -> JobOut | CatalogJobOut:
    """An audience job (numeric id) or a catalog job (``catalog-<n>``)."""
    service = service_of(request)
    if job_id.startswith(CATALOG_JOB_PREFIX) and job_id[len(CATALOG_JOB_PREFIX):].isdigit():
        with service.engine.connect() as conn:
            catalog_job = catalog_jobs.get_job(conn, int(job_id[len(CATALOG_JOB_PREFIX):]))
            if catalog_job is None:
                raise ApiError(404, f"job {job_id} does not exist")
            return catalog_job_out(conn, catalog_job)
    if not job_id.isdigit():
        raise ApiError(404, f"job {job_id} does not exist (audience jobs have numeric ids, catalog jobs catalog-<n>)")
    with service.engine.connect() as conn:
        job = store.get_job(conn, int(job_id))
    if job is None:
        raise ApiError(404, f"job {job_id} does not exist")
    return job_out(job)
