"""In-memory product catalogs of one sandbox: items, items_batch handles, product sets.

:class:`SandboxState` owns one :class:`CatalogStore` (``state.catalogs``) and replaces it on reset, like the
audience store. A catalog exists from the first call that names it (catalogs are made in Business
Manager, not through the API metabridge uses), so any numeric id works.

items_batch (§6.1)
    Each call is checked item by item (``validation/catalog.py``) under the store's lock, against the
    catalog as it is at that moment, and its valid items are applied at once: CREATE stores the item,
    UPDATE merges the given fields into it (creating it under ``allow_upsert``), DELETE removes it (a
    missing item is not an error [sandbox]: deleting twice is harmless; Meta's items_batch reference, its
    Catalog Batch API guide and the check_batch_request_status reference do not say what a DELETE of a
    missing retailer id answers, and metabridge takes either answer as success when it retracts an item
    Meta never confirmed). ``""``, ``[]`` and ``null``
    remove an optional field. The call returns a handle unless no request was valid.

check_batch_request_status
    Meta processes a batch asynchronously. The sandbox has already applied it, but its handle answers an
    in-progress status (``started``, then ``dispatched``) for the first :attr:`CatalogStore.in_progress_polls`
    polls (default 1; ``PUT /_sandbox/catalogs/batch-status-polls`` changes it for later batches), then
    ``finished`` with every error and warning ``{line, id, message}`` and their counts.

Product sets (§6.3)
    A set is ``{name, filter, retailer_id}`` on one catalog; two sets of a catalog cannot have the same
    filter (compared after lowercasing operators): 10803. ``product_count`` is computed on read by
    evaluating the filter on the catalog's items (:func:`metabridge.catalog.filters.matches`). Set ids
    come from a process-wide counter, never reused, and never collide with audience ids, so
    ``/{version}/{node_id}`` can tell them apart.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from metabridge.catalog.filters import matches
from metabridge.sandbox.validation.catalog import (
    DEFAULT_IN_PROGRESS_POLLS,
    BatchSpec,
    ItemCheck,
    SetSpec,
    check_item,
)

__all__ = ["Batch", "BatchOutcome", "CatalogError", "CatalogStore", "ProductSet"]

#: Product set ids look like Meta's (16 digits) and increase.
_SET_IDS = itertools.count(1_900_000_000_000_001)
_ids_lock = threading.Lock()


def _next_set_id() -> str:
    with _ids_lock:
        return str(next(_SET_IDS))


class CatalogError(Exception):
    """The store refuses an operation: ``kind`` is ``unknown_handle``, ``unknown_set`` or
    ``duplicate_filter``."""

    def __init__(self, kind: str, **details: Any) -> None:
        super().__init__(kind)
        self.kind = kind
        self.details = details


@dataclass(slots=True)
class Batch:
    """One items_batch call with a handle, as its status reports it."""

    handle: str
    catalog_id: str
    requests: int
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    invalid_ids: list[str]
    in_progress_polls: int
    polls: int = 0

    def status(self) -> str:
        if self.polls >= self.in_progress_polls:
            return "finished"
        return "started" if self.polls == 0 else "dispatched"


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    handle: str | None
    validation_status: list[dict[str, Any]]
    applied: int


@dataclass(slots=True)
class ProductSet:
    id: str
    catalog_id: str
    name: str
    filter: dict[str, Any]
    retailer_id: str | None
    filter_key: bytes = b""

    def __post_init__(self) -> None:
        self.filter_key = _filter_key(self.filter)


def _filter_key(rule: dict[str, Any]) -> bytes:
    return orjson.dumps(rule, option=orjson.OPT_SORT_KEYS)


@dataclass(slots=True)
class _Catalog:
    id: str
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    sets: dict[str, None] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    batch_calls: int = 0


def _validation_status(check: ItemCheck) -> dict[str, Any]:
    """One ``validation_status`` element: ``retailer_id`` and the non-empty ``errors``/``warnings``."""
    status: dict[str, Any] = {"retailer_id": check.retailer_id}
    if check.errors:
        status["errors"] = [{"message": m} for m in check.errors]
    if check.warnings:
        status["warnings"] = [{"message": m} for m in check.warnings]
    return status


def _cleared(value: Any) -> bool:
    return value is None or value == "" or value == []


class CatalogStore:
    """Every catalog of one sandbox. Thread-safe (one lock; a batch holds it for its items)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._catalogs: dict[str, _Catalog] = {}
        self._sets: dict[str, ProductSet] = {}
        self.in_progress_polls = DEFAULT_IN_PROGRESS_POLLS
        self.items_received = 0
        self.items_invalid = 0

    def _catalog(self, catalog_id: str) -> _Catalog:
        catalog = self._catalogs.get(catalog_id)
        if catalog is None:
            catalog = self._catalogs[catalog_id] = _Catalog(catalog_id)
        return catalog

    # -- items_batch ---------------------------------------------------------------------------------------
    def note_batch_call(self, catalog_id: str) -> None:
        """Count an items_batch call that reached the catalog (whatever its outcome)."""
        with self._lock:
            self._catalog(catalog_id).batch_calls += 1

    def apply_batch(self, catalog_id: str, spec: BatchSpec) -> BatchOutcome:
        """Check every request against the catalog as it is, apply the valid ones, remember the handle."""
        with self._lock:
            catalog = self._catalog(catalog_id)
            items = catalog.items
            checks: list[ItemCheck] = []
            for line, request in enumerate(spec.requests, start=1):
                data = request.get("data") if isinstance(request, dict) else None
                rid = data.get("id") if isinstance(data, dict) else None
                exists = isinstance(rid, str) and rid in items
                check = check_item(line, request, exists=exists, allow_upsert=spec.allow_upsert)
                checks.append(check)
                if check.valid:
                    self._apply(items, check)
            self.items_received += len(checks)
            invalid = [c for c in checks if not c.valid]
            self.items_invalid += len(invalid)
            status = [_validation_status(c) for c in checks if c.errors or c.warnings]
            if len(invalid) == len(checks):
                return BatchOutcome(None, status, 0)
            batch = Batch(
                handle="AC" + secrets.token_urlsafe(24),
                catalog_id=catalog_id,
                requests=len(checks),
                errors=[
                    {"line": c.line, "id": c.retailer_id, "message": m} for c in checks for m in c.errors
                ],
                warnings=[
                    {"line": c.line, "id": c.retailer_id, "message": m} for c in checks for m in c.warnings
                ],
                invalid_ids=[c.retailer_id for c in invalid if c.retailer_id],
                in_progress_polls=self.in_progress_polls,
            )
            catalog.batches[batch.handle] = batch
            return BatchOutcome(batch.handle, status, len(checks) - len(invalid))

    @staticmethod
    def _apply(items: dict[str, dict[str, Any]], check: ItemCheck) -> None:
        rid, data = check.retailer_id, check.data
        if check.method == "DELETE":
            items.pop(rid, None)
            return
        current = items.get(rid)
        if current is None or check.method == "CREATE":
            items[rid] = {k: v for k, v in data.items() if not _cleared(v)}
            return
        for name, value in data.items():
            if _cleared(value):
                current.pop(name, None)
            else:
                current[name] = value

    def batch_status(self, catalog_id: str, handle: str, *, load_ids: bool) -> dict[str, Any]:
        """A poll of ``handle``: its status (advancing towards ``finished``), errors and warnings."""
        with self._lock:
            catalog = self._catalogs.get(catalog_id)
            batch = catalog.batches.get(handle) if catalog is not None else None
            if batch is None:
                raise CatalogError("unknown_handle", handle=handle)
            status = batch.status()
            batch.polls += 1
            return {
                "handle": batch.handle,
                "status": status,
                "errors": list(batch.errors),
                "errors_total_count": len(batch.errors),
                "warnings": list(batch.warnings),
                "warnings_total_count": len(batch.warnings),
                "ids_of_invalid_requests": list(batch.invalid_ids) if load_ids else [],
            }

    # -- reading items -------------------------------------------------------------------------------------
    def items(
        self, catalog_id: str, *, offset: int = 0, limit: int = 1000
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the catalog's items (their ``data``, oldest first) and how many there are."""
        with self._lock:
            catalog = self._catalogs.get(catalog_id)
            if catalog is None:
                return [], 0
            page = itertools.islice(catalog.items.values(), offset, offset + limit)
            return [dict(item) for item in page], len(catalog.items)

    def summary(self, catalog_id: str) -> dict[str, Any]:
        """Counts of one catalog: items, product sets, items_batch calls, handles."""
        with self._lock:
            catalog = self._catalogs.get(catalog_id) or _Catalog(catalog_id)
            return {
                "id": catalog_id,
                "items": len(catalog.items),
                "product_sets": len(catalog.sets),
                "batch_calls": catalog.batch_calls,
                "handles": len(catalog.batches),
            }

    # -- product sets --------------------------------------------------------------------------------------
    def _duplicate(self, catalog: _Catalog, key: bytes, but: str | None = None) -> str | None:
        for set_id in catalog.sets:
            if set_id != but and self._sets[set_id].filter_key == key:
                return set_id
        return None

    def create_set(self, catalog_id: str, spec: SetSpec) -> str:
        assert spec.name is not None and spec.filter is not None
        with self._lock:
            catalog = self._catalog(catalog_id)
            product_set = ProductSet(_next_set_id(), catalog_id, spec.name, spec.filter, spec.retailer_id)
            existing = self._duplicate(catalog, product_set.filter_key)
            if existing is not None:
                raise CatalogError("duplicate_filter", product_set_id=existing)
            self._sets[product_set.id] = product_set
            catalog.sets[product_set.id] = None
            return product_set.id

    def _get_set(self, set_id: str) -> ProductSet:
        product_set = self._sets.get(set_id)
        if product_set is None:
            raise CatalogError("unknown_set", product_set_id=set_id)
        return product_set

    def is_product_set(self, node_id: str) -> bool:
        with self._lock:
            return node_id in self._sets

    def update_set(self, set_id: str, spec: SetSpec) -> None:
        with self._lock:
            product_set = self._get_set(set_id)
            if spec.filter is not None:
                key = _filter_key(spec.filter)
                catalog = self._catalogs[product_set.catalog_id]
                existing = self._duplicate(catalog, key, but=set_id)
                if existing is not None:
                    raise CatalogError("duplicate_filter", product_set_id=existing)
                product_set.filter, product_set.filter_key = spec.filter, key
            if spec.name is not None:
                product_set.name = spec.name
            if spec.retailer_id is not None:
                product_set.retailer_id = spec.retailer_id

    def delete_set(self, set_id: str) -> None:
        with self._lock:
            product_set = self._get_set(set_id)
            del self._sets[set_id]
            self._catalogs[product_set.catalog_id].sets.pop(set_id, None)

    def _members(self, product_set: ProductSet) -> Iterator[str]:
        items = self._catalogs[product_set.catalog_id].items
        return (rid for rid, data in items.items() if matches(product_set.filter, data))

    def _set_view(self, product_set: ProductSet, *, control: bool = False) -> dict[str, Any]:
        members = list(self._members(product_set))
        view: dict[str, Any] = {
            "id": product_set.id,
            "name": product_set.name,
            # Graph answers the filter as the JSON text it keeps.
            "filter": orjson.dumps(product_set.filter).decode(),
            "product_count": len(members),
            "retailer_id": product_set.retailer_id,
            "product_catalog": {"id": product_set.catalog_id},
        }
        if control:
            view["filter"] = product_set.filter
            view["members"] = sorted(members)
        return view

    def set_view(self, set_id: str) -> dict[str, Any]:
        with self._lock:
            return self._set_view(self._get_set(set_id))

    def list_sets(
        self, catalog_id: str, *, limit: int, after: int | None = None, retailer_id: str | None = None,
        control: bool = False,
    ) -> tuple[list[dict[str, Any]], bool, int]:
        """A page of the catalog's sets, oldest first: ``(views, more after, total matching)``."""
        with self._lock:
            catalog = self._catalogs.get(catalog_id)
            sets = [self._sets[i] for i in catalog.sets] if catalog is not None else []
            if retailer_id is not None:
                sets = [s for s in sets if s.retailer_id == retailer_id]
            total = len(sets)
            if after is not None:
                sets = [s for s in sets if int(s.id) > after]
            page = sets[:limit]
            return [self._set_view(s, control=control) for s in page], len(sets) > limit, total

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "catalogs": len(self._catalogs),
                "items": sum(len(c.items) for c in self._catalogs.values()),
                "product_sets": len(self._sets),
                "batch_calls": sum(c.batch_calls for c in self._catalogs.values()),
                "items_received": self.items_received,
                "items_invalid": self.items_invalid,
            }
