"""Catalog request validation: items_batch, check_batch_request_status, product sets (§6.1-§6.3).

Unlike ``validation/audiences.py`` the rules are *not* restated here: the PRODUCT_ITEM field table and the
filter grammar are domain tables of :mod:`metabridge.catalog` (``fields.PRODUCT_ITEM_FIELDS``,
``fields.value_problem``, ``filters.validate_filter``), and the sandbox imports them so there is one
source of truth. What this module adds is the request level (parameters, limits, methods, upsert
semantics) and the texts of Meta's answers.

Per-item rules of ``items_batch`` (an invalid item fails alone; the others are applied):

- ``method`` is CREATE, UPDATE or DELETE; ``data`` an object with a text ``id`` (<= 100 characters);
- CREATE (and an UPDATE that creates a missing item under ``allow_upsert``) needs every required field
  and one of ``image``/``image_link``; an UPDATE of an existing item may carry any subset;
- UPDATE of a missing item without ``allow_upsert`` fails; DELETE needs only ``id`` (others are ignored);
- each known field's value is checked with the table; ``""`` or ``[]`` for an optional field removes it
  (Meta: an empty array removes all entries); a required field cannot be emptied;
- a field the table does not know is ignored with a *warning*, Meta's text: "Unrecognised field: A request
  for item {id} contains unrecognised field: '{name}'" (examples/catalog-doc-examples.json).

Request-level rules (code 100, nothing applied): ``item_type`` missing or not PRODUCT_ITEM (the only type
simulated), ``requests`` missing / not a JSON array / empty / more than 5,000, ``allow_upsert`` not a
boolean, a body over 28 MB.

Decisions where Meta is silent, marked **[sandbox]**:

- ``validation_status`` lists the items with errors or warnings (the doc's example lists one with a
  warning); when no request is valid, ``handles`` is empty and nothing is stored;
- CREATE of an id that exists fails ("use UPDATE");
- ``""`` clears an optional text field;
- the status errors and warnings carry ``line`` = the request's 1-based position in the call.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from metabridge.catalog.batches import ITEM_TYPE, MAX_BODY_BYTES, MAX_REQUESTS
from metabridge.catalog.fields import IMAGE_FIELDS, PRODUCT_ITEM_FIELDS, REQUIRED_FIELDS, value_problem
from metabridge.catalog.filters import canonical_filter, validate_filter
from metabridge.sandbox.errors import GraphAPIException, graph_error
from metabridge.sandbox.validation.audiences import param_error, parse_bool

__all__ = [
    "BATCH_STATUS_FIELDS",
    "DEFAULT_IN_PROGRESS_POLLS",
    "ITEM_METHODS",
    "MAX_BODY_BYTES",
    "MAX_REQUESTS",
    "PRODUCT_SET_FIELDS",
    "BatchSpec",
    "ItemCheck",
    "SetSpec",
    "body_too_large",
    "check_item",
    "decode_set_cursor",
    "duplicate_filter",
    "encode_set_cursor",
    "parse_items_batch",
    "parse_set_create",
    "parse_set_fields",
    "parse_set_update",
    "parse_status_fields",
    "unknown_handle",
    "unrecognised_field",
]

ITEM_METHODS: frozenset[str] = frozenset({"CREATE", "UPDATE", "DELETE"})
#: Fields of a check_batch_request_status element (§6.1).
BATCH_STATUS_FIELDS: tuple[str, ...] = (
    "handle", "status", "errors", "errors_total_count", "warnings", "warnings_total_count",
    "ids_of_invalid_requests",
)  # fmt: skip
#: ProductSet fields (§6.3).
PRODUCT_SET_FIELDS: tuple[str, ...] = (
    "id", "name", "filter", "product_count", "retailer_id", "product_catalog", "latest_metadata",
    "live_metadata", "ordering_info", "auto_creation_url",
)  # fmt: skip
#: [sandbox] How many status polls answer an in-progress status before ``finished`` (control API).
DEFAULT_IN_PROGRESS_POLLS = 1


def unrecognised_field(retailer_id: str, name: str) -> str:
    """Meta's warning text for a field it does not know (examples/catalog-doc-examples.json)."""
    return (
        f"Unrecognised field: A request for item {retailer_id} contains unrecognised field: '{name}'"
    )


# -- items_batch -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BatchSpec:
    """A parsed ``POST /{catalog_id}/items_batch``."""

    requests: list[Any]
    allow_upsert: bool


def body_too_large(size: int) -> GraphAPIException:
    """[sandbox] Meta documents the 28 MB limit, not its error: code 100 naming the size."""
    return param_error(
        "requests", "Request Too Large",
        f"The request body is {size} bytes; an items_batch payload may be at most {MAX_BODY_BYTES} bytes.",
    )  # fmt: skip


def _requests(raw: Any) -> list[Any]:
    if raw is None or raw == "":
        raise param_error(
            "requests", "Missing Required Parameter", "The parameter requests is required.",
            "(#100) The parameter requests is required",
        )  # fmt: skip
    if isinstance(raw, (str, bytes)):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raw = None
    if not isinstance(raw, list):
        raise param_error("requests", "Invalid Parameter", "Param requests must be a JSON array.")
    if not raw:
        raise param_error("requests", "Invalid Parameter", "Param requests must not be empty.")
    if len(raw) > MAX_REQUESTS:
        raise param_error(
            "requests", "Too Many Requests",
            f"An items_batch call may carry at most {MAX_REQUESTS} requests; this one has {len(raw)}.",
        )  # fmt: skip
    requests: list[Any] = []
    for item in raw:
        if isinstance(item, str):  # JSON-encoded request strings, as SDK-style clients send lists
            try:
                item = orjson.loads(item)
            except orjson.JSONDecodeError:
                pass
        requests.append(item)
    return requests


def parse_items_batch(params: Mapping[str, Any]) -> BatchSpec:
    """Check the request-level parameters of an items_batch call (items are checked one by one later)."""
    item_type = params.get("item_type")
    if item_type is None or item_type == "":
        raise param_error(
            "item_type", "Missing Required Parameter", "The parameter item_type is required.",
            "(#100) The parameter item_type is required",
        )  # fmt: skip
    if item_type != ITEM_TYPE:
        raise param_error(
            "item_type", "Item Type Not Simulated",
            f"[sandbox] item_type {item_type!r}: only {ITEM_TYPE} catalogs are simulated.",
        )  # fmt: skip
    requests = _requests(params.get("requests"))
    return BatchSpec(requests, parse_bool(params.get("allow_upsert"), "allow_upsert", default=True))


@dataclass(slots=True)
class ItemCheck:
    """One request of a call, checked: what to apply (``data``) or why not (``errors``)."""

    line: int
    retailer_id: str
    method: str
    data: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


def _retailer_id(data: Mapping[str, Any]) -> str:
    value = data.get("id")
    return "" if value is None else str(value)


def check_item(line: int, request: Any, *, exists: bool, allow_upsert: bool) -> ItemCheck:
    """Check request number ``line`` (1-based) of a call; ``exists`` says whether its id is in the catalog."""
    if not isinstance(request, Mapping):
        return ItemCheck(line, "", "", {}, ["Invalid request: each request must be an object"])
    method = request.get("method")
    method = method.upper() if isinstance(method, str) else method
    data = request.get("data")
    if not isinstance(data, Mapping):
        return ItemCheck(line, "", str(method), {}, ["Invalid request: data must be an object"])
    retailer_id = _retailer_id(data)
    check = ItemCheck(line, retailer_id, str(method), dict(data))
    if method not in ITEM_METHODS:
        check.errors.append(f"Invalid method {method!r}: use CREATE, UPDATE or DELETE")
    if not retailer_id.strip():
        check.errors.append("A required field is missing: id")
    elif (problem := value_problem(PRODUCT_ITEM_FIELDS["id"], data["id"])) is not None:
        check.errors.append(f"Invalid value for id: {problem}")
    if check.errors:
        return check
    if method == "DELETE":
        check.data = {"id": retailer_id}
        return check
    if method == "CREATE" and exists:
        check.errors.append(f"[sandbox] An item with id {retailer_id} already exists: use UPDATE")
        return check
    if method == "UPDATE" and not exists and not allow_upsert:
        check.errors.append(f"Item {retailer_id} does not exist and allow_upsert is false")
        return check
    creating = not exists
    for name, value in data.items():
        rule = PRODUCT_ITEM_FIELDS.get(name)
        if rule is None:
            check.warnings.append(unrecognised_field(retailer_id, name))
            del check.data[name]  # Meta ignores it
            continue
        if value == "" or value == [] or value is None:
            if rule.required:
                check.errors.append(f"A required field is missing: {name}")
            continue
        problem = value_problem(rule, value)
        if problem is not None:
            check.errors.append(f"Invalid value for {name}: {problem}")
    if creating:
        present = {k for k, v in data.items() if v not in ("", [], None)}
        for name in REQUIRED_FIELDS:
            if name not in present and f"A required field is missing: {name}" not in check.errors:
                check.errors.append(f"A required field is missing: {name}")
        if not present & set(IMAGE_FIELDS):
            check.errors.append("A required field is missing: image (or image_link)")
    return check


# -- check_batch_request_status ----------------------------------------------------------------------------
def unknown_handle(handle: Any) -> GraphAPIException:
    """[sandbox] A handle this catalog never returned: code 100."""
    return param_error("handle", "Invalid Handle", f"The handle {handle!r} is not a batch of this catalog.")


def _field_list(
    value: Any, allowed: tuple[str, ...], node_type: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise param_error("fields", "Invalid Fields", "Param fields must be a comma-separated string.")
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        if name not in allowed:
            raise param_error(
                "fields", "Nonexisting Field",
                f"Tried accessing nonexisting field ({name}) on node type ({node_type})",
            )  # fmt: skip
    return tuple(dict.fromkeys(names))


def parse_status_fields(value: Any) -> tuple[str, ...]:
    """``fields`` of a status read; all of them when absent ([sandbox]). Unknown fields are code 100."""
    return _field_list(value, BATCH_STATUS_FIELDS, "CheckBatchRequestStatus", BATCH_STATUS_FIELDS)


def parse_set_fields(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    """``fields`` of a product-set read (``default`` when absent). Unknown fields are code 100."""
    return _field_list(value, PRODUCT_SET_FIELDS, "ProductSet", default)


def encode_set_cursor(set_id: str) -> str:
    """Opaque paging cursor for a product set (base64, like Meta's)."""
    return base64.urlsafe_b64encode(f"productset:{set_id}".encode()).decode().rstrip("=")


def decode_set_cursor(cursor: Any) -> int:
    """The product-set id a cursor points at; a cursor the sandbox did not make is code 100."""
    if isinstance(cursor, str) and cursor:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            text = ""
        prefix, _, set_id = text.partition(":")
        if prefix == "productset" and set_id.isdecimal():
            return int(set_id)
    raise param_error("after", "Invalid Cursor", "Param after is not a valid paging cursor.")


# -- product sets (§6.3) ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SetSpec:
    """A parsed product-set create or update; ``None`` fields are left as they are on update."""

    name: str | None = None
    filter: dict[str, Any] | None = None
    retailer_id: str | None = None


def _filter(params: Mapping[str, Any]) -> dict[str, Any]:
    raw = params.get("filter")
    errors = validate_filter(raw)
    if errors:
        first = errors[0]
        raise param_error(
            first.field, "Invalid Filter", f"Invalid product set filter: {first.field}: {first.message}"
        )
    return canonical_filter(raw)


def _name(params: Mapping[str, Any], *, required: bool) -> str | None:
    value = params.get("name")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise param_error(
            "name", "Missing Required Parameter", "The parameter name is required.",
            "(#100) The parameter name is required",
        )  # fmt: skip
    return value.strip()


def _set_retailer_id(params: Mapping[str, Any]) -> str | None:
    value = params.get("retailer_id")
    if value is None:
        return None
    if not isinstance(value, str):
        raise param_error("retailer_id", "Invalid Parameter", "Param retailer_id must be a string.")
    return value


def parse_set_create(params: Mapping[str, Any]) -> SetSpec:
    """``POST /{catalog_id}/product_sets``: ``name`` required, ``filter`` (object or JSON text; absent =
    every item), ``retailer_id``. Other documented parameters (metadata, ordering_info...) are ignored."""
    return SetSpec(_name(params, required=True), _filter(params), _set_retailer_id(params))


def parse_set_update(params: Mapping[str, Any]) -> SetSpec:
    """``POST /{product_set_id}``: any of ``name``, ``filter``, ``retailer_id``."""
    return SetSpec(
        _name(params, required=False),
        _filter(params) if "filter" in params else None,
        _set_retailer_id(params),
    )


def duplicate_filter() -> GraphAPIException:
    """10803: another set of the catalog has the same filter (§6.3)."""
    return graph_error(
        10803, None, "(#10803) Product set with the same filters already exists",
        user_title="Duplicate Product Set",
        user_msg="Product set with the same filters already exists",
        is_transient=False,
    )  # fmt: skip
