"""Catalog: the pure core (no I/O) of syncing a shop's products and product sets to a Meta catalog.

- :mod:`~metabridge.catalog.fields`: Meta's PRODUCT_ITEM field rules and the shop terms, as tables;
- :mod:`~metabridge.catalog.products`: a shop's product -> the items_batch ``data`` object + fingerprint;
- :mod:`~metabridge.catalog.filters`: product-set filter grammar, validation, evaluation;
- :mod:`~metabridge.catalog.batches`: items_batch requests and bodies under Meta's limits;
- :mod:`~metabridge.catalog.clearing`: the empty values that remove from Meta the fields a product lost;
- :mod:`~metabridge.catalog.product_sets`: computed set kinds, refused personal kinds, membership;
- :mod:`~metabridge.catalog.diff`: what a sync sends (created, updated, deleted, retracted).

The sandbox's items_batch validates with the same table (:mod:`metabridge.sandbox.validation.catalog`).
"""

from metabridge.catalog.batches import (
    ITEM_TYPE,
    MAX_BODY_BYTES,
    MAX_REQUESTS,
    RECOMMENDED_REQUESTS,
    ItemRequest,
    chunk_requests,
    create_request,
    delete_request,
    encode_body,
    items_batch_body,
    request_size,
    upsert_request,
)
from metabridge.catalog.clearing import clear_dropped, cleared_value, held_fields, merge_held
from metabridge.catalog.diff import (
    CHANGE_RULES,
    ChangeKind,
    ChangeRule,
    Changes,
    plan_changes,
)
from metabridge.catalog.fields import (
    AVAILABILITY_VALUES,
    CONDITION_VALUES,
    PRODUCT_ITEM_FIELDS,
    REQUIRED_FIELDS,
    SHOP_FIELDS,
    FieldKind,
    FieldRule,
    value_problem,
)
from metabridge.catalog.filters import (
    FILTER_FIELDS,
    MAX_FILTER_BYTES,
    OPERATORS,
    canonical_filter,
    matches,
    retailer_id_filter,
    validate_filter,
)
from metabridge.catalog.product_sets import (
    DEFAULT_SET_SIZE,
    MAX_SET_SIZE,
    PERSONAL_KINDS,
    SET_KINDS,
    ProductInfo,
    SetKind,
    compute_members,
    product_info,
    refusal_reason,
)
from metabridge.catalog.products import ProductItem, fingerprint, format_price, validate_product
from metabridge.events.errors import FieldError

__all__ = [
    # fields
    "AVAILABILITY_VALUES", "CONDITION_VALUES", "PRODUCT_ITEM_FIELDS", "REQUIRED_FIELDS", "SHOP_FIELDS",
    "FieldKind", "FieldRule", "value_problem",
    # products
    "FieldError", "ProductItem", "fingerprint", "format_price", "validate_product",
    # filters
    "FILTER_FIELDS", "MAX_FILTER_BYTES", "OPERATORS", "canonical_filter", "matches", "retailer_id_filter",
    "validate_filter",
    # batches
    "ITEM_TYPE", "MAX_BODY_BYTES", "MAX_REQUESTS", "RECOMMENDED_REQUESTS", "ItemRequest", "chunk_requests",
    "create_request", "delete_request", "encode_body", "items_batch_body", "request_size", "upsert_request",
    # clearing
    "clear_dropped", "cleared_value", "held_fields", "merge_held",
    # product sets
    "DEFAULT_SET_SIZE", "MAX_SET_SIZE", "PERSONAL_KINDS", "SET_KINDS", "ProductInfo", "SetKind",
    "compute_members", "product_info", "refusal_reason",
    # diff
    "CHANGE_RULES", "ChangeKind", "ChangeRule", "Changes", "plan_changes",
]
