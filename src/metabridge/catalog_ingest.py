"""Accept products for a catalog: validate each one, store the valid ones, report the others.

Shared by ``PUT /v1/catalogs/{id}/products`` and ``metabridge catalog import`` (as :mod:`metabridge.ingest`
is for events). Each product is checked by :func:`metabridge.catalog.validate_product` against Meta's rules
(§6.2) with the catalog's currency; a product that breaks a rule comes back with its index, the field and
the rule, and the rest of the call is stored (committed before the answer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from metabridge.catalog import FieldError, ProductItem, validate_product
from metabridge.records import Record, UnreadableRecord
from metabridge.store.catalogs import StoredCatalog, count_products, upsert_products

#: Products with warnings listed in one answer (the count is always complete).
MAX_WARNINGS = 1_000


@dataclass(slots=True)
class ProductsOutcome:
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    warnings_total: int = 0
    product_count: int = 0

    def add(self, other: ProductsOutcome) -> None:
        self.received += other.received
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected.extend(other.rejected)
        self.warnings.extend(other.warnings[:max(0, MAX_WARNINGS - len(self.warnings))])
        self.warnings_total += other.warnings_total
        self.product_count = other.product_count


def _id_of(record: Any) -> str | None:
    value = record.get("id") if isinstance(record, dict) else None
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def validate_all(catalog: StoredCatalog, records: Iterable[Record], *, start_index: int = 0,
                 outcome: ProductsOutcome | None = None) -> tuple[list[tuple[dict[str, Any], ProductItem]], ProductsOutcome]:
    """Valid ``(as given, item)`` pairs, and an outcome holding the rejections and warnings."""
    outcome = outcome or ProductsOutcome()
    valid: list[tuple[dict[str, Any], ProductItem]] = []
    for offset, record in enumerate(records):
        index = start_index + offset
        outcome.received += 1
        if isinstance(record, UnreadableRecord):
            outcome.rejected.append({"index": index, "id": None,
                                     "errors": [FieldError("product", record.message).as_dict()]})
            continue
        result = validate_product(record, currency=catalog.currency)
        if isinstance(result, ProductItem):
            valid.append((record, result))
            if result.warnings:
                outcome.warnings_total += 1
                if len(outcome.warnings) < MAX_WARNINGS:
                    outcome.warnings.append({"index": index, "id": result.retailer_id,
                                             "warnings": [w.as_dict() for w in result.warnings]})
        else:
            outcome.rejected.append({"index": index, "id": _id_of(record), "errors": [e.as_dict() for e in result]})
    return valid, outcome


def store_products(engine: Engine, catalog: StoredCatalog, records: Iterable[Record], *,
                   start_index: int = 0) -> ProductsOutcome:
    """Validate and commit one chunk of products; returns once the valid ones are durable."""
    valid, outcome = validate_all(catalog, records, start_index=start_index)
    with engine.begin() as conn:
        stored = upsert_products(conn, catalog.id, valid)
        outcome.product_count = count_products(conn, catalog.id)
    outcome.created, outcome.updated, outcome.unchanged = stored.created, stored.updated, stored.unchanged
    return outcome
