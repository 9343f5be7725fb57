"""Running delivery workers inside a process: ``metabridge worker`` and the thread of ``metabridge serve``.

Each runner delivers events (:class:`DeliveryWorker`, ``DELIVERY_THREADS`` loops), syncs audiences
(:class:`~metabridge.delivery.audiences.AudienceWorker`, in a second thread of the same runner) and catalogs
(:class:`~metabridge.delivery.catalogs.CatalogWorker`, a third thread).

Besides the worker loop, each process does light housekeeping: events that are finished and older than
``retention_days`` are deleted, so the outbox does not grow without bound.
"""

from __future__ import annotations

import logging
import threading

from metabridge.delivery.worker import DeliveryWorker
from metabridge.service import Service
from metabridge.store.outbox import purge_finished
from metabridge.timeutil import now_ms

log = logging.getLogger(__name__)

HOUSEKEEPING_EVERY_S = 600.0
#: Pause of an idle audience or catalog loop. Their work is debounced or scheduled (seconds to hours), and an
#: idle pass costs several ms of CPU and, on SQLite, the write lock: polling them 5 times a second like
#: event delivery would take CPU from ingest for nothing.
SYNC_IDLE_SLEEP_S = 1.0
#: Event delivery loops per process. While one waits for Meta's answer, another claims, records outcomes
#: or sends: a single loop left the database idle during every request and Meta idle during every claim.
#: Claims are leased and disjoint, so the loops never send the same event.
DELIVERY_THREADS = 2


def _housekeeping(service: Service, stop: threading.Event) -> None:
    while not stop.wait(HOUSEKEEPING_EVERY_S):
        cutoff = now_ms() - service.settings.retention_days * 86_400_000
        try:
            with service.engine.begin() as conn:
                purged = purge_finished(conn, cutoff)
            if purged:
                log.info("housekeeping: deleted %d finished events older than %d days", purged, service.settings.retention_days)
        except Exception:  # noqa: BLE001 - housekeeping must never stop delivery
            log.exception("housekeeping failed")


def _sync_audiences(service: Service, stop: threading.Event) -> None:
    """The audience sync loop (its own Graph client: a 10,000-row upload never holds up event delivery)."""
    from metabridge.delivery.audiences import AudienceWorker

    with service.graph_client() as graph:
        AudienceWorker(service.engine, service.settings, service.box, graph).run(stop, SYNC_IDLE_SLEEP_S)


def _sync_catalogs(service: Service, stop: threading.Event) -> None:
    """The catalog sync loop (its own Graph client: polling a batch never holds up the other loops)."""
    from metabridge.delivery.catalogs import CatalogWorker

    with service.graph_client() as graph:
        CatalogWorker(service.engine, service.settings, service.box, graph).run(stop, SYNC_IDLE_SLEEP_S)


def _deliver(service: Service, stop: threading.Event) -> None:
    with service.graph_client() as graph:
        DeliveryWorker(service.engine, service.settings, service.box, graph).run(stop)


def run_worker(service: Service, stop: threading.Event) -> None:
    """Deliver events, sync audiences and catalogs until ``stop`` is set (returns after the work in flight)."""
    threading.Thread(target=_housekeeping, args=(service, stop), name="metabridge-housekeeping", daemon=True).start()
    audiences = threading.Thread(target=_sync_audiences, args=(service, stop), name="metabridge-audiences", daemon=True)
    audiences.start()
    catalogs = threading.Thread(target=_sync_catalogs, args=(service, stop), name="metabridge-catalogs", daemon=True)
    catalogs.start()
    helpers = [threading.Thread(target=_deliver, args=(service, stop), name=f"metabridge-delivery-{i + 2}", daemon=True)
               for i in range(DELIVERY_THREADS - 1)]
    for helper in helpers:
        helper.start()
    try:
        _deliver(service, stop)
    finally:
        if stop.is_set():
            for helper in helpers:
                helper.join(timeout=service.settings.lease_seconds)
            audiences.join(timeout=service.settings.lease_seconds)
            catalogs.join(timeout=service.settings.lease_seconds)


def start_worker_thread(service: Service, stop: threading.Event) -> threading.Thread:
    """The in-process worker of ``metabridge serve``."""
    thread = threading.Thread(target=run_worker, args=(service, stop), name="metabridge-worker", daemon=True)
    thread.start()
    return thread
