"""Request and response bodies of the catalog API: catalogs, products, product sets, catalog jobs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metabridge.catalog.fields import CURRENCY_CODES
from metabridge.catalog.schedule import HOURLY, ScheduleError, parse_schedule

#: Catalog job ids in the API are ``catalog-<n>``; audience job ids are plain numbers (see api.routes.jobs).
CATALOG_JOB_PREFIX = "catalog-"


def catalog_job_id(number: int) -> str:
    return f"{CATALOG_JOB_PREFIX}{number}"


def _schedule(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_schedule(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if code not in CURRENCY_CODES:
        raise ValueError(f"'{value}' is not an ISO 4217 currency code")
    return code


class _CatalogSettings(BaseModel):
    """The checks a catalog's ``schedule`` and ``currency`` get, whether created or changed.

    The fields themselves are declared by each subclass (required or optional, in its own order), so
    the validators do not check that the fields exist here.
    """

    @field_validator("schedule", check_fields=False)
    @classmethod
    def check_schedule(cls, value: str | None) -> str | None:
        return _schedule(value)

    @field_validator("currency", check_fields=False)
    @classmethod
    def check_currency(cls, value: str | None) -> str | None:
        return _currency(value)


class CatalogCreate(_CatalogSettings):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique among catalogs.")
    catalog_id: str = Field(min_length=1, max_length=64, pattern=r"^\d+$", description="The Meta product catalog id.")
    access_token: str = Field(min_length=1, description="Stored encrypted, never returned.")
    app_secret: str | None = Field(default=None, description="Stored encrypted; calls then carry appsecret_proof.")
    schedule: str = Field(default=HOURLY, description='"hourly", "off", or a cron expression (UTC).')
    currency: str | None = Field(default=None, description="ISO 4217 code for prices given as a bare number.")
    connections: list[int | str] = Field(default_factory=list, description="Connections (id or name) whose "
                                         "delivered Purchase and ViewContent events feed most_sold / most_viewed.")


class CatalogUpdate(_CatalogSettings):
    """New credentials resume a catalog paused by a token or permission error."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    catalog_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^\d+$")
    access_token: str | None = Field(default=None, min_length=1)
    app_secret: str | None = Field(default=None, description='"" removes it.')
    schedule: str | None = None
    currency: str | None = Field(default=None, description="null removes it.")
    connections: list[int | str] | None = None


class LastCatalogSync(BaseModel):
    at: int | None = Field(description="When the last sync job ended (ms).")
    result: Literal["ok", "failed"] | None
    job: str | None = Field(description="Its job id.")
    error: Any = None


class CatalogOut(BaseModel):
    id: int
    name: str
    catalog_id: str
    has_app_secret: bool
    schedule: str
    currency: str | None
    connections: list[int]
    status: Literal["ok", "paused"]
    paused_reason: str | None = Field(description="What a person must do before syncing resumes.")
    product_count: int
    items_in_meta: int = Field(description="Items Meta confirmed holding.")
    product_sets: int
    next_sync_at: int | None = Field(description="The next scheduled sync (null: schedule off or paused).")
    throttled_until: int | None
    last_sync: LastCatalogSync
    created_at: int
    updated_at: int


class ProductIssue(BaseModel):
    field: str
    message: str


class RejectedProduct(BaseModel):
    index: int
    id: str | None = Field(default=None, description="The product's id when it had one.")
    errors: list[ProductIssue]


class ProductWarning(BaseModel):
    index: int
    id: str
    warnings: list[ProductIssue]


class ProductsChanged(BaseModel):
    received: int
    created: int = 0
    updated: int = Field(default=0, description="Stored products whose items_batch data changed.")
    unchanged: int = 0
    rejected: list[RejectedProduct] = Field(default_factory=list)
    warnings: list[ProductWarning] = Field(default_factory=list, description="Up to 1,000 products with warnings.")
    warnings_total: int = 0
    product_count: int


class ProductsDeleted(BaseModel):
    received: int
    deleted: int
    not_found: int
    product_count: int


class ProductIds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=50_000, description="Product ids (Meta's retailer ids).")


class ProductOut(BaseModel):
    id: int
    retailer_id: str
    data: dict[str, Any] = Field(description="The product as given.")
    item: dict[str, Any] = Field(description="What metabridge sends in items_batch.")
    in_meta: Literal["confirmed", "changed", "pending", "rejected", "unsettled"] = Field(
        description="confirmed: Meta holds this version; changed: Meta holds an older one; pending: not sent "
        "yet; rejected: Meta refused this version (see meta_errors); unsettled: a batch carrying it was "
        "abandoned before Meta's outcome was known, so the next sync sends it again")
    meta_errors: Any = None
    created_at: int
    updated_at: int


class ProductPage(BaseModel):
    data: list[ProductOut]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null on the last page.")


class ProductSetPut(BaseModel):
    """A computed kind takes ``size``; a filter set takes ``filter`` (and ``name``)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, description="The set's name in Meta.")
    size: int | None = Field(default=None, ge=1, description="Computed kinds: members (default 50).")
    filter: Any = Field(default=None, description="Filter sets: a Meta product-set filter (§6.3 grammar).")


class ProductSetOut(BaseModel):
    key: str
    kind: str = Field(description="most_sold, most_viewed, most_in_stock, random, or filter.")
    name: str
    size: int | None
    filter: Any = Field(description="Filter sets: the filter given.")
    meta_product_set_id: str | None = Field(description="Null until the first sync creates it.")
    sent_filter: Any = Field(description="The filter Meta holds (computed kinds: retailer_id is_any [...]).")
    members: int | None = Field(description="Computed kinds: products in the set at the last sync.")
    synced_at: int | None
    created_at: int
    updated_at: int


class BatchOut(BaseModel):
    handle: str | None
    status: str = Field(description="sent (polling), finished, not_ingested or abandoned.")
    items: int
    sent_at: int
    finished_at: int | None
    polls: int


class CatalogJobOut(BaseModel):
    id: str = Field(description="catalog-<n>.")
    type: Literal["catalog"] = "catalog"
    catalog: int
    kind: Literal["sync"]
    trigger: str = Field(description="schedule or manual.")
    status: Literal["queued", "running", "done", "failed"]
    items_created: int = Field(description="Items Meta confirmed creating.")
    items_updated: int
    items_deleted: int
    items_rejected: int = Field(description="Items Meta refused (by reason in rejected).")
    rejected: dict[str, Any] | None = Field(description="{by_reason, samples: [{retailer_id, method, errors}]} (100 samples).")
    warnings_count: int
    warnings: list[dict[str, Any]] = Field(description="Up to 100 of Meta's per-item warnings.")
    batches: list[BatchOut] = Field(description="items_batch calls with their handles.")
    product_sets: list[dict[str, Any]] | None = Field(description="What the sync did to each product set.")
    error: Any = Field(description="Meta's error of the last failed attempt (or why the job failed).")
    attempts: int
    next_attempt_at: int | None
    created_at: int
    started_at: int | None
    finished_at: int | None
