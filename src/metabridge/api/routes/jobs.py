"""``/v1/jobs``: the upload history of audience syncs (one job per add, remove or replace)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from metabridge.api.deps import service_of
from metabridge.api.errors import ApiError
from metabridge.api.schemas_audiences import JobOut
from metabridge.store import audience_jobs as store

router = APIRouter(prefix="/v1/jobs", tags=["audiences"])


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


@router.get("", response_model=list[JobOut])
def list_jobs(
    request: Request, audience: str | None = None, destination: int | None = None,
    status: str | None = Query(None, pattern="^(queued|running|done|failed)$"),
    kind: str | None = Query(None, pattern="^(add|remove|replace)$"),
    before: int | None = Query(None, description="Only jobs with a smaller id (paging, newest first)."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[JobOut]:
    """Jobs, newest first."""
    with service_of(request).engine.connect() as conn:
        found = store.list_jobs(conn, audience_id=audience, destination_id=destination, status=status, kind=kind,
                                before=before, limit=limit)
    return [job_out(j) for j in found]


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: int, request: Request) -> JobOut:
    with service_of(request).engine.connect() as conn:
        job = store.get_job(conn, job_id)
    if job is None:
        raise ApiError(404, f"job {job_id} does not exist")
    return job_out(job)
