"""Consent and matching policies, table-driven."""

import pytest

from metabridge.events.policy import has_consent, meets_matching_policy


@pytest.mark.parametrize(
    ("categories", "required", "expected"),
    [
        (["1", "4"], "4", True),
        (["1", "4"], "2", False),
        (None, "2", False),
        ([], "2", False),
        (None, None, True),
        (["1"], None, True),
    ],
)
def test_consent(categories, required, expected) -> None:
    assert has_consent(categories, required) is expected


@pytest.mark.parametrize(
    ("keys", "event", "meta", "strict"),
    [
        ({"em"}, "Lead", True, True),
        ({"ph"}, "Purchase", True, True),
        ({"fbp"}, "Purchase", True, False),  # strict: Purchase needs em or ph
        ({"external_id"}, "Lead", True, True),
        ({"fbc"}, "PageView", True, True),
        (set(), "PageView", False, False),
        # Meta's broad combinations (D-BP baseline)
        ({"ct", "country", "st", "zp", "ge", "client_user_agent"}, "Lead", False, False),
        ({"ct", "country"}, "Lead", False, False),
        ({"db", "client_user_agent"}, "Lead", False, False),
        ({"fn", "ge"}, "Lead", False, False),
        ({"ln", "ge"}, "Lead", False, False),
        ({"client_user_agent"}, "Lead", False, False),
        # outside every broad combination
        ({"fn", "ln"}, "Lead", True, False),
        ({"client_ip_address", "client_user_agent"}, "Lead", True, False),
        ({"fn", "ln", "ct"}, "Lead", True, True),  # strict: three other keys
        ({"fn", "ln", "db"}, "Purchase", True, False),
    ],
)
def test_matching(keys, event, meta, strict) -> None:
    user_data = {key: "x" for key in keys}
    assert meets_matching_policy(user_data, "meta", event) is meta
    assert meets_matching_policy(user_data, "strict", event) is strict
