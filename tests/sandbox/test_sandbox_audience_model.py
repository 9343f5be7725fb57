"""The indexed member set against a naive model of the matching rule, on random add/remove sequences.

The rule (audience_state docstring): walking EXTERN_ID, EMAIL, PHONE, MADID, the first key both rows have
decides; rows sharing none of them match when their identity cells are equal. An add replaces every
matching member, a remove deletes them. The naive model applies the rule pairwise to a plain list.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from metabridge.sandbox.audience_state import MemberSet, record_to_mapping

MATCH = ("EXTERN_ID", "EMAIL", "PHONE", "MADID")
KEYS = ("EXTERN_ID", "EMAIL", "PHONE", "MADID", "FN", "ZIP")


def same_person(a: dict[str, str], b: dict[str, str]) -> bool:
    for key in MATCH:
        if key in a and key in b:
            return a[key] == b[key]
    return a == b


def random_row(rng: random.Random) -> dict[str, str]:
    while True:
        row = {k: f"{k.lower()}{rng.randrange(4)}" for k in KEYS if rng.random() < 0.45}
        if row:
            return row


def record(row: dict[str, str]) -> tuple[Any, ...]:
    keys = tuple(k for k in KEYS if k in row)
    return (keys, *(row[k] for k in keys))


@pytest.mark.parametrize("seed", range(30))
def test_member_set_matches_the_naive_model(seed: int) -> None:
    rng = random.Random(seed)
    members = MemberSet()
    model: list[dict[str, str]] = []
    for _ in range(300):
        batch = [random_row(rng) for _ in range(rng.randrange(1, 6))]
        if rng.random() < 0.6:
            members.add_many(record(r) for r in batch)
            for row in batch:
                model = [m for m in model if not same_person(m, row)] + [row]
        else:
            members.remove_many(record(r) for r in batch)
            for row in batch:
                model = [m for m in model if not same_person(m, row)]
        got = sorted(sorted(record_to_mapping(r).items()) for r in members)
        assert got == sorted(sorted(m.items()) for m in model)
        assert len(members) == len(model)
