"""Delivery: the worker side of the events outbox (claim, send to Meta, record the outcome).

Public API::

    from metabridge.delivery import DeliveryWorker

    worker = DeliveryWorker(engine, settings, box, graph)
    worker.run_once()              # one pass over every due connection; returns events handled
    worker.run(stop_event)         # loop until stop_event is set (graceful: finishes the batch in flight)

:mod:`metabridge.delivery.claims` holds every statement on the ``events`` table the worker runs;
:mod:`metabridge.delivery.retry` the backoff policy; :mod:`metabridge.delivery.payload` request bodies.
"""

from metabridge.delivery.claims import BATCH_LIMIT, ClaimedEvent
from metabridge.delivery.payload import build_body, time_window_error
from metabridge.delivery.report import REASON_MAX_AGE, REASON_MISSING_PAYLOAD, REASON_REJECTED, REASON_TOO_OLD
from metabridge.delivery.retry import RetryDecision, RetryPolicy, usage_hint_seconds
from metabridge.delivery.worker import DeliveryWorker

__all__ = [
    "BATCH_LIMIT",
    "REASON_MAX_AGE",
    "REASON_MISSING_PAYLOAD",
    "REASON_REJECTED",
    "REASON_TOO_OLD",
    "ClaimedEvent",
    "DeliveryWorker",
    "RetryDecision",
    "RetryPolicy",
    "build_body",
    "time_window_error",
    "usage_hint_seconds",
]
