"""Event-name mapping: the default table, standard names, custom names, connection overrides."""

import pytest

from metabridge.events import DEFAULT_EVENT_NAMES, STANDARD_EVENTS, EventNameResolver, resolve_event_name


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        ("page_view", "PageView"),
        ("view_item", "ViewContent"),
        ("Product Viewed", "ViewContent"),
        ("add_to_cart", "AddToCart"),
        ("Product Added", "AddToCart"),
        ("add_to_wishlist", "AddToWishlist"),
        ("begin_checkout", "InitiateCheckout"),
        ("Checkout Started", "InitiateCheckout"),
        ("add_payment_info", "AddPaymentInfo"),
        ("purchase", "Purchase"),
        ("Order Completed", "Purchase"),
        ("order-completed", "Purchase"),
        ("generate_lead", "Lead"),
        ("sign_up", "CompleteRegistration"),
        ("search", "Search"),
        ("Products Searched", "Search"),
        ("subscribe", "Subscribe"),
        ("start_trial", "StartTrial"),
        ("contact", "Contact"),
        ("schedule", "Schedule"),
        ("submit_application", "SubmitApplication"),
        ("donate", "Donate"),
        ("find_location", "FindLocation"),
        ("customize_product", "CustomizeProduct"),
        # already a Meta standard event: kept exactly
        ("Purchase", "Purchase"),
        ("ViewContent", "ViewContent"),
        ("OrderShipped", "OrderShipped"),
        # anything else: a custom event under its own name
        ("quiz_completed", "quiz_completed"),
        ("Newsletter Joined", "Newsletter Joined"),
    ],
)
def test_default_mapping(incoming: str, expected: str) -> None:
    assert resolve_event_name(incoming) == expected


def test_every_default_target_is_a_standard_event() -> None:
    assert set(DEFAULT_EVENT_NAMES.values()) <= STANDARD_EVENTS


def test_connection_mappings_win_over_defaults_and_fold_names() -> None:
    resolve = EventNameResolver({"Newsletter Joined": "Subscribe", "purchase": "OrderCreated"})
    assert resolve("Newsletter Joined") == "Subscribe"
    assert resolve("newsletter-joined") == "Subscribe"
    assert resolve("purchase") == "OrderCreated"
    assert resolve("add_to_cart") == "AddToCart"
