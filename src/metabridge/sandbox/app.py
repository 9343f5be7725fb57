"""The sandbox: a local Graph API for the endpoints metabridge uses.

``create_sandbox_app()`` returns a FastAPI app that can be served by uvicorn (``metabridge sandbox``,
:func:`metabridge.serving.run_in_thread`) or mounted inside the metabridge service. Graph paths
(``/v26.0/{pixel_id}/events`` …) answer like Meta; ``/_sandbox/*`` inspects and steers the sandbox.
Unknown Graph paths answer like Graph does for a node it cannot find (100/33).

Graph endpoints (answers and errors exactly as Meta's, spec §1.2-§1.3):

- ``POST /{version}/{pixel_id}/events`` — Conversions API (``routes/events.py``)
- ``POST|GET /{version}/act_{ad_account_id}/customaudiences``, ``GET|POST|DELETE /{version}/{audience_id}``,
  ``POST|DELETE /{version}/{audience_id}/users``, ``POST /{version}/{audience_id}/usersreplace`` —
  Custom Audiences (``routes/audiences.py``)
- ``POST /{version}/{catalog_id}/items_batch``, ``GET /{version}/{catalog_id}/check_batch_request_status``,
  ``POST|GET /{version}/{catalog_id}/product_sets``, ``GET|POST|DELETE /{version}/{product_set_id}`` —
  Catalog (``routes/catalog.py``)

Control endpoints (plain JSON; never show a token):

- ``GET  /_sandbox/health``
- ``GET  /_sandbox/pixels/{pixel_id}/events?test=false|true&limit=&offset=`` — received events
- ``GET  /_sandbox/requests?limit=&offset=`` — request log (path, status, events, error code, fbtrace_id, time)
- ``GET  /_sandbox/stats``
- ``POST /_sandbox/faults`` / ``GET /_sandbox/faults`` / ``DELETE /_sandbox/faults`` — fault injection
- ``POST /_sandbox/tokens/revoke`` / ``POST /_sandbox/tokens/restore`` — ``{"token": "..."}``
- ``PUT  /_sandbox/app-secret`` — ``{"app_secret": "..." | null}``: require ``appsecret_proof``
- ``GET  /_sandbox/ad-accounts/{id}/audiences?limit=&offset=`` — an account's audiences, member counts
- ``POST /_sandbox/ad-accounts/{id}/tos`` — ``{"accepted": false}``: Custom Audience Terms not accepted
- ``POST /_sandbox/audiences`` — pre-create an audience (with members) "made by someone else"
- ``GET  /_sandbox/audiences/{id}``, ``.../members?limit=&offset=``, ``.../members/count``
- ``GET  /_sandbox/catalogs/{id}``, ``.../items?limit=&offset=``, ``.../product_sets`` — a catalog's items
  and sets; ``PUT /_sandbox/batch-status-polls`` — ``{"in_progress_polls": n}`` (``routes/catalog_control.py``)
- ``GET  /_sandbox/clock``, ``POST /_sandbox/clock/advance`` — ``{"seconds": n}``: time out sessions
- ``POST /_sandbox/reset``
- ``GET  /_sandbox/docs`` — OpenAPI UI
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from metabridge import __version__
from metabridge.sandbox.errors import GraphAPIException, unknown_object
from metabridge.sandbox.routes import CONTROL_ROUTER, GRAPH_ROUTERS
from metabridge.sandbox.routes.common import graph_error_response, json_response
from metabridge.sandbox.routes.control import CONTROL_PREFIX
from metabridge.sandbox.state import SandboxState

__all__ = ["create_sandbox_app"]


def create_sandbox_app(state: SandboxState | None = None) -> FastAPI:
    """A new sandbox app around ``state`` (a fresh :class:`SandboxState` when ``None``).

    Pass your own ``state`` to inspect or steer the sandbox directly from Python (tests, benchmarks,
    the service when it mounts the sandbox in-process); it is also at ``app.state.sandbox``.
    """
    app = FastAPI(
        title="metabridge Graph API sandbox",
        version=__version__,
        docs_url=f"{CONTROL_PREFIX}/docs",
        redoc_url=None,
        openapi_url=f"{CONTROL_PREFIX}/openapi.json",
    )
    app.state.sandbox = state if state is not None else SandboxState()

    async def on_graph_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GraphAPIException)
        return graph_error_response(request, exc)

    app.add_exception_handler(GraphAPIException, on_graph_error)
    app.include_router(CONTROL_ROUTER)
    for router in GRAPH_ROUTERS:
        app.include_router(router)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unknown_path(path: str, request: Request) -> Response:
        if request.url.path.rstrip("/").endswith(CONTROL_PREFIX) or f"{CONTROL_PREFIX}/" in request.url.path:
            return json_response({"detail": "Not Found"}, 404)
        parts = path.strip("/").split("/")
        node = parts[1] if len(parts) > 1 else parts[0]
        return graph_error_response(request, unknown_object(node, request.method))

    return app
