"""Which Meta event an incoming event name becomes.

The default table covers the names that GA4 / gtag and Segment's e-commerce spec use. Lookup is on a
*folded* name (lowercase, spaces and dashes as underscores) so ``Order Completed``, ``order-completed`` and
``order_completed`` all map alike. A name that already is a Meta standard event keeps its exact spelling;
any other name is sent as a custom event under its own name, as Meta allows.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Meta standard events (Meta Pixel reference), plus the business-messaging events (D-BM FAQ).
STANDARD_EVENTS: frozenset[str] = frozenset(
    {
        "AddPaymentInfo", "AddToCart", "AddToWishlist", "CompleteRegistration", "Contact",
        "CustomizeProduct", "Donate", "FindLocation", "InitiateCheckout", "Lead", "PageView", "Purchase",
        "Schedule", "Search", "StartTrial", "SubmitApplication", "Subscribe", "ViewContent",
        "LeadSubmitted", "QualifiedLead", "OrderCreated", "OrderShipped", "OrderDelivered",
        "OrderCanceled", "OrderReturned", "CartAbandoned", "RatingProvided", "ReviewProvided",
    }
)

#: Folded incoming name -> Meta standard event.
DEFAULT_EVENT_NAMES: Mapping[str, str] = {
    # page and content views
    "page_view": "PageView",
    "page_viewed": "PageView",
    "page": "PageView",
    "view_item": "ViewContent",
    "product_viewed": "ViewContent",
    "view_content": "ViewContent",
    "view_item_list": "ViewContent",
    "product_list_viewed": "ViewContent",
    # cart, wishlist, checkout
    "add_to_cart": "AddToCart",
    "product_added": "AddToCart",
    "add_to_wishlist": "AddToWishlist",
    "product_added_to_wishlist": "AddToWishlist",
    "begin_checkout": "InitiateCheckout",
    "checkout_started": "InitiateCheckout",
    "initiate_checkout": "InitiateCheckout",
    "add_payment_info": "AddPaymentInfo",
    "payment_info_entered": "AddPaymentInfo",
    "purchase": "Purchase",
    "order_completed": "Purchase",
    "order_placed": "Purchase",
    # leads and registration
    "generate_lead": "Lead",
    "lead": "Lead",
    "sign_up": "CompleteRegistration",
    "signed_up": "CompleteRegistration",
    "complete_registration": "CompleteRegistration",
    # search
    "search": "Search",
    "products_searched": "Search",
    "view_search_results": "Search",
    # subscriptions and other standard events
    "subscribe": "Subscribe",
    "subscription_started": "Subscribe",
    "start_trial": "StartTrial",
    "trial_started": "StartTrial",
    "contact": "Contact",
    "schedule": "Schedule",
    "submit_application": "SubmitApplication",
    "donate": "Donate",
    "find_location": "FindLocation",
    "customize_product": "CustomizeProduct",
}

_FOLD = str.maketrans({" ": "_", "-": "_"})


def fold_event_name(name: str) -> str:
    """Lowercase with spaces and dashes as underscores: the key the mapping tables use."""
    return name.strip().lower().translate(_FOLD)


class EventNameResolver:
    """Meta event name for an incoming name, under one connection's extra mappings.

    Order: the connection's own mappings (exact, then folded), a name that already is a Meta standard
    event, the default table, else the name itself as a custom event. Results are remembered per name
    because a connection sees the same few names millions of times.
    """

    __slots__ = ("_exact", "_folded", "_seen")

    def __init__(self, connection_names: Mapping[str, str] | None = None) -> None:
        names = dict(connection_names or {})
        self._exact = names
        self._folded = {fold_event_name(k): v for k, v in names.items()}
        self._seen: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        try:
            return self._seen[name]
        except KeyError:
            resolved = self._resolve(name)
            if len(self._seen) < 10_000:
                self._seen[name] = resolved
            return resolved

    def _resolve(self, name: str) -> str:
        stripped = name.strip()
        folded = fold_event_name(stripped)
        mapped = self._exact.get(stripped) or self._folded.get(folded)
        if mapped:
            return mapped
        if stripped in STANDARD_EVENTS:
            return stripped
        return DEFAULT_EVENT_NAMES.get(folded, stripped)


def resolve_event_name(name: str, connection_names: Mapping[str, str] | None = None) -> str:
    """One-off form of :class:`EventNameResolver`."""
    return EventNameResolver(connection_names)(name)
