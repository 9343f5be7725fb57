"""How Meta's per-item answer to one items_batch becomes the sync's outcome (delivery.catalogs._outcomes).

The sandbox never rejects a DELETE (a missing item is simply not there), so the rule that a rejected
retraction still counts as deleted (Meta may answer a DELETE of an item it lacks with an error; its docs do
not say) is checked here, on the pure function, for every kind of change.
"""

from __future__ import annotations

import pytest

from metabridge.delivery.catalogs import _outcomes, _Report


@pytest.mark.parametrize(
    ("kind", "rejected", "counts", "upserted", "deleted", "noted"),
    [
        ("created", False, {"created": 1, "updated": 0, "deleted": 0}, ["sku-1"], [], 0),
        ("updated", False, {"created": 0, "updated": 1, "deleted": 0}, ["sku-1"], [], 0),
        ("deleted", False, {"created": 0, "updated": 0, "deleted": 1}, [], ["sku-1"], 0),
        ("retracted", False, {"created": 0, "updated": 0, "deleted": 1}, [], ["sku-1"], 0),
        ("created", True, {"created": 0, "updated": 0, "deleted": 0}, [], [], 0),
        ("deleted", True, {"created": 0, "updated": 0, "deleted": 0}, [], [], 0),
        # a retraction Meta refused: the item is not in Meta either way; counted, with a warning, not rejected
        ("retracted", True, {"created": 0, "updated": 0, "deleted": 1}, [], ["sku-1"], 1),
    ],
)
def test_each_kind_of_change_under_meta_s_answer(
    kind: str, rejected: bool, counts: dict[str, int], upserted: list[str], deleted: list[str], noted: int
) -> None:
    report = _Report()
    invalid = {"sku-1"} if rejected else set()
    outcomes = _outcomes(report, [["sku-1", "fp-1", kind, []]], {"sku-1": ["item not found"]}, invalid)
    assert outcomes.counts == counts
    assert [rid for rid, *_ in outcomes.upserted] == upserted
    assert outcomes.deleted == deleted
    assert outcomes.noted == noted and len(report.warnings) == noted
    refused = rejected and kind != "retracted"
    assert [rid for rid, *_ in outcomes.rejected] == (["sku-1"] if refused else [])
    assert report.rejected_by_reason == ({"item not found": 1} if refused else {})
