"""One event's customer data: incoming ``user`` -> normalized, hashed ``user_data`` and its warnings.

Mapping (:func:`~metabridge.events.mapping.map_user`) and normalization (:mod:`metabridge.identity`) are pure
functions of the ``user`` object and the connection's identity settings, and real traffic repeats people:
the same shopper's page views, carts and purchase carry the same ``user`` record. :class:`CustomerCache`
keeps the whole outcome per ``user`` content, so a person seen again costs one dict look-up instead of
mapping and normalizing every value again. The part that depends on the event rather than the person (an
``fbc`` built from the landing URL's ``fbclid``, at the event's time) is added per event by the pipeline.

A person not in the cache whose record has the usual shape (known keys, one per ``user_data`` key, text
values) is mapped and normalized in one pass over the record, with the key-by-key resolution done once per
*shape* (:class:`UserShape`); any other record goes through :func:`map_user` and
:func:`~metabridge.identity.normalize_user_data`. Tests check that both give the same customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from metabridge.events.errors import FieldError
from metabridge.events.mapping import PlanCache, map_user, user_target
from metabridge.events.policy import meets_meta_baseline
from metabridge.identity import IdentityContext, normalize_user_data
from metabridge.identity.capi import ValueMemo, record_country, value_memos

__all__ = ["DEFAULT_CACHE_SIZE", "Customer", "CustomerCache", "UserShape", "customer_from_user", "user_shape"]

#: People a connection's cache holds by default: sized for ~20,000 active people. An entry is its key (the
#: record's values, ~0.1-0.5 KB) and the hashed ``user_data`` (~1 KB with a full profile); the benchmark's
#: 100,000 events from 20,000 people (36,600 distinct records) peak at ~30 MB.
DEFAULT_CACHE_SIZE = 32_768


@dataclass(frozen=True, slots=True)
class Customer:
    """What one ``user`` object becomes; shared by every event that carries the same object content.

    ``user_data`` is read-only by contract (the pipeline copies it into each event). ``fbc_given``: the
    incoming data had an ``fbc`` (even an unusable one), so none is built from the URL. ``meets_baseline``
    (derived, computed once per person rather than per event): its keys pass Meta's baseline
    (:func:`~metabridge.events.policy.meets_meta_baseline`), which more keys (an ``fbc`` from the URL)
    cannot undo.
    """

    user_data: dict[str, str | list[str]]
    warnings: tuple[FieldError, ...]
    fbc_given: bool
    meets_baseline: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "meets_baseline", meets_meta_baseline(self.user_data.keys()))


def customer_from_user(
    user: Mapping[str, Any], overrides: Mapping[str, Any], identity: IdentityContext
) -> Customer:
    """Map and normalize ``user`` (with ``integrations.facebook.user_data`` overrides); the general path."""
    raw_user, origin, warnings = map_user(user, overrides)
    identity_result = normalize_user_data(raw_user, identity)
    for issue in identity_result.issues:
        key = issue.field.removeprefix("user_data.")
        warnings.append(FieldError(origin.get(key, issue.field), issue.message))
    return Customer(identity_result.user_data, tuple(warnings), "fbc" in raw_user)


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: one object per shape
class UserShape:
    """What the tables say about a ``user`` object with these keys (in this order), resolved once.

    ``clean``: every key is text without surrounding whitespace (as the event model leaves it).
    ``targets``: the ``user_data`` key of each position, or None when the one-pass path does not apply (an
    unknown key, two keys for one ``user_data`` key, a key that is not clean). ``origins``: the incoming
    field each ``user_data`` key comes from, for warnings. ``country_at`` / ``fbc_at``: position of the
    country / fbc, or -1.
    """

    clean: bool
    targets: tuple[str, ...] | None
    origins: Mapping[str, str]
    country_at: int
    fbc_at: int


def _shape(keys: tuple[Any, ...]) -> UserShape:
    clean = all(type(key) is str and key.strip() == key for key in keys)
    targets = tuple(user_target(key) if clean else None for key in keys)
    usable = clean and None not in targets and len(set(targets)) == len(targets)
    return UserShape(
        clean=clean,
        targets=targets if usable else None,  # type: ignore[arg-type]
        origins={target: f"user.{key}" for key, target in zip(keys, targets) if target is not None},
        country_at=targets.index("country") if "country" in targets else -1,
        fbc_at=targets.index("fbc") if "fbc" in targets else -1,
    )


#: keys of a ``user`` object -> its :class:`UserShape`, resolved on first use.
_SHAPES: PlanCache = PlanCache(_shape)


def user_shape(keys: tuple[Any, ...]) -> UserShape:
    """The (cached) :class:`UserShape` of a ``user`` object with ``keys``."""
    shape: UserShape = _SHAPES[keys]
    return shape


#: Joins a record's values into one text for the cache key. Real values never hold it; one that does makes
#: the record uncacheable (the joined text would no longer tell the values apart).
_SEP = "\x1f"


class CustomerCache:
    """Bounded memo ``user`` content -> :class:`Customer` for one connection's identity settings.

    Two generations of at most ``size // 2`` entries each: look-ups hit the young one, or the old one (and
    the entry moves to the young one); when the young one is full it becomes the old one and the previous
    old one is dropped. So memory stays under ``size`` entries, and a person is kept while seen again within
    ``size // 2`` other people: the recency of an LRU at the cost of a plain dict look-up. ``size`` 0 turns
    the cache and the one-pass path off.

    The key is the record's :class:`UserShape` (its keys) and its values joined into one text: compact (one
    object to hash and compare rather than a dozen scattered ones) and exact. Only records whose values are
    all text are cached (``None`` counts as ``""``: both mean "not given"), since other values compare equal
    while read differently (``1``, ``1.0`` and ``True``).
    """

    __slots__ = ("_half", "_identity", "_memos", "_old", "_young", "size")

    def __init__(self, identity: IdentityContext, size: int = DEFAULT_CACHE_SIZE) -> None:
        self._identity = identity
        self.size = size
        self._half = max(size // 2, 1)
        self._young: dict[tuple[UserShape, str], Customer] = {}
        self._old: dict[tuple[UserShape, str], Customer] = {}
        self._memos: dict[str | None, Mapping[str, ValueMemo]] = {}  # record country -> value memos

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def get(self, user: dict[str, Any]) -> Customer | None:
        """The customer of ``user`` (no overrides), or None when its keys need the event model first
        (a key that is not text or has surrounding whitespace), or when the cache is off (size 0: every
        record then takes the general path, which the tests compare the fast paths with)."""
        if not self.size:
            return None
        keys = tuple(user)
        shape = _SHAPES[keys]
        if not shape.clean:
            return None
        key = (shape, _cache_text(user))
        if key[1] is not None:
            customer = self._young.get(key)
            if customer is not None:
                return customer
            customer = self._old.get(key)
            if customer is not None:
                self._keep(key, customer)
                return customer
        customer = self._one_pass(shape, tuple(user.values())) if shape.targets is not None else None
        if customer is None:
            customer = customer_from_user(user, {}, self._identity)
        if key[1] is not None and self.size:
            self._keep(key, customer)  # type: ignore[arg-type]
        return customer

    def _one_pass(self, shape: UserShape, values: tuple[Any, ...]) -> Customer | None:
        """Map and normalize a record of a usable shape in one pass (exactly as :func:`map_user` then
        :func:`~metabridge.identity.normalize_user_data` would); None when a value is not text."""
        at = shape.country_at
        given = at >= 0 and values[at] is not None and values[at] != ""  # map_user: None and "" are not given
        country = record_country(values[at]) if given else None
        memos = self._memos.get(country)
        if memos is None:
            memos = self._memos[country] = value_memos(country, self._identity)
        user_data: dict[str, str | list[str]] = {}
        warnings: list[FieldError] | None = None
        for target, value in zip(shape.targets, values):  # type: ignore[arg-type]
            if type(value) is not str:
                if value is None:
                    continue  # not given
                return None  # numbers, lists, dates: the general path
            if not value:
                continue  # "" is "not given" too
            memo = memos[target]
            outcome = memo.get(value)
            if outcome is None:
                outcome = memo.miss(value)
            if type(outcome) is str:
                user_data[target] = outcome
                continue
            result, issue = outcome
            if result is not None:
                user_data[target] = result
            if warnings is None:
                warnings = []
            warnings.append(FieldError(shape.origins[target], issue.message))
        at = shape.fbc_at
        fbc_given = at >= 0 and values[at] is not None and values[at] != ""
        return Customer(user_data, tuple(warnings) if warnings else (), fbc_given)

    def _keep(self, key: tuple[UserShape, str], customer: Customer) -> None:
        young = self._young
        if len(young) >= self._half:
            self._old = young
            self._young = young = {}
        young[key] = customer

    def clear(self) -> None:
        self._young.clear()
        self._old.clear()


def _cache_text(user: Mapping[str, Any]) -> str | None:
    """The record's values joined by :data:`_SEP` (``None`` as ``""``), or None when it must not be cached:
    a value that is not text, or one holding the separator."""
    try:
        text = _SEP.join(user.values())
    except TypeError:  # None, numbers, lists ...
        try:
            text = _SEP.join([("" if value is None else value) for value in user.values()])
        except TypeError:
            return None
    if len(user) > 1 and text.count(_SEP) != len(user) - 1:
        return None
    return text
