"""How incoming ``user`` and ``properties`` keys become Conversions API ``user_data`` and ``custom_data``.

Everything here is a table. To support another CDP's spelling, add a row; no code changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

#: Conversions API customer-information keys (D-CIP, D-BM). A key listed here may also be sent by its
#: own name in ``user``.
CAPI_USER_KEYS: frozenset[str] = frozenset(
    {
        "em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id",
        "client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id", "fb_login_id",
        "lead_id", "anon_id", "madid", "page_id", "page_scoped_user_id", "ctwa_clid", "ig_account_id",
        "ig_sid", "whatsapp_business_account_id", "instagram_business_account_id",
    }
)

#: Incoming ``user`` key -> ``user_data`` key (in addition to the CAPI keys themselves).
USER_FIELD_ALIASES: Mapping[str, str] = {
    "email": "em",
    "emails": "em",
    "phone": "ph",
    "phone_number": "ph",
    "phones": "ph",
    "first_name": "fn",
    "firstname": "fn",
    "last_name": "ln",
    "lastname": "ln",
    "gender": "ge",
    "birthdate": "db",
    "birthday": "db",
    "date_of_birth": "db",
    "city": "ct",
    "state": "st",
    "region": "st",
    "zip": "zp",
    "zip_code": "zp",
    "postal_code": "zp",
    "postcode": "zp",
    "country": "country",
    "country_code": "country",
    "external_id": "external_id",
    "user_id": "external_id",
    "ip": "client_ip_address",
    "ip_address": "client_ip_address",
    "user_agent": "client_user_agent",
    "fbp": "fbp",
    "fbc": "fbc",
}

USER_FIELD_MAP: Mapping[str, str] = {**{key: key for key in CAPI_USER_KEYS}, **USER_FIELD_ALIASES}

Conversion = Literal["number", "integer", "text", "currency", "raw"]


@dataclass(frozen=True, slots=True)
class PropertyRule:
    """One ``custom_data`` key, filled from the first incoming property that is present."""

    target: str
    sources: tuple[str, ...]
    convert: Conversion = "raw"


#: ``properties`` -> ``custom_data`` (D-STD). Order matters only within ``sources``.
PROPERTY_RULES: tuple[PropertyRule, ...] = (
    PropertyRule("value", ("value", "revenue", "total"), "number"),
    PropertyRule("currency", ("currency",), "currency"),
    PropertyRule("order_id", ("order_id", "transaction_id"), "text"),
    PropertyRule("content_name", ("content_name", "product_name", "name"), "text"),
    PropertyRule("content_category", ("content_category", "category"), "text"),
    PropertyRule("content_type", ("content_type",), "text"),
    PropertyRule("content_ids", ("content_ids",), "raw"),
    PropertyRule("contents", ("contents",), "raw"),
    PropertyRule("search_string", ("search_string", "search_term", "query"), "text"),
    PropertyRule("num_items", ("num_items",), "integer"),
    PropertyRule("predicted_ltv", ("predicted_ltv",), "number"),
    PropertyRule("net_revenue", ("net_revenue",), "number"),
    PropertyRule("status", ("status",), "raw"),
    PropertyRule("delivery_category", ("delivery_category",), "text"),
    PropertyRule("item_number", ("item_number",), "text"),
    PropertyRule("customer_segmentation", ("customer_segmentation",), "text"),
)

#: Incoming properties that hold the list of products of the event (GA4 ``items``, Segment ``products``).
ITEM_LIST_KEYS: tuple[str, ...] = ("items", "products")

#: A single-product event (Segment "Product Viewed", "Product Added") carries its product inline.
SINGLE_PRODUCT_ID_KEYS: tuple[str, ...] = ("product_id", "sku", "item_id")

#: Properties read for the single inline product; they are not passed on as custom properties.
SINGLE_PRODUCT_KEYS: tuple[str, ...] = (*SINGLE_PRODUCT_ID_KEYS, "price", "quantity")

#: ``contents[]`` key -> incoming item keys, first present wins (D-STD, SDK ``Content``).
ITEM_FIELD_RULES: tuple[PropertyRule, ...] = (
    PropertyRule("id", ("id", "item_id", "product_id", "sku"), "text"),
    PropertyRule("quantity", ("quantity",), "integer"),
    PropertyRule("item_price", ("item_price", "price"), "number"),
    PropertyRule("title", ("title", "item_name", "name"), "text"),
    PropertyRule("brand", ("brand", "item_brand"), "text"),
    PropertyRule("category", ("category", "item_category"), "text"),
    PropertyRule("delivery_category", ("delivery_category",), "text"),
)

#: Every incoming property some rule reads: these are *not* copied again as custom properties.
CONSUMED_PROPERTIES: frozenset[str] = frozenset(
    {src for rule in PROPERTY_RULES for src in rule.sources} | set(ITEM_LIST_KEYS) | set(SINGLE_PRODUCT_KEYS)
)
