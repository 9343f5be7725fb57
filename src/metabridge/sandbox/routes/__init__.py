"""Sandbox routers: one module per Graph surface, plus the ``/_sandbox`` control router.

Add a surface by writing ``routes/<surface>.py`` with a ``router`` whose handlers start with
:func:`~metabridge.sandbox.routes.common.begin_graph_call` and end with
:func:`~metabridge.sandbox.routes.common.graph_success`, then listing it in :data:`GRAPH_ROUTERS`.
"""

from fastapi import APIRouter

from metabridge.sandbox.routes import audiences, catalog, catalog_control, control, events

__all__ = ["CONTROL_ROUTER", "GRAPH_ROUTERS"]

#: Routers serving Graph API paths (``/{version}/...``), in registration order.
GRAPH_ROUTERS: tuple[APIRouter, ...] = (events.router, audiences.router, catalog.router)

control.router.include_router(catalog_control.router)

#: Router serving the ``/_sandbox`` inspection and control endpoints.
CONTROL_ROUTER: APIRouter = control.router
