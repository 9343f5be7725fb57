"""Product-set filters: the grammar as tables, validation, and a pure evaluator. (§6.3)

A filter is a JSON object. A *leaf* is ``{"<field>": {"<operator>": value}}``; ``{"and": [...]}`` and
``{"or": [...]}`` combine filters; an empty filter (``""``, ``{}`` or ``None``) means every item. The
fields, operators and value types Meta documents are the tables below; :func:`validate_filter` reports
every violation with its path (``filter.or[1].product_type.i_contains``), :func:`matches` evaluates a
valid filter on an item's items_batch ``data`` (the sandbox computes a set's ``product_count`` with it).

Decisions where Meta is silent (stricter than Meta may be, never looser):

- one key per object and one operator per leaf (combine several with ``and``); no ``not`` combinator;
- ``lt``/``lte``/``gt``/``gte`` take numbers; ``eq``/``neq`` a string or number; ``contains``-style and
  ``starts_with`` a string; ``is_any``/``is_not_any`` a non-empty list of strings or numbers;
- text operators are refused on enum fields (Meta: "use eq for enums"), ``starts_with`` works on
  ``category`` only, label fields take ASCII text only ("no non-English Unicode in label filters");
- operators are case-insensitive (Meta), field names are not;
- nesting deeper than :data:`MAX_DEPTH` is refused (a guard, not a Meta rule).

Evaluation (sandbox semantics, Meta documents none): comparisons are exact and case-sensitive except the
``i_*`` operators; ``price_amount``/``sale_price_amount`` are the price in cents (price x 100, §6.3); a
field an item lacks matches no positive operator and every negative one (``neq``, ``not_contains``,
``i_not_contains``, ``is_not_any``); list fields (``internal_label``) match when any element does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from metabridge.catalog.fields import parse_meta_price
from metabridge.events.errors import FieldError

__all__ = [
    "COMBINATORS",
    "FILTER_FIELDS",
    "MAX_DEPTH",
    "MAX_FILTER_BYTES",
    "OPERATORS",
    "FilterField",
    "Operator",
    "ValueType",
    "canonical_filter",
    "decode_filter",
    "matches",
    "retailer_id_filter",
    "validate_filter",
]

#: ``filter`` is at most 500 KiB encoded (§6.3).
MAX_FILTER_BYTES = 500 * 1024
MAX_DEPTH = 32
COMBINATORS: tuple[str, ...] = ("and", "or")


class ValueType(enum.Enum):
    SCALAR = "a string or a number"
    NUMBER = "a number"
    TEXT = "a string"
    LIST = "a non-empty list of strings or numbers"


@dataclass(frozen=True, slots=True)
class Operator:
    """One filter operator: the value it takes; ``negates`` names the positive operator it inverts."""

    name: str
    value: ValueType
    text_only: bool = False
    negates: str | None = None


_OPERATOR_ROWS: tuple[Operator, ...] = (
    Operator("eq", ValueType.SCALAR),
    Operator("neq", ValueType.SCALAR, negates="eq"),
    Operator("lt", ValueType.NUMBER),
    Operator("lte", ValueType.NUMBER),
    Operator("gt", ValueType.NUMBER),
    Operator("gte", ValueType.NUMBER),
    Operator("contains", ValueType.TEXT, text_only=True),
    Operator("not_contains", ValueType.TEXT, text_only=True, negates="contains"),
    Operator("i_contains", ValueType.TEXT, text_only=True),
    Operator("i_not_contains", ValueType.TEXT, text_only=True, negates="i_contains"),
    Operator("is_any", ValueType.LIST),
    Operator("is_not_any", ValueType.LIST, negates="is_any"),
    Operator("starts_with", ValueType.TEXT, text_only=True),
)
OPERATORS: Mapping[str, Operator] = {op.name: op for op in _OPERATOR_ROWS}
#: ``starts_with`` "now only for the category field" (§6.3).
STARTS_WITH_FIELDS: frozenset[str] = frozenset({"category"})


@dataclass(frozen=True, slots=True)
class FilterField:
    """A field filters may name; ``source`` is the items_batch ``data`` key it reads (``None``: a Meta-side
    id the item data does not hold), ``default`` its value when the item leaves it out."""

    name: str
    source: str | None
    enum: bool = False
    label: bool = False
    price: bool = False
    currency: bool = False
    default: str | None = None


_FIELD_ROWS: tuple[FilterField, ...] = (
    FilterField("retailer_id", "id"),
    FilterField("retailer_product_group_id", "item_group_id"),
    FilterField("product_group_id", None),
    FilterField("product_item_id", None),
    FilterField("product_feed_id", None),
    *(FilterField(f"custom_label_{n}", f"custom_label_{n}", label=True) for n in range(5)),
    # §6.2: internal_label is "recommended over custom labels for set filtering".
    FilterField("internal_label", "internal_label", label=True),
    FilterField("brand", "brand"),
    FilterField("category", "google_product_category"),
    FilterField("product_type", "product_type"),
    FilterField("availability", "availability", enum=True),
    FilterField("condition", "condition", enum=True),
    FilterField("gender", "gender", enum=True),
    FilterField("age_group", "age_group", enum=True),
    FilterField("color", "color"),
    FilterField("size", "size"),
    FilterField("material", "material"),
    FilterField("pattern", "pattern"),
    FilterField("price_amount", "price", price=True),
    FilterField("sale_price_amount", "sale_price", price=True),
    FilterField("currency", "price", currency=True),
    FilterField("name", "title"),
    FilterField("visibility", "visibility", enum=True, default="published"),
    FilterField("review_status", "review_status", enum=True, default="approved"),
)
#: Filter field name -> how to read it (§6.3's list).
FILTER_FIELDS: Mapping[str, FilterField] = {f.name: f for f in _FIELD_ROWS}

_OPERATOR_LIST = ", ".join(OPERATORS)
_FIELD_LIST = ", ".join(FILTER_FIELDS)
_EXAMPLE = '{"brand": {"eq": "Acme"}}'


# -- decoding --------------------------------------------------------------------------------------------
def decode_filter(value: Any) -> Any:
    """A filter as given (object or JSON text) -> a Python value; ``""``/``None`` -> ``{}``.

    Raises ``ValueError`` when ``value`` is text but not JSON.
    """
    if value is None:
        return {}
    if isinstance(value, (str, bytes)):
        if not value.strip():
            return {}
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError("is not valid JSON") from None
    return value


def canonical_filter(value: Any) -> dict[str, Any]:
    """A valid filter with operators lowercased, so equal filters compare equal (duplicate detection)."""
    node = decode_filter(value)

    def walk(node: Any) -> Any:
        if not isinstance(node, Mapping) or not node:
            return node
        (key, inner), = node.items()
        if key in COMBINATORS:
            return {key: [walk(n) for n in inner]}
        return {key: {op.lower(): v for op, v in inner.items()}}

    result: dict[str, Any] = walk(node)
    return result


# -- validation ------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value_ok(kind: ValueType, value: Any) -> bool:
    if kind is ValueType.NUMBER:
        return _is_number(value)
    if kind is ValueType.TEXT:
        return isinstance(value, str)
    if kind is ValueType.SCALAR:
        return isinstance(value, str) or _is_number(value)
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) or _is_number(v) for v in value)
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _check_leaf(name: str, body: Any, path: str, errors: list[FieldError]) -> None:
    field = FILTER_FIELDS.get(name)
    if field is None:
        errors.append(FieldError(path, f"unknown filter field {name!r}: use one of {_FIELD_LIST}"))
        return
    if not isinstance(body, Mapping) or len(body) != 1:
        errors.append(FieldError(path, 'must be {"<operator>": value} with exactly one operator'))
        return
    (op_name, value), = body.items()
    op_path = f"{path}.{op_name}"
    op = OPERATORS.get(op_name.lower()) if isinstance(op_name, str) else None
    if op is None:
        errors.append(FieldError(op_path, f"unknown operator {op_name!r}: use one of {_OPERATOR_LIST}"))
        return
    if not _value_ok(op.value, value):
        errors.append(FieldError(op_path, f"{op.name} takes {op.value.value}"))
        return
    if op.text_only and field.enum:
        errors.append(FieldError(op_path, f"{op.name} works on text only: use eq or is_any for {name}"))
    elif op.name == "starts_with" and name not in STARTS_WITH_FIELDS:
        errors.append(FieldError(op_path, "starts_with works on category only"))
    if field.label and any(not s.isascii() for s in _strings(value)):
        errors.append(FieldError(op_path, "label filters take English (ASCII) text only"))


def _check(node: Any, path: str, depth: int, errors: list[FieldError]) -> None:
    if depth > MAX_DEPTH:
        errors.append(FieldError(path, f"nests deeper than {MAX_DEPTH} levels"))
        return
    if not isinstance(node, Mapping):
        errors.append(FieldError(path, f"must be a JSON object such as {_EXAMPLE}"))
        return
    if len(node) != 1:
        errors.append(FieldError(
            path, 'must have exactly one key: a field, "and" or "or" (combine leaves with {"and": [...]})'
        ))
        return
    (key, value), = node.items()
    if key in COMBINATORS:
        if not isinstance(value, list) or not value:
            errors.append(FieldError(f"{path}.{key}", "must be a non-empty list of filters"))
            return
        for index, child in enumerate(value):
            _check(child, f"{path}.{key}[{index}]", depth + 1, errors)
        return
    _check_leaf(key, value, f"{path}.{key}", errors)


def validate_filter(value: Any) -> list[FieldError]:
    """Every rule of the filter grammar ``value`` breaks (an object or its JSON text); empty when valid.

    ``""``, ``{}`` and ``None`` are valid: the set holds every item.
    """
    try:
        node = decode_filter(value)
    except ValueError as exc:
        return [FieldError("filter", str(exc))]
    if node == {}:
        return []
    errors: list[FieldError] = []
    _check(node, "filter", 0, errors)
    if not errors:
        size = len(orjson.dumps(node))
        if size > MAX_FILTER_BYTES:
            errors.append(FieldError(
                "filter", f"is {size} bytes encoded: Meta's limit is {MAX_FILTER_BYTES} (500 KiB)"
            ))
    return errors


def retailer_id_filter(ids: Sequence[str]) -> dict[str, Any]:
    """``{"retailer_id": {"is_any": [...]}}``: a set of exactly these items (duplicates dropped, order kept).

    Raises ``ValueError`` for no ids: such a filter is invalid, and a set that resolves to no item stops
    its ads (§6.3); the caller decides what an empty membership means.
    """
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise ValueError("a retailer_id filter needs at least one id")
    return {"retailer_id": {"is_any": unique}}


# -- evaluation ------------------------------------------------------------------------------------------
def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return x == y
    return str(a) == str(b)


def _compare(test: Callable[[Decimal, Decimal], bool]) -> Callable[[Any, Any], bool]:
    def run(item_value: Any, wanted: Any) -> bool:
        x, y = _number(item_value), _number(wanted)
        return x is not None and y is not None and test(x, y)

    return run


_POSITIVE: Mapping[str, Callable[[Any, Any], bool]] = {
    "eq": _same,
    "lt": _compare(lambda x, y: x < y),
    "lte": _compare(lambda x, y: x <= y),
    "gt": _compare(lambda x, y: x > y),
    "gte": _compare(lambda x, y: x >= y),
    "contains": lambda v, w: isinstance(v, str) and w in v,
    "i_contains": lambda v, w: isinstance(v, str) and w.casefold() in v.casefold(),
    "is_any": lambda v, w: any(_same(v, x) for x in w),
    "starts_with": lambda v, w: isinstance(v, str) and v.startswith(w),
}


def _field_values(field: FilterField, data: Mapping[str, Any]) -> list[Any]:
    """The item's values for a filter field (several for list fields, none when it lacks the field)."""
    if field.source is None:
        return []
    raw = data.get(field.source, field.default)
    if raw is None:
        return []
    if field.price or field.currency:
        parsed = parse_meta_price(raw)
        if parsed is None:
            return []
        return [parsed[1]] if field.currency else [parsed[0] * 100]
    return list(raw) if isinstance(raw, list) else [raw]


def _leaf_matches(name: str, body: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    (op_name, wanted), = body.items()
    op = OPERATORS[op_name.lower()]
    positive = _POSITIVE[op.negates or op.name]
    hit = any(positive(value, wanted) for value in _field_values(FILTER_FIELDS[name], data))
    return not hit if op.negates else hit


def _node_matches(node: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    if not node:
        return True
    (key, value), = node.items()
    if key == "and":
        return all(_node_matches(child, data) for child in value)
    if key == "or":
        return any(_node_matches(child, data) for child in value)
    return _leaf_matches(key, value, data)


def matches(filter: Any, item_data: Mapping[str, Any]) -> bool:
    """Whether an item (its items_batch ``data``) belongs to the set of a *valid* ``filter``.

    ``filter`` is an object or its JSON text; an empty filter matches every item. Call
    :func:`validate_filter` first: an invalid filter raises (``KeyError``/``ValueError``).
    """
    node = decode_filter(filter)
    return _node_matches(node, item_data)
